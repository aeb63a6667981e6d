/* Measurement instrument of tools/bench (not part of the data plane): the testbed's forwarding
 * limit at the hub. Every VXLAN frame arriving at the hub's uplink is bounced towards runner r2
 * with the cheapest rewrite that still delivers it there (fixed MACs, addresses and VNI, an
 * incremental outer IP checksum, no lookup of any kind) and sent back out of the same device.
 * Two hooks, because which one is cheaper depends on the device: XDP_TX (on veth that needs the
 * peer in NAPI mode: the testbed turns GRO on for it, and the skb is converted to an XDP frame and
 * back) and TC ingress with a redirect to the device's own egress (the skb stays an skb). The
 * bench measures both and takes the faster as the limit: whatever a real hub does at either hook
 * costs at least that; what it costs beyond it is the hub's own cost per packet.
 * The third hook (route) is the same idea for a runner: on the TC ingress of a workload's
 * host-side veth, each IPv4 frame gets fixed MACs and the runner's uplink address as its source
 * (what a masquerading router does at the least) and is redirected out of the uplink. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>

#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

const volatile __u8 out_dmac[6] = {};   /* r2's uplink */
const volatile __u8 out_smac[6] = {};   /* the hub's uplink */
const volatile __u8 inner_dmac[6] = {}; /* b1 */
const volatile __u8 inner_smac[6] = {}; /* the hub's tunnel towards r2 */
const volatile __be32 src_ip = 0;       /* the hub */
const volatile __be32 dst_ip = 0;       /* r2 */
const volatile __be32 vni_word = 0;     /* VNI << 8, network order */
const volatile __u32 out_ifindex = 0;   /* route: the runner's uplink */

/* Outer Ethernet + IPv4 (no options) + UDP + VXLAN + inner Ethernet. */
#define BOUNCE_HEADERS (14 + 20 + 8 + 8 + 14)

static __always_inline void csum_replace4(__sum16* sum, __be32 from, __be32 to) {
  __u32 s = (__u16) ~*sum;

  s += (__u16) ~(from & 0xffff) + (__u16) ~(from >> 16) + (to & 0xffff) + (to >> 16);
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  *sum = (__sum16)~s;
}

/* Rewrites the frame in [data, end) towards r2; 0 when it is not a VXLAN frame to bounce. */
static __always_inline int bounce(void* data, void* end) {
  struct ethhdr* eth = data;
  struct iphdr* ip = (void*)(eth + 1);
  struct udphdr* udp = (void*)(ip + 1);
  __u8* vx = (void*)(udp + 1);
  struct ethhdr* ieth = (void*)(vx + 8);

  if ((void*)(ieth + 1) > end || udp->dest != bpf_htons(4789)) return 0;
  __builtin_memcpy(eth->h_dest, (const void*)out_dmac, 6);
  __builtin_memcpy(eth->h_source, (const void*)out_smac, 6);
  csum_replace4(&ip->check, ip->saddr, src_ip);
  ip->saddr = src_ip;
  csum_replace4(&ip->check, ip->daddr, dst_ip);
  ip->daddr = dst_ip;
  *(__be32*)(vx + 4) = vni_word;
  __builtin_memcpy(ieth->h_dest, (const void*)inner_dmac, 6);
  __builtin_memcpy(ieth->h_source, (const void*)inner_smac, 6);
  return 1;
}

SEC("xdp")
int bench_xdp_bounce(struct xdp_md* ctx) {
  return bounce((void*)(long)ctx->data, (void*)(long)ctx->data_end) ? XDP_TX : XDP_PASS;
}

SEC("tc")
int bench_tc_bounce(struct __sk_buff* skb) {
  /* Frames built by packet sockets carry only the Ethernet header in the linear part. */
  if (bpf_skb_pull_data(skb, BOUNCE_HEADERS) < 0) return TC_ACT_OK;
  if (!bounce((void*)(long)skb->data, (void*)(long)skb->data_end)) return TC_ACT_OK;
  return bpf_redirect(skb->ifindex, 0);
}

SEC("tc")
int bench_tc_route(struct __sk_buff* skb) {
  void* data = (void*)(long)skb->data;
  void* end = (void*)(long)skb->data_end;
  struct ethhdr* eth = data;
  struct iphdr* ip = (void*)(eth + 1);

  if (bpf_skb_pull_data(skb, sizeof(*eth) + sizeof(*ip)) < 0) return TC_ACT_OK;
  data = (void*)(long)skb->data;
  end = (void*)(long)skb->data_end;
  eth = data;
  ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return TC_ACT_OK;
  __builtin_memcpy(eth->h_dest, (const void*)out_dmac, 6);
  __builtin_memcpy(eth->h_source, (const void*)out_smac, 6);
  /* The generator's UDP checksum is 0, so only the IP header's needs the new source. */
  csum_replace4(&ip->check, ip->saddr, src_ip);
  ip->saddr = src_ip;
  return bpf_redirect(out_ifindex, 0);
}

char LICENSE[] SEC("license") = "GPL";
