// SPDX-License-Identifier: GPL-2.0
/* Host fast path between runner tunnels: TC ingress on every vxkr device. Routes runner subnet to
 * runner subnet without kernel IP forwarding; everything it does not own goes to the kernel
 * untouched (docs/bpf-host-datapath.md lists the cases and counters). */
#include "lib/common.h"
#include "lib/csum.h"
#include "lib/host_maps.h"
#include "lib/pkt.h"

/* Passing returns UNSPEC rather than OK so filters of other tools after ours still run. */
#define KH_TC_PASS TC_ACT_UNSPEC

KH_INLINE struct host_stats* stats_for(__u32 runner_id) {
  struct host_stats_key key = {.runner_id = runner_id};

  return bpf_map_lookup_elem(&host_stats, &key);
}

KH_INLINE int pass(struct __sk_buff* skb, struct host_stats* st, enum host_pass_reason reason) {
  if (st && reason < HOST_PASS_MAX) {
    (&st->pass_non_ipv4)[reason]++;
    st->pass_bytes += skb->len;
  }
  return KH_TC_PASS;
}

KH_INLINE int drop(struct __sk_buff* skb, struct host_stats* st, enum host_drop_reason reason) {
  if (st && reason < HOST_DROP_MAX) {
    (&st->drop_spoofed)[reason]++;
    st->drop_bytes += skb->len;
  }
  return TC_ACT_SHOT;
}

KH_INLINE bool source_allowed(const struct host_ingress* in, __be32 saddr) {
  __be32 subnet;

  __builtin_memcpy(&subnet, in->subnet, sizeof(subnet));
  if ((saddr & pkt_ipv4_prefix_mask(in->prefixlen)) == subnet) return true;
  return kh_is_host_addr(saddr);
}

SEC("tc")
int host_forward(struct __sk_buff* skb) {
  struct host_ingress_key in_key = {.ifindex = skb->ingress_ifindex};
  struct bpf_fib_lookup fib = {};
  struct host_route_key rt_key;
  const struct host_ingress* in;
  const struct host_route* rt;
  struct host_stats* st;
  struct pkt_hdrs p;
  __u32 target, mtu = 0;
  __be32 saddr, daddr;
  long rc;

  in = bpf_map_lookup_elem(&host_ingress, &in_key);
  if (!in) return pass(skb, stats_for(0), HOST_PASS_UNMANAGED);
  st = stats_for(in->runner_id);

  switch (pkt_parse_l3(skb, &p)) {
    case PKT_PARSE_OK:
      break;
    case PKT_PARSE_NOT_IPV4:
      return pass(skb, st, HOST_PASS_NON_IPV4);
    default:
      return pass(skb, st, HOST_PASS_MALFORMED);
  }
  saddr = p.ip->saddr;
  daddr = p.ip->daddr;

  /* Anti-spoofing applies to every IPv4 packet from the tunnel, whatever its destination. */
  if (!source_allowed(in, saddr)) return drop(skb, st, HOST_DROP_SPOOFED);

  if (pkt_ipv4_has_options(p.ip)) return pass(skb, st, HOST_PASS_IP_OPTIONS);
  if (pkt_ipv4_is_fragment(p.ip)) return pass(skb, st, HOST_PASS_FRAGMENT);
  if (skb->pkt_type != KH_PACKET_HOST) return pass(skb, st, HOST_PASS_L2_NOT_HOST);
  if (pkt_ipv4_is_multicast_or_broadcast(daddr) || kh_is_host_addr(daddr))
    return pass(skb, st, HOST_PASS_TO_HOST);

  rt_key.prefixlen = 32;
  __builtin_memcpy(rt_key.addr, &daddr, sizeof(rt_key.addr));
  rt = bpf_map_lookup_elem(&host_routes, &rt_key);
  if (!rt) return pass(skb, st, HOST_PASS_NO_ROUTE);
  target = rt->ifindex;

  if (p.ip->ttl <= 1) return pass(skb, st, HOST_PASS_TTL);
  /* Judged per segment for GSO packets: their skb->len is the whole aggregate. A negative
   * result means the target device is gone (a stale route): the kernel routes it instead. */
  rc = bpf_check_mtu(skb, target, &mtu, 0, BPF_MTU_CHK_SEGS);
  if (rc < 0) return pass(skb, st, HOST_PASS_FIB);
  if (rc != BPF_MTU_CHK_RET_SUCCESS) return pass(skb, st, HOST_PASS_OVERSIZE);

  fib.family = KH_AF_INET;
  fib.tos = p.ip->tos;
  fib.l4_protocol = p.ip->protocol;
  fib.ipv4_src = saddr;
  fib.ipv4_dst = daddr;
  fib.ifindex = skb->ingress_ifindex;
  rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
  /* The parse pointers are still valid: bpf_fib_lookup does not touch packet data. */

  switch (rc) {
    case BPF_FIB_LKUP_RET_SUCCESS:
      /* A kernel route that sends this destination elsewhere (a more specific route the
       * operator added) wins over our map: let the kernel apply it. */
      if (fib.ifindex != target) return pass(skb, st, HOST_PASS_FIB);
      if (bpf_redirect(target, 0) != TC_ACT_REDIRECT) return pass(skb, st, HOST_PASS_FIB);
      __builtin_memcpy(p.eth->h_dest, fib.dmac, ETH_ALEN);
      __builtin_memcpy(p.eth->h_source, fib.smac, ETH_ALEN);
      break;
    case BPF_FIB_LKUP_RET_NO_NEIGH:
    case BPF_FIB_LKUP_RET_FWD_DISABLED: {
      /* No resolved neighbour yet, or forwarding is off on the ingress device (the FIB helper
       * then refuses to look up at all): the kernel resolves the next hop on the target
       * device itself. Our map already decided the route. */
      struct bpf_redir_neigh nh = {.nh_family = KH_AF_INET, .ipv4_nh = fib.ipv4_dst};
      bool via_fib = rc == BPF_FIB_LKUP_RET_NO_NEIGH;

      if (via_fib && fib.ifindex != target) return pass(skb, st, HOST_PASS_FIB);
      if (bpf_redirect_neigh(target, via_fib ? &nh : NULL, via_fib ? sizeof(nh) : 0, 0) !=
          TC_ACT_REDIRECT)
        return pass(skb, st, HOST_PASS_FIB);
      if (st) {
        st->fwd_neigh++;
        if (!via_fib) st->fwd_no_fib++;
      }
      break;
    }
    case BPF_FIB_LKUP_RET_NOT_FWDED:
      /* Local or broadcast route: an address of the host we were not told about. */
      return pass(skb, st, HOST_PASS_TO_HOST);
    case BPF_FIB_LKUP_RET_FRAG_NEEDED:
      return pass(skb, st, HOST_PASS_OVERSIZE);
    default:
      /* Blackhole, unreachable, prohibit, no route, unsupported: the kernel answers. */
      return pass(skb, st, HOST_PASS_FIB);
  }

  kh_ipv4_decrease_ttl(p.ip);
  if (st) {
    st->fwd_packets++;
    st->fwd_bytes += skb->len;
  }
  return TC_ACT_REDIRECT;
}

char LICENSE[] SEC("license") = "GPL";
