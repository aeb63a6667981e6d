// SPDX-License-Identifier: GPL-2.0
/* Runner fast path: TC ingress on every workload's host-side veth (what the workload sends).
 * Decides each packet's fate at once instead of after the bridge, the IP stack and netfilter:
 *   - source check: the source MAC and IPv4 address must be the workload's own (anti-spoofing
 *     per workload, which the bridge never did); otherwise drop;
 *   - not routed (ARP, IPv6, a frame to another MAC of the segment): the bridge switches it;
 *   - routed (addressed to the gateway): deny rules and isolation (lib/forward_policy.h, the
 *     forward filter's rules), then
 *       to another workload of this runner: bpf_redirect_peer into its namespace;
 *       to the outside or the overlay: bpf_fib_lookup from the bridge, then bpf_redirect(_neigh)
 *       to the uplink (where runner_nat_egress masquerades) or to vxlan0 (the hub's tunnel);
 *       anything else (the runner itself, options, fragments, TTL, other routes, MTU): the kernel.
 * A veth without an entry in runner_wl is none of ours and passes untouched. Counters per
 * workload in runner_wl_stats (docs/bpf-runner-fast-path.md).
 */
#include "lib/forward_policy.h"
#include "lib/pkt.h"
#include "lib/workload_deliver.h"
#include "lib/workload_maps.h"

/* Whether the frame's source MAC is `mac`; a frame too short for an Ethernet header has none. */
KH_INLINE bool source_mac_is(struct __sk_buff* skb, const __u8* mac) {
  void* data_end = (void*)(long)skb->data_end;
  struct ethhdr* eth = (void*)(long)skb->data;

  if ((void*)(eth + 1) > data_end) return false;
  return kh_mac_equal(eth->h_source, mac);
}

KH_INLINE const struct runner_wl_config* wl_config(void) {
  __u32 zero = 0;

  return bpf_map_lookup_elem(&runner_wl_cfg, &zero);
}

/* Out through the uplink or vxlan0 as the kernel's FIB says, or -1 for the kernel path. */
KH_INLINE int route_out(struct __sk_buff* skb, const struct runner_config* rcfg,
                        const struct runner_wl* w, const struct pkt* p,
                        struct runner_wl_stats* st) {
  const struct runner_wl_config* cfg = wl_config();
  struct bpf_fib_lookup fib = {};
  __be32 own_mask = pkt_ipv4_prefix_mask(w->prefixlen);
  bool via_bridge = false;
  struct ethhdr* eth;
  struct iphdr* ip;
  __u32 mtu = 0, target;
  long rc;

  if (!cfg) return -1;
  fib.family = KH_AF_INET;
  fib.l4_protocol = p->proto;
  fib.ipv4_src = p->saddr;
  fib.ipv4_dst = p->daddr;
  fib.ifindex = w->bridge_ifindex;
  rc = bpf_fib_lookup(skb, &fib, sizeof(fib), 0);
  if (rc != BPF_FIB_LKUP_RET_SUCCESS && rc != BPF_FIB_LKUP_RET_NO_NEIGH) return -1;
  target = fib.ifindex;
  /* Another runner's subnet: the route is the hub's address on the bridge, whose port towards
   * the hub is vxlan0; the frame goes to that port directly, with the hub's MAC as the FIB
   * found it (an unresolved hub is left to the kernel, which resolves it on the bridge). */
  if (target == w->bridge_ifindex && cfg->overlay_ifindex && rn_in_overlay(rcfg, p->daddr) &&
      (p->daddr & own_mask) != (pkt_addr(w->addr) & own_mask)) {
    if (rc != BPF_FIB_LKUP_RET_SUCCESS) return -1;
    target = cfg->overlay_ifindex;
    via_bridge = true;
  }
  if (target != cfg->uplink_ifindex && target != cfg->overlay_ifindex) return -1;
  /* Judged per segment for GSO packets (their skb->len is the whole aggregate). */
  if (bpf_check_mtu(skb, target, &mtu, 0, BPF_MTU_CHK_SEGS) != BPF_MTU_CHK_RET_SUCCESS)
    return -1;

  if (!pkt_skb_ensure(skb, sizeof(*eth) + sizeof(*ip))) return -1;
  eth = (void*)(long)skb->data;
  ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > (void*)(long)skb->data_end || ip->ttl <= 1) return -1;
  kh_ipv4_decrease_ttl(ip);
  if (st) st->bytes_fwd += skb->len;
  if (rc == BPF_FIB_LKUP_RET_NO_NEIGH && !via_bridge) {
    struct bpf_redir_neigh nh = {.nh_family = KH_AF_INET, .ipv4_nh = fib.ipv4_dst};

    RUNNER_WL_COUNT(st, fwd_neigh);
    return bpf_redirect_neigh(target, &nh, sizeof(nh), 0);
  }
  __builtin_memcpy(eth->h_dest, fib.dmac, ETH_ALEN);
  __builtin_memcpy(eth->h_source, fib.smac, ETH_ALEN);
  RUNNER_WL_COUNT(st, fwd_fib);
  return bpf_redirect(target, 0);
}

