/* Measurement instrument of tools/bench (not part of the data plane): counts and drops, at XDP
 * (native on veth), the packets a benchmark sends, so counting costs the receiver almost nothing
 * and no later stage (socket, bridge, ICMP answers) throttles or pollutes the count.
 *
 * udp_port == 0: every frame matches (the testbed ceiling at the hub's uplink).
 * udp_port != 0: IPv4/UDP frames to that port match; everything else passes untouched.
 * Matched frames are dropped and counted in slot 0 when their IPv4 source is want_saddr (or
 * want_saddr is 0), else in slot 1 (e.g. NAT that did not translate). Slot 2 counts passes. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/udp.h>

/* After the kernel headers: these use their __u32/__u64. */
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

const volatile __u16 udp_port = 0;   /* host order */
const volatile __u32 want_saddr = 0; /* network order */

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __type(key, __u32);
  __type(value, __u64);
  __uint(max_entries, 3);
} bench_counts SEC(".maps");

static __always_inline int count(__u32 slot, int verdict) {
  __u64* c = bpf_map_lookup_elem(&bench_counts, &slot);

  if (c) *c += 1;
  return verdict;
}

SEC("xdp")
int bench_xdp_count(struct xdp_md* ctx) {
  void* data = (void*)(long)ctx->data;
  void* end = (void*)(long)ctx->data_end;
  struct ethhdr* eth = data;
  struct iphdr* ip;
  struct udphdr* udp;

  if (udp_port == 0) return count(0, XDP_DROP);
  if ((void*)(eth + 1) > end || eth->h_proto != bpf_htons(ETH_P_IP)) return count(2, XDP_PASS);
  ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > end || ip->protocol != IPPROTO_UDP || ip->ihl != 5)
    return count(2, XDP_PASS);
  udp = (void*)(ip + 1);
  if ((void*)(udp + 1) > end || udp->dest != bpf_htons(udp_port)) return count(2, XDP_PASS);
  if (want_saddr == 0 || ip->saddr == want_saddr) return count(0, XDP_DROP);
  return count(1, XDP_DROP);
}

char LICENSE[] SEC("license") = "GPL";
