/* Bridges of the kohaku networks (kohaku-overlay and every named network's kbr-<name>/kb-<hash>),
 * TC egress: the forward filter that replaces KohakuRiver's iptables FORWARD accepts.
 *
 * Every packet the runner routes into a network's segment leaves through that network's bridge,
 * so this hook sees all forwarded traffic towards workloads, whatever interface it came from.
 * Addresses are classified by lib/net_class.h (overlay, named network, outside):
 *   - both in kohaku networks: allowed within one network, dropped between two different ones
 *     (networks are isolated from each other, as Docker isolates its bridge networks);
 *   - from outside to a network with outbound NAT on: only replies to (or ICMP errors about) a
 *     tracked flow; to a network with outbound NAT off: allowed (routable by the operator's
 *     choice, as a Calico pool with natOutgoing=false);
 *   - from a network to outside (a route through a bridge): allowed; outside to outside: spoofed.
 * Operator deny rules apply to all of it. Locally generated packets (ingress_ifindex 0) are not
 * forwarding and pass, as they would pass FORWARD. Frames switched within one bridge never reach
 * this hook; workload-to-outside traffic is checked by runner_nat_egress.
 */
#include "lib/conntrack.h"
#include "lib/net_class.h"
#include "lib/pkt.h"
#include "lib/policy.h"

/* True when the packet from outside belongs to a flow a workload started. */
KH_INLINE bool rn_is_tracked_reply(struct __sk_buff* skb, const struct pkt* p) {
  struct runner_ct_key key;
  struct runner_ct_entry* e;

  if (p->fragment) return false;
  if (p->proto == IPPROTO_ICMP && pkt_icmp_is_error(p->icmp_type)) {
    struct pkt in;

    /* Already translated back: the quote is the workload's packet as it sent it. */
    if (pkt_parse_ipv4_at(skb, p->l4_off + sizeof(struct icmphdr), p->l3_end, &in) !=
            PKT_PARSE_OK ||
        !in.has_ports || in.saddr != p->daddr)
      return false;
    rn_ct_key_of(&key, &in);
  } else {
    if (!p->has_ports || (p->proto == IPPROTO_ICMP && p->icmp_type != ICMP_ECHOREPLY)) return false;
    rn_ct_key_reversed(&key, p);
  }
  e = bpf_map_lookup_elem(&runner_ct, &key);
  return e && e->dir == RUNNER_CT_ORIGINAL;
}

SEC("tc")
int runner_forward_filter(struct __sk_buff* skb) {
  struct runner_config* cfg = runner_get_config();
  struct runner_stats* stats;
  struct rn_net src, dst;
  struct pkt p;

  if (!cfg) return TC_ACT_OK;
  stats = runner_get_stats();
  if (pkt_parse_l4(skb, &p) != PKT_PARSE_OK)
    return TC_ACT_OK; /* ARP, IPv6; a malformed header was already refused by ip_rcv */
  if (skb->ingress_ifindex == 0) return TC_ACT_OK; /* sent by the runner itself: not forwarding */
  if (rn_policy_denies(cfg, &p)) {
    RUNNER_COUNT(stats, policy_denied);
    return TC_ACT_SHOT;
  }
  src = rn_classify(cfg, p.saddr);
  dst = rn_classify(cfg, p.daddr);
  if (rn_net_inside(src)) {
    if (rn_net_inside(dst) && !rn_net_same(src, dst)) {
      RUNNER_COUNT(stats, forward_dropped_isolated);
      return TC_ACT_SHOT;
    }
    RUNNER_COUNT(stats, forward_allowed);
    return TC_ACT_OK;
  }
  if (!rn_net_inside(dst)) {
    RUNNER_COUNT(stats, forward_dropped_spoofed);
    return TC_ACT_SHOT;
  }
  if (!dst.nat) {
    RUNNER_COUNT(stats, forward_allowed); /* routable network: no masquerade, no reply rule */
    return TC_ACT_OK;
  }
  if (!rn_is_tracked_reply(skb, &p)) {
    RUNNER_COUNT(stats, forward_dropped_untracked);
    return TC_ACT_SHOT;
  }
  RUNNER_COUNT(stats, forward_allowed);
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
