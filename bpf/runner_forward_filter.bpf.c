/* Bridges of the kohaku networks (kohaku-overlay and every named network's kbr-<name>/kb-<hash>),
 * TC egress: the forward filter that replaces KohakuRiver's iptables FORWARD accepts.
 *
 * Every packet the runner routes into a network's segment leaves through that network's bridge,
 * so this hook sees all forwarded traffic towards workloads, whatever interface it came from.
 * The decision (deny rules, isolation, from outside only replies) is lib/forward_policy.h,
 * shared with the workload program that routes past the bridge. Locally generated packets
 * (ingress_ifindex 0) are not forwarding and pass, as they would pass FORWARD. Frames switched within one bridge never reach
 * this hook; workload-to-outside traffic is checked by runner_nat_egress.
 */
#include "lib/forward_policy.h"
#include "lib/pkt.h"

SEC("tc")
int runner_forward_filter(struct __sk_buff* skb) {
  struct runner_config* cfg = runner_get_config();
  struct runner_stats* stats;
  struct pkt p;

  if (!cfg) return TC_ACT_OK;
  stats = runner_get_stats();
  if (pkt_parse_l4(skb, &p) != PKT_PARSE_OK)
    return TC_ACT_OK; /* ARP, IPv6; a malformed header was already refused by ip_rcv */
  if (skb->ingress_ifindex == 0) return TC_ACT_OK; /* sent by the runner itself: not forwarding */
  switch (rn_forward_verdict(skb, cfg, &p)) {
    case RN_FWD_ALLOW:
      RUNNER_COUNT(stats, forward_allowed);
      return TC_ACT_OK;
    case RN_FWD_DENIED:
      RUNNER_COUNT(stats, policy_denied);
      return TC_ACT_SHOT;
    case RN_FWD_ISOLATED:
      RUNNER_COUNT(stats, forward_dropped_isolated);
      return TC_ACT_SHOT;
    case RN_FWD_SPOOFED:
      RUNNER_COUNT(stats, forward_dropped_spoofed);
      return TC_ACT_SHOT;
    default:
      RUNNER_COUNT(stats, forward_dropped_untracked);
      return TC_ACT_SHOT;
  }
}

char LICENSE[] SEC("license") = "GPL";
