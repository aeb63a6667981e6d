/* Which kohaku network an address belongs to: the hub-and-spoke overlay (runner_config's
 * overlay_addr/mask, id 0, outbound NAT always on), one of the runner's named L2 networks (an LPM
 * lookup in runner_nets), or none ("outside").
 *
 * The overlay is checked first and needs no map lookup, so overlay traffic costs what it did
 * before named networks existed. The host refuses named subnets overlapping the overlay, so the
 * order never changes an answer; the longest prefix wins between named networks.
 */
#pragma once

#include "lib/pkt.h"
#include "lib/runner_maps.h"

enum rn_net_kind {
  RN_NET_OUTSIDE = 0,
  RN_NET_OVERLAY = 1,
  RN_NET_NAMED = 2,
};

struct rn_net {
  __u32 id;  /* 0 for the overlay and outside; the named network's id (its VNI) otherwise */
  __u8 kind; /* enum rn_net_kind */
  __u8 nat;  /* outbound NAT on */
};

KH_INLINE bool rn_in_overlay(const struct runner_config* cfg, __be32 addr) {
  return (addr & pkt_addr(cfg->overlay_mask)) == pkt_addr(cfg->overlay_addr);
}

KH_INLINE struct rn_net rn_classify(const struct runner_config* cfg, __be32 addr) {
  struct rn_net n = {};
  struct runner_net_key key = {.prefixlen = 32};
  struct runner_net_value* v;

  if (rn_in_overlay(cfg, addr)) {
    n.kind = RN_NET_OVERLAY;
    n.nat = 1;
    return n;
  }
  pkt_set_addr(key.addr, addr);
  v = bpf_map_lookup_elem(&runner_nets, &key);
  if (v) {
    n.id = v->id;
    n.kind = RN_NET_NAMED;
    n.nat = !!(v->flags & RUNNER_NET_OUTBOUND_NAT);
  }
  return n;
}

KH_INLINE bool rn_net_inside(struct rn_net n) {
  return n.kind != RN_NET_OUTSIDE;
}

/* Two addresses in one network (both outside counts as neither). */
KH_INLINE bool rn_net_same(struct rn_net a, struct rn_net b) {
  return a.kind != RN_NET_OUTSIDE && a.kind == b.kind && a.id == b.id;
}
