/* The hub express path: a VXLAN frame from runner A to a workload in runner B's subnet is
 * rewritten in place at the hub's uplink and sent straight to B, instead of being decapsulated
 * on A's tunnel, routed and encapsulated again on B's. One implementation, used by the TC and the
 * XDP entry programs of bpf/host_express.bpf.c; it works on packet pointers and the context only
 * for the FIB helpers. docs/bpf-host-datapath.md lists every pass and drop reason.
 *
 * What changes in the frame: outer MACs (underlay next hop towards B), outer source IP (the hub's:
 * B's vxlan0 only accepts its remote) and destination IP (B's), outer IP checksum, VNI (B's),
 * inner MACs (the kernel's neighbour entry on B's tunnel), inner TTL - 1 and inner IP checksum.
 * The outer UDP source port (A's flow entropy) stays; a zero outer UDP checksum stays zero, a
 * non-zero one is updated to match. */
#pragma once

#include "lib/common.h"
#include "lib/csum.h"
#include "lib/express_maps.h"
#include "lib/pkt.h"
#include "lib/vxlan.h"

#include <linux/tcp.h>

#define KH_TCP_MAX_HLEN 60 /* doff 15 */

enum kh_express_verdict {
  KH_EXPRESS_FORWARD, /* rewritten: send it out of *egress */
  KH_EXPRESS_PASS,    /* untouched: the kernel takes it */
  KH_EXPRESS_DROP,
};

struct kh_express_ctx {
  void* ctx; /* __sk_buff or xdp_md, for bpf_fib_lookup / bpf_check_mtu */
  void* data;
  void* data_end;
  __u32 len;             /* whole frame, for counters and length checks */
  __u32 ingress_ifindex; /* the uplink */
  __u32 gso_size;        /* TC: a GSO aggregate's segment payload size (0: one packet) */
  __u32 gso_segs;        /* TC: the segments it becomes */
  bool gso_tunnel;       /* TC: the aggregate is a plain UDP-tunnel one (lib/skb_gso.h) */
  __u32 egress;          /* out: where a forwarded frame goes */
};

KH_INLINE struct express_stats* kh_express_stats(__u32 runner_id) {
  struct express_stats_key key = {.runner_id = runner_id};

  return bpf_map_lookup_elem(&express_stats, &key);
}

KH_INLINE enum kh_express_verdict kh_express_pass(const struct kh_express_ctx* c,
                                                  struct express_stats* st,
                                                  enum express_pass_reason reason) {
  if (st && reason < EXPRESS_PASS_MAX) {
    (&st->pass_not_configured)[reason]++;
    st->pass_bytes += c->len;
  }
  return KH_EXPRESS_PASS;
}

KH_INLINE enum kh_express_verdict kh_express_drop(const struct kh_express_ctx* c,
                                                  struct express_stats* st,
                                                  enum express_drop_reason reason) {
  if (st && reason < EXPRESS_DROP_MAX) {
    (&st->drop_spoofed_outer)[reason]++;
    st->drop_bytes += c->len;
  }
  return KH_EXPRESS_DROP;
}

/* One's-complement sum of (~old + new) over n 16-bit words: the RFC 1624 difference that moves a
 * checksum covering `old` to one covering `new`. */
KH_INLINE __u32 kh_csum_diff16(const __u16* old, const __u16* new, int n) {
  __u32 s = 0;

#pragma unroll
  for (int i = 0; i < 8; i++) {
    if (i >= n) break;
    s += (__u16)~old[i];
    s += new[i];
  }
  return s;
}

/* Everything of the frame the rewrite changes inside the outer UDP checksum's coverage, plus the
 * pseudo-header addresses: captured before and after so the checksum can follow. */
struct kh_express_words {
  __u16 addrs[4]; /* outer saddr, daddr (pseudo header) */
  __u16 vni[2];
  __u16 macs[6];      /* inner destination + source MAC */
  __u16 ttl_check[2]; /* inner TTL/protocol word, inner header checksum */
};

