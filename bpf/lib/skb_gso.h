/* The GSO type of a TC program's skb. __sk_buff exposes gso_size and gso_segs but not what kind
 * of aggregate it is, and that decides whether rewriting only the first segment's headers is
 * right: for a UDP-tunnel aggregate (VXLAN after GRO, or a tunnel's TSO skb handed over from
 * another namespace) segmentation copies the rewritten outer and inner headers to every segment;
 * for a plain UDP GSO skb (UDP_SEGMENT) every later segment would start with payload bytes the
 * sender chose, headers never checked. So the type is read from the kernel's skb with the
 * kfuncs bpf_cast_to_kern_ctx / bpf_rdonly_cast (6.2+) and CO-RE offsets. */
#pragma once

#include <bpf/bpf_core_read.h>

#include "lib/common.h"

extern void* bpf_cast_to_kern_ctx(void* obj) __ksym;
extern void* bpf_rdonly_cast(void* obj, __u32 btf_id) __ksym;

/* Only the fields read here; CO-RE finds their offsets in the running kernel's BTF. */
struct sk_buff___kh {
  unsigned char* head;
  unsigned int end; /* sk_buff_data_t: an offset from head on 64-bit kernels */
} __attribute__((preserve_access_index));

struct skb_shared_info___kh {
  unsigned int gso_type;
} __attribute__((preserve_access_index));

/* SKB_GSO_* bits (include/linux/skbuff.h). The kernel defines them in an anonymous enum, which
 * CO-RE cannot name; they mirror the NETIF_F_GSO feature bits ethtool reports by position and
 * have kept their values since they were added (checked against 6.18's BTF). */
#define KH_SKB_GSO_UDP_TUNNEL (1U << 10)
#define KH_SKB_GSO_UDP_TUNNEL_CSUM (1U << 11)
#define KH_SKB_GSO_PARTIAL (1U << 12)
#define KH_SKB_GSO_TUNNEL_REMCSUM (1U << 13)
#define KH_SKB_GSO_FRAGLIST (1U << 18)

KH_INLINE __u32 kh_skb_gso_type(struct __sk_buff* skb) {
  struct sk_buff___kh* k = bpf_cast_to_kern_ctx(skb);
  struct skb_shared_info___kh* shinfo =
      bpf_rdonly_cast(k->head + k->end, bpf_core_type_id_kernel(struct skb_shared_info___kh));

  return shinfo->gso_type;
}

/* A UDP-tunnel aggregate whose segments all repeat the first one's headers: no partial GSO (the
 * device would see headers the rewrite never looked at), no remote checksum offload, no frag
 * list (its segments keep their own headers). */
KH_INLINE bool kh_skb_gso_is_plain_udp_tunnel(__u32 gso_type) {
  return (gso_type & (KH_SKB_GSO_UDP_TUNNEL | KH_SKB_GSO_UDP_TUNNEL_CSUM)) &&
         !(gso_type & (KH_SKB_GSO_PARTIAL | KH_SKB_GSO_TUNNEL_REMCSUM | KH_SKB_GSO_FRAGLIST));
}
