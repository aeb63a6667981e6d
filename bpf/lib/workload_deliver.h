/* Delivery into a workload of this runner past the bridge and the IP stack: the frame gets the
 * workload's MAC as destination and its gateway's (the bridge's) as source, as if the bridge had
 * routed it, the TTL goes down by one (we route), and bpf_redirect_peer() hands it to the
 * namespace side of the workload's veth. Used by the workload program (workload to workload) and
 * by the uplink's ingress (replies after reverse NAT). TC ingress only (bpf_redirect_peer). */
#pragma once

#include "lib/csum.h"
#include "lib/pkt.h"
#include "lib/workload_maps.h"

/* The fast-path workload that owns `daddr`, and its veth in *ifindex; NULL when none (an address
 * of another runner, a container the fast path does not know, or one without the fast path). */
KH_INLINE const struct runner_wl* rn_wl_by_addr(__be32 daddr, __u32* ifindex) {
  struct runner_wl_addr_key ak = {};
  struct runner_wl_addr* a;
  struct runner_wl_key wk;
  struct runner_wl* w;

  pkt_set_addr(ak.addr, daddr);
  a = bpf_map_lookup_elem(&runner_wl_addr, &ak);
  if (!a) return 0;
  wk.ifindex = a->ifindex;
  w = bpf_map_lookup_elem(&runner_wl, &wk);
  if (!w || !(w->flags & RUNNER_WL_FAST) || pkt_addr(w->addr) != daddr) return 0;
  *ifindex = a->ifindex;
  return w;
}

/* Redirects the Ethernet + IPv4 frame at the start of the skb into workload `w` (veth ifindex).
 * Returns TC_ACT_REDIRECT, or -1 when it cannot (TTL would expire: the kernel answers). Packet
 * pointers the caller held are invalid afterwards. */
KH_INLINE int rn_wl_deliver(struct __sk_buff* skb, const struct runner_wl* w, __u32 ifindex) {
  struct runner_wl_stats* st;
  struct ethhdr* eth;
  struct iphdr* ip;
  void* data_end;

  if (!pkt_skb_ensure(skb, sizeof(*eth) + sizeof(*ip))) return -1;
  eth = (void*)(long)skb->data;
  data_end = (void*)(long)skb->data_end;
  ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > data_end || ip->ttl <= 1) return -1;
  __builtin_memcpy(eth->h_dest, w->mac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, w->gw_mac, ETH_ALEN);
  kh_ipv4_decrease_ttl(ip);
  st = runner_wl_stats_of(ifindex);
  RUNNER_WL_COUNT(st, delivered);
  return bpf_redirect_peer(ifindex, 0);
}