KH_INLINE void kh_express_capture(const struct kh_vx_frame* f, struct kh_express_words* w) {
  __builtin_memcpy(w->addrs, &f->ip->saddr, 8);
  __builtin_memcpy(w->vni, &f->vx->vni_reserved2, 4);
  __builtin_memcpy(w->macs, f->ieth, 12);
  __builtin_memcpy(&w->ttl_check[0], &f->iip->ttl, 2);
  __builtin_memcpy(&w->ttl_check[1], &f->iip->check, 2);
}

/* A non-zero outer UDP checksum is either complete (the sender computed it) or, for frames handed
 * over inside this machine with the checksum left to the device (CHECKSUM_PARTIAL), the folded
 * pseudo-header sum alone. The first needs every changed word. The second covers only the pseudo
 * header: in TC the skb still says the rest is the device's job, so only the address change
 * applies; XDP has lost that state (it never occurs on a physical NIC's receive path), so the
 * checksum is zeroed, which IPv4 allows and every VXLAN receiver accepts. */
KH_INLINE void kh_express_fix_udp_csum(struct udphdr* udp, const struct kh_express_words* before,
                                       const struct kh_express_words* after, const bool xdp) {
  __u32 pseudo_before = 0;
  __u32 addr_diff = kh_csum_diff16(before->addrs, after->addrs, 4);
  __u16 check = udp->check;
  __u32 all;
  __u16 out;

#pragma unroll
  for (int i = 0; i < 4; i++) pseudo_before += before->addrs[i];
  pseudo_before += bpf_htons(IPPROTO_UDP);
  pseudo_before += udp->len;
  if (check == kh_csum_fold(pseudo_before)) {
    udp->check = xdp ? 0 : kh_csum_fold((__u32)check + addr_diff);
    return;
  }
  all = addr_diff + kh_csum_diff16(before->vni, after->vni, 2) +
        kh_csum_diff16(before->macs, after->macs, 6) +
        kh_csum_diff16(before->ttl_check, after->ttl_check, 2);
  out = (__u16)~kh_csum_fold((__u32)(__u16)~check + all);
  udp->check = out ? out : 0xffff; /* a computed 0 is sent as all ones */
}

/* The underlay next hop towards runner `target` (physical IP `dst`): the cached entry while it is
 * fresh and for the same address, else a FIB lookup whose result is cached. The lookup runs as if
 * the frame came in on A's tunnel: forwarding is on there (the kernel path needs it too), while
 * the uplink keeps the host's own setting. Returns a BPF_FIB_LKUP_RET_* code. */
KH_INLINE long kh_express_nexthop(struct kh_express_ctx* c, __u32 target, __be32 dst, __be32 src,
                                  __u32 via_ifindex, __u16 outer_len, struct express_nexthop* nh,
                                  bool* looked_up) {
  struct express_nexthop_key key = {.runner_id = target};
  struct express_nexthop* cached = bpf_map_lookup_elem(&express_nexthops, &key);
  __u64 now = bpf_ktime_get_coarse_ns();
  struct bpf_fib_lookup fib = {};
  long rc;

  if (cached && pkt_addr(cached->physical_ip) == dst &&
      now - cached->resolved_ns < KH_EXPRESS_NH_TTL_NS) {
    *nh = *cached;
    return BPF_FIB_LKUP_RET_SUCCESS;
  }
  fib.family = KH_AF_INET;
  fib.l4_protocol = IPPROTO_UDP;
  fib.tot_len = outer_len;
  fib.ipv4_src = src;
  fib.ipv4_dst = dst;
  fib.ifindex = via_ifindex;
  rc = bpf_fib_lookup(c->ctx, &fib, sizeof(fib), 0);
  if (rc != BPF_FIB_LKUP_RET_SUCCESS) return rc;
  __builtin_memcpy(nh->physical_ip, &dst, 4);
  __builtin_memcpy(nh->dmac, fib.dmac, ETH_ALEN);
  __builtin_memcpy(nh->smac, fib.smac, ETH_ALEN);
  nh->ifindex = fib.ifindex;
  nh->resolved_ns = now;
  bpf_map_update_elem(&express_nexthops, &key, nh, BPF_ANY);
  *looked_up = true;
  return rc;
}

