/* Whether the runner may route a packet between its kohaku networks and the outside: operator
 * deny rules and network isolation. One decision for every hook that routes: the forward filter
 * on the bridges (traffic the kernel forwarded) and the workload program on each workload's veth
 * (traffic it redirects past the bridge and the IP stack). Addresses are classified by
 * lib/net_class.h (overlay, named network, outside):
 *   - both in kohaku networks: allowed within one network, dropped between two different ones
 *     (networks are isolated from each other, as Docker isolates its bridge networks);
 *   - from outside to a network with outbound NAT on: only replies to (or ICMP errors about) a
 *     tracked flow; to a network with outbound NAT off: allowed (routable by the operator's
 *     choice, as a Calico pool with natOutgoing=false);
 *   - from a network to outside: allowed (masquerade, where on, is the uplink's job);
 *     outside to outside: spoofed.
 * Operator deny rules apply to all of it.
 */
#pragma once

#include "lib/conntrack.h"
#include "lib/net_class.h"
#include "lib/pkt.h"
#include "lib/policy.h"

enum rn_forward_verdict {
  RN_FWD_ALLOW = 0,
  RN_FWD_DENIED,    /* an operator deny rule */
  RN_FWD_ISOLATED,  /* between two different kohaku networks */
  RN_FWD_SPOOFED,   /* outside to outside */
  RN_FWD_UNTRACKED, /* outside to a NAT network, no reply of a tracked flow */
};

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

KH_INLINE enum rn_forward_verdict rn_forward_verdict(struct __sk_buff* skb,
                                                     const struct runner_config* cfg,
                                                     const struct pkt* p) {
  struct rn_net src, dst;

  if (rn_policy_denies(cfg, p)) return RN_FWD_DENIED;
  src = rn_classify(cfg, p->saddr);
  dst = rn_classify(cfg, p->daddr);
  if (rn_net_inside(src))
    return rn_net_inside(dst) && !rn_net_same(src, dst) ? RN_FWD_ISOLATED : RN_FWD_ALLOW;
  if (!rn_net_inside(dst)) return RN_FWD_SPOOFED;
  if (!dst.nat) return RN_FWD_ALLOW;
  return rn_is_tracked_reply(skb, p) ? RN_FWD_ALLOW : RN_FWD_UNTRACKED;
}