SEC("tc")
int runner_workload(struct __sk_buff* skb) {
  struct runner_wl_key key = {.ifindex = skb->ingress_ifindex};
  const struct runner_config* cfg;
  const struct runner_wl *w, *peer;
  struct runner_wl_stats* st;
  struct pkt_hdrs h;
  struct pkt p;
  __u32 peer_ifindex = 0;
  int rc;

  w = bpf_map_lookup_elem(&runner_wl, &key);
  if (!w) return TC_ACT_OK;
  st = runner_wl_stats_of(key.ifindex);

  switch (pkt_parse_l3(skb, &h)) {
    case PKT_PARSE_OK:
      break;
    case PKT_PARSE_NOT_IPV4:
      if (!source_mac_is(skb, w->mac)) {
        RUNNER_WL_COUNT(st, drop_spoofed_mac);
        return TC_ACT_SHOT;
      }
      RUNNER_WL_COUNT(st, pass_l2);
      return TC_ACT_OK; /* ARP, IPv6: the bridge */
    default:
      RUNNER_WL_COUNT(st, pass_kernel);
      return TC_ACT_OK; /* malformed: the kernel refuses it as it always did */
  }
  if (!kh_mac_equal(h.eth->h_source, w->mac)) {
    RUNNER_WL_COUNT(st, drop_spoofed_mac);
    return TC_ACT_SHOT;
  }
  if (h.ip->saddr != pkt_addr(w->addr)) {
    RUNNER_WL_COUNT(st, drop_spoofed_ip);
    return TC_ACT_SHOT;
  }
  if (!(w->flags & RUNNER_WL_FAST) || !kh_mac_equal(h.eth->h_dest, w->gw_mac)) {
    RUNNER_WL_COUNT(st, pass_l2); /* to another MAC of the segment: the bridge switches it */
    return TC_ACT_OK;
  }
  if (pkt_ipv4_is_multicast_or_broadcast(h.ip->daddr)) {
    RUNNER_WL_COUNT(st, pass_local);
    return TC_ACT_OK;
  }
  if (pkt_ipv4_has_options(h.ip) || pkt_ipv4_is_fragment(h.ip) || h.ip->ttl <= 1) {
    RUNNER_WL_COUNT(st, pass_kernel);
    return TC_ACT_OK;
  }

  cfg = runner_get_config();
  if (!cfg || pkt_parse_l4(skb, &p) != PKT_PARSE_OK) {
    RUNNER_WL_COUNT(st, pass_kernel);
    return TC_ACT_OK;
  }
  switch (rn_forward_verdict(skb, cfg, &p)) {
    case RN_FWD_ALLOW:
      break;
    /* Counted per workload and in the runner's totals, as the forward filter counts them. */
    case RN_FWD_DENIED:
      RUNNER_WL_COUNT(st, drop_denied);
      RUNNER_COUNT(runner_get_stats(), policy_denied);
      return TC_ACT_SHOT;
    case RN_FWD_ISOLATED:
      RUNNER_WL_COUNT(st, drop_isolated);
      RUNNER_COUNT(runner_get_stats(), forward_dropped_isolated);
      return TC_ACT_SHOT;
    default: /* the source is the workload's own, so this is unreachable; the kernel decides */
      RUNNER_WL_COUNT(st, pass_kernel);
      return TC_ACT_OK;
  }

  peer = rn_wl_by_addr(p.daddr, &peer_ifindex);
  if (peer) {
    rc = rn_wl_deliver(skb, peer, peer_ifindex);
    if (rc == TC_ACT_REDIRECT) {
      RUNNER_WL_COUNT(st, fwd_peer);
      if (st) st->bytes_fwd += skb->len;
      return rc;
    }
  } else {
    rc = route_out(skb, cfg, w, &p, st);
    if (rc == TC_ACT_REDIRECT) return rc;
  }
  RUNNER_WL_COUNT(st, pass_kernel);
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