/* The length of the inner IPv4 packets a GSO aggregate becomes: its IP and L4 headers (TCP with
 * options, or UDP) + the segment payload. 0 when the inner protocol is neither or its header is
 * not in the linear part. */
KH_INLINE __u32 kh_express_inner_segment_len(const struct kh_vx_frame* f, const void* data_end,
                                             __u32 gso_size) {
  const void* l4 = (const void*)(f->iip + 1);
  const struct tcphdr* th = l4;

  if (f->iip->protocol == IPPROTO_UDP)
    return sizeof(struct iphdr) + sizeof(struct udphdr) + gso_size;
  if (f->iip->protocol != IPPROTO_TCP || (const void*)(th + 1) > data_end || th->doff < 5) return 0;
  return sizeof(struct iphdr) + th->doff * 4 + gso_size;
}

/* Decides and, for KH_EXPRESS_FORWARD, rewrites. `xdp` is a constant of the entry program: the
 * XDP variant checks that it can transmit on the egress device before touching the frame. */
KH_INLINE enum kh_express_verdict kh_express(struct kh_express_ctx* c, const bool xdp) {
  const __u32 zero = 0;
  const struct express_config* cfg = bpf_map_lookup_elem(&express_config, &zero);
  const struct express_runner *a, *b;
  struct express_runner_key rkey;
  struct host_route_key rt_key;
  const struct host_route* rt;
  struct bpf_fib_lookup fib = {};
  struct express_nexthop nh = {};
  struct kh_express_words before, after;
  struct express_stats* st;
  struct kh_vx_frame f;
  bool looked_up = false;
  __be32 isrc, idst, host_ip, b_ip;
  __u32 vni, itot, seg_len;
  long rc;

  if (!cfg || !cfg->enabled)
    return kh_express_pass(c, kh_express_stats(0), EXPRESS_PASS_NOT_CONFIGURED);
  host_ip = pkt_addr(cfg->host_ip);

  /* Outer headers: only UDP to the hub's address and VXLAN port is ours. */
  f.eth = c->data;
  f.ip = (void*)(f.eth + 1);
  f.udp = (void*)(f.ip + 1);
  if ((void*)(f.udp + 1) > c->data_end || f.eth->h_proto != bpf_htons(ETH_P_IP) ||
      f.ip->protocol != IPPROTO_UDP || f.ip->daddr != host_ip || f.ip->version != 4 ||
      f.udp->dest != cfg->vxlan_port || !kh_mac_equal(f.eth->h_dest, cfg->uplink_mac))
    return kh_express_pass(c, kh_express_stats(0), EXPRESS_PASS_NON_VXLAN);
  if (pkt_ipv4_has_options(f.ip))
    return kh_express_pass(c, kh_express_stats(0), EXPRESS_PASS_IP_OPTIONS);
  if (pkt_ipv4_is_fragment(f.ip))
    return kh_express_pass(c, kh_express_stats(0), EXPRESS_PASS_FRAGMENT);
  f.vx = (void*)(f.udp + 1);
  f.ieth = (void*)(f.vx + 1);
  if ((void*)(f.ieth + 1) > c->data_end)
    return kh_express_pass(c, kh_express_stats(0), EXPRESS_PASS_MALFORMED);

  /* Admission: the VNI names runner A, and only A's physical IP may use it. */
  vni = kh_vxlan_vni(f.vx);
  if (!(f.vx->flags & KH_VXLAN_FLAG_I) || vni <= cfg->vni_base)
    return kh_express_pass(c, kh_express_stats(0), EXPRESS_PASS_UNKNOWN_VNI);
  rkey.runner_id = vni - cfg->vni_base;
  a = bpf_map_lookup_elem(&express_runners, &rkey);
  if (!a) return kh_express_pass(c, kh_express_stats(0), EXPRESS_PASS_UNKNOWN_VNI);
  st = kh_express_stats(rkey.runner_id);
  if (f.ip->saddr != pkt_addr(a->physical_ip))
    return kh_express_drop(c, st, EXPRESS_DROP_SPOOFED_OUTER);
  if (c->gso_size && !c->gso_tunnel) return kh_express_pass(c, st, EXPRESS_PASS_GSO);
  if (bpf_ntohs(f.ip->tot_len) + sizeof(struct ethhdr) > c->len ||
      bpf_ntohs(f.udp->len) + KH_VX_UDP_OFF - sizeof(struct ethhdr) > bpf_ntohs(f.ip->tot_len))
    return kh_express_pass(c, st, EXPRESS_PASS_MALFORMED);

  /* Inner frame: IPv4 to the hub's tunnel MAC, as A routes it towards the hub. */
  if (f.ieth->h_proto != bpf_htons(ETH_P_IP))
    return kh_express_pass(c, st, EXPRESS_PASS_INNER_NON_IPV4);
  if (!kh_mac_equal(f.ieth->h_dest, a->tunnel_mac))
    return kh_express_pass(c, st, EXPRESS_PASS_L2_NOT_HOST);
  f.iip = (void*)(f.ieth + 1);
  if ((void*)(f.iip + 1) > c->data_end) return kh_express_pass(c, st, EXPRESS_PASS_MALFORMED);
  itot = bpf_ntohs(f.iip->tot_len);
  if (f.iip->version != 4 || f.iip->ihl < 5 || itot < sizeof(struct iphdr) ||
      KH_VX_INNER_IP_OFF + itot > c->len)
    return kh_express_pass(c, st, EXPRESS_PASS_MALFORMED);
  if (pkt_ipv4_has_options(f.iip)) return kh_express_pass(c, st, EXPRESS_PASS_IP_OPTIONS);
  if (pkt_ipv4_is_fragment(f.iip)) return kh_express_pass(c, st, EXPRESS_PASS_FRAGMENT);
  isrc = f.iip->saddr;
  idst = f.iip->daddr;

  /* Anti-spoofing, as host_forward does on the tunnel: A's subnet or a host address. */
  if ((isrc & pkt_ipv4_prefix_mask(a->prefixlen)) != pkt_addr(a->subnet) && !kh_is_host_addr(isrc))
    return kh_express_drop(c, st, EXPRESS_DROP_SPOOFED_INNER);
  if (pkt_ipv4_is_multicast_or_broadcast(idst) || kh_is_host_addr(idst))
    return kh_express_pass(c, st, EXPRESS_PASS_TO_HOST);
  rt_key.prefixlen = 32;
  __builtin_memcpy(rt_key.addr, &idst, sizeof(rt_key.addr));
  rt = bpf_map_lookup_elem(&host_routes, &rt_key);
  if (!rt) return kh_express_pass(c, st, EXPRESS_PASS_NO_ROUTE);
  if (f.iip->ttl <= 1) return kh_express_pass(c, st, EXPRESS_PASS_TTL);
  /* An aggregate is judged by the packets it becomes, as the kernel's forwarding does
   * (skb_gso_validate_network_len): inner headers + segment payload. */
  seg_len = itot;
  if (c->gso_size) {
    seg_len = kh_express_inner_segment_len(&f, c->data_end, c->gso_size);
    if (!seg_len) return kh_express_pass(c, st, EXPRESS_PASS_GSO);
  }

  /* The inner next hop: the kernel's route and neighbour entry on B's tunnel, with B's tunnel MTU
   * checked against the inner packet (tot_len). */
  fib.family = KH_AF_INET;
  fib.tos = f.iip->tos;
  fib.l4_protocol = f.iip->protocol;
  fib.tot_len = seg_len;
  fib.ipv4_src = isrc;
  fib.ipv4_dst = idst;
  fib.ifindex = a->tunnel_ifindex;
  rc = bpf_fib_lookup(c->ctx, &fib, sizeof(fib), 0);
  /* A kernel route sending it elsewhere (one the operator added) wins over our map. */
  if ((rc == BPF_FIB_LKUP_RET_SUCCESS || rc == BPF_FIB_LKUP_RET_NO_NEIGH) &&
      fib.ifindex != rt->ifindex)
    return kh_express_pass(c, st, EXPRESS_PASS_FIB);
  switch (rc) {
    case BPF_FIB_LKUP_RET_SUCCESS:
      break;
    case BPF_FIB_LKUP_RET_NO_NEIGH:
      /* The kernel path resolves it (host_forward's redirect_neigh); later frames come here. */
      return kh_express_pass(c, st, EXPRESS_PASS_NO_NEIGH);
    case BPF_FIB_LKUP_RET_FRAG_NEEDED:
      return kh_express_pass(c, st, EXPRESS_PASS_OVERSIZE);
    case BPF_FIB_LKUP_RET_NOT_FWDED:
      return kh_express_pass(c, st, EXPRESS_PASS_TO_HOST);
    default:
      return kh_express_pass(c, st, EXPRESS_PASS_FIB);
  }
  rkey.runner_id = rt->runner_id;
  b = bpf_map_lookup_elem(&express_runners, &rkey);
  if (!b || b->tunnel_ifindex != rt->ifindex) return kh_express_pass(c, st, EXPRESS_PASS_NO_TARGET);
  b_ip = pkt_addr(b->physical_ip);

  /* The outer next hop towards B. */
  rc = kh_express_nexthop(c, rt->runner_id, b_ip, host_ip, a->tunnel_ifindex,
                          KH_VX_INNER_IP_OFF - KH_VX_OUTER_IP_OFF + seg_len, &nh, &looked_up);
  switch (rc) {
    case BPF_FIB_LKUP_RET_SUCCESS:
      break;
    case BPF_FIB_LKUP_RET_NO_NEIGH:
      /* B's tunnel device resolves it when the kernel path sends this frame. */
      return kh_express_pass(c, st, EXPRESS_PASS_OUTER_NO_NEIGH);
    case BPF_FIB_LKUP_RET_FRAG_NEEDED:
      return kh_express_pass(c, st, EXPRESS_PASS_OVERSIZE);
    default:
      return kh_express_pass(c, st, EXPRESS_PASS_FIB);
  }
  if (nh.ifindex != c->ingress_ifindex) {
    __u32 mtu = 0;

    /* Its segments fit the device they came in on; another one may be smaller. */
    if (c->gso_size) return kh_express_pass(c, st, EXPRESS_PASS_GSO);

    /* A frame that fit the uplink may not fit another egress device. */
    if (bpf_check_mtu(c->ctx, nh.ifindex, &mtu, 0, 0) != BPF_MTU_CHK_RET_SUCCESS)
      return kh_express_pass(c, st, EXPRESS_PASS_OVERSIZE);
  }
  if (xdp && (nh.ifindex != c->ingress_ifindex || cfg->tx_devmap) &&
      !bpf_map_lookup_elem(&express_tx, &nh.ifindex))
    return kh_express_pass(c, st, EXPRESS_PASS_EGRESS);

  /* Rewrite in place. Every check is done: from here on the frame is ours. */
  kh_express_capture(&f, &before);
  __builtin_memcpy(f.ieth->h_dest, fib.dmac, ETH_ALEN);
  __builtin_memcpy(f.ieth->h_source, fib.smac, ETH_ALEN);
  kh_ipv4_decrease_ttl(f.iip);
  kh_vxlan_set_vni(f.vx, b->vni);
  kh_csum_replace4(&f.ip->check, f.ip->saddr, host_ip);
  f.ip->saddr = host_ip;
  kh_csum_replace4(&f.ip->check, f.ip->daddr, b_ip);
  f.ip->daddr = b_ip;
  if (f.udp->check) {
    kh_express_capture(&f, &after);
    kh_express_fix_udp_csum(f.udp, &before, &after, xdp);
  }
  __builtin_memcpy(f.eth->h_dest, nh.dmac, ETH_ALEN);
  __builtin_memcpy(f.eth->h_source, nh.smac, ETH_ALEN);

  if (st) {
    st->fwd_packets++;
    st->fwd_bytes += c->len;
    if (looked_up) st->fwd_nh_lookups++;
    if (c->gso_size) {
      st->fwd_gso++;
      st->fwd_gso_segs += c->gso_segs;
    }
  }
  c->egress = nh.ifindex;
  return KH_EXPRESS_FORWARD;
}
