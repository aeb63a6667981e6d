// SPDX-License-Identifier: GPL-2.0
/* Hub express path on the uplink (the device holding HOST_REACHABLE_ADDRESS): runner-to-runner
 * VXLAN frames are rewritten towards the target runner (lib/express.h) instead of being
 * decapsulated, routed and encapsulated again. Two entry points over one rewrite: TC ingress
 * (keeps the skb's GSO and checksum state; the default on veth) and XDP (native mode, for
 * physical NICs). Everything the rewrite does not own reaches the kernel untouched, where the
 * vxkr devices and host_forward take it. */
#include "lib/common.h"
#include "lib/express.h"
#include "lib/skb_gso.h"

/* Passing returns UNSPEC rather than OK so filters of other tools after ours still run. */
#define KH_TC_PASS TC_ACT_UNSPEC

SEC("tc")
int host_express_tc(struct __sk_buff* skb) {
  struct kh_express_ctx c = {.ctx = skb, .len = skb->len, .ingress_ifindex = skb->ingress_ifindex};
  /* An aggregate's inner TCP header is read too (its segment size is checked). */
  __u32 want = KH_VX_HEADERS_LEN + (skb->gso_size ? KH_TCP_MAX_HLEN : 0);

  /* Frames built by packet sockets (and some drivers) carry only the Ethernet header in the
   * linear part: make every header the rewrite reads directly accessible. */
  if (want > skb->len) want = skb->len;
  if ((void*)(long)skb->data + want > (void*)(long)skb->data_end) bpf_skb_pull_data(skb, want);
  c.data = (void*)(long)skb->data;
  c.data_end = (void*)(long)skb->data_end;
  if (skb->gso_size) {
    c.gso_size = skb->gso_size;
    c.gso_segs = skb->gso_segs;
    c.gso_tunnel = kh_skb_gso_is_plain_udp_tunnel(kh_skb_gso_type(skb));
  }

  switch (kh_express(&c, false)) {
    case KH_EXPRESS_FORWARD:
      return bpf_redirect(c.egress, 0);
    case KH_EXPRESS_DROP:
      return TC_ACT_SHOT;
    default:
      return KH_TC_PASS;
  }
}

SEC("xdp")
int host_express_xdp(struct xdp_md* ctx) {
  struct kh_express_ctx c = {.ctx = ctx, .ingress_ifindex = ctx->ingress_ifindex};
  const __u32 zero = 0;
  const struct express_config* cfg;

  c.data = (void*)(long)ctx->data;
  c.data_end = (void*)(long)ctx->data_end;
  c.len = (__u32)(c.data_end - c.data);

  switch (kh_express(&c, true)) {
    case KH_EXPRESS_FORWARD:
      cfg = bpf_map_lookup_elem(&express_config, &zero);
      if (c.egress == c.ingress_ifindex && cfg && !cfg->tx_devmap) return XDP_TX;
      return bpf_redirect_map(&express_tx, c.egress, 0);
    case KH_EXPRESS_DROP:
      return XDP_DROP;
    default:
      return XDP_PASS;
  }
}

char LICENSE[] SEC("license") = "GPL";
