/* Operator deny rules (map runner_policy): a rule matches when source and destination fall in
 * its prefixes and protocol and destination port match (0 = any). Rules are few (an operator's
 * list, at most RUNNER_POLICY_MAX_RULES), so a walk with bpf_for_each_map_elem is cheaper than
 * an LPM product of four dimensions, and the walk is skipped entirely while the rule count in
 * the config is 0. Rules apply to every packet, so a new rule also stops established flows.
 */
#pragma once

#include "lib/pkt.h"
#include "lib/runner_maps.h"

struct rn_policy_walk {
  __be32 saddr;
  __be32 daddr;
  __u16 dport; /* host order; 0 when the packet has no ports */
  __u8 proto;
  __u8 denied;
};

static long rn_policy_match_one(void* map, struct runner_policy_key* rule,
                                struct runner_policy_value* value, struct rn_policy_walk* w) {
  __be32 smask = pkt_ipv4_prefix_mask(rule->src_prefix);
  __be32 dmask = pkt_ipv4_prefix_mask(rule->dst_prefix);

  if ((w->saddr & smask) != (pkt_addr(rule->src_addr) & smask)) return 0;
  if ((w->daddr & dmask) != (pkt_addr(rule->dst_addr) & dmask)) return 0;
  if (rule->proto && rule->proto != w->proto) return 0;
  if (rule->dst_port && rule->dst_port != w->dport) return 0;
  __sync_fetch_and_add(&value->hits, 1);
  w->denied = 1;
  return 1; /* stop the walk */
}

/* True when a deny rule matches the packet; that rule's hit counter is incremented. */
KH_INLINE bool rn_policy_denies(const struct runner_config* cfg, const struct pkt* p) {
  struct rn_policy_walk w = {
      .saddr = p->saddr,
      .daddr = p->daddr,
      .dport = (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) ? p->dport : 0,
      .proto = p->proto,
  };

  if (!cfg->policy_rules) return false;
  bpf_for_each_map_elem(&runner_policy, rn_policy_match_one, &w, 0);
  return w.denied;
}
