/* Ethernet + IPv4 header access for TC programs, with the bounds checks the verifier needs and
 * a pull of non-linear data when the headers straddle the linear part of the skb. */
#pragma once

#include "lib/common.h"

#define KH_IP_MF 0x2000
#define KH_IP_OFFSET 0x1fff

enum kh_parse_result {
  KH_PARSE_OK = 0,
  KH_PARSE_NOT_IPV4,  /* not an IPv4 ethertype (ARP, IPv6, VLAN, ...) */
  KH_PARSE_MALFORMED, /* claims IPv4 but the header is truncated or invalid */
};

struct kh_eth_ipv4 {
  struct ethhdr* eth;
  struct iphdr* ip;
  __u32 ip_hlen; /* bytes, options included */
};

/* Makes the first `len` bytes directly accessible; false when the packet is shorter. */
KH_INLINE bool kh_skb_ensure(struct __sk_buff* skb, __u32 len) {
  if ((void*)(long)skb->data + len <= (void*)(long)skb->data_end) return true;
  if (skb->len < len) return false;
  return bpf_skb_pull_data(skb, len) == 0 &&
         (void*)(long)skb->data + len <= (void*)(long)skb->data_end;
}

/* Parses Ethernet + IPv4 at the start of the skb and checks what the kernel's ip_rcv() checks
 * before trusting the header: version, header length, total length within the frame. The header
 * checksum is left to the kernel: a fast path that forwards it keeps it intact, so the receiver
 * drops a corrupted header exactly as it would have otherwise.
 * Every pointer in *out is invalidated by any helper that changes packet data. */
KH_INLINE enum kh_parse_result kh_parse_eth_ipv4(struct __sk_buff* skb, struct kh_eth_ipv4* out) {
  void *data, *data_end;
  struct ethhdr* eth;
  struct iphdr* ip;
  __u32 hlen, tot;

  if (!kh_skb_ensure(skb, sizeof(*eth))) return KH_PARSE_NOT_IPV4;
  data = (void*)(long)skb->data;
  data_end = (void*)(long)skb->data_end;
  eth = data;
  if ((void*)(eth + 1) > data_end) return KH_PARSE_NOT_IPV4;
  if (eth->h_proto != bpf_htons(ETH_P_IP)) return KH_PARSE_NOT_IPV4;

  if (!kh_skb_ensure(skb, sizeof(*eth) + sizeof(*ip))) return KH_PARSE_MALFORMED;
  data = (void*)(long)skb->data;
  data_end = (void*)(long)skb->data_end;
  eth = data;
  ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > data_end) return KH_PARSE_MALFORMED;
  if (ip->version != 4 || ip->ihl < 5) return KH_PARSE_MALFORMED;
  hlen = ip->ihl * 4;
  tot = bpf_ntohs(ip->tot_len);
  if (tot < hlen || sizeof(*eth) + tot > skb->len) return KH_PARSE_MALFORMED;

  out->eth = eth;
  out->ip = ip;
  out->ip_hlen = hlen;
  return KH_PARSE_OK;
}

KH_INLINE bool kh_ipv4_has_options(const struct iphdr* ip) {
  return ip->ihl != 5;
}

/* Any fragment: first (MF set) or later (offset non-zero). */
KH_INLINE bool kh_ipv4_is_fragment(const struct iphdr* ip) {
  return (ip->frag_off & bpf_htons(KH_IP_MF | KH_IP_OFFSET)) != 0;
}

/* Multicast (224.0.0.0/4), limited broadcast and the reserved class E space above it. */
KH_INLINE bool kh_ipv4_is_multicast_or_broadcast(__be32 addr) {
  return (bpf_ntohl(addr) & 0xf0000000) >= 0xe0000000;
}

/* Network-order mask for a prefix length; 0..32 only (anything larger acts as 32). */
KH_INLINE __be32 kh_ipv4_prefix_mask(__u32 prefixlen) {
  if (prefixlen == 0) return 0;
  if (prefixlen >= 32) return 0xffffffff;
  return bpf_htonl(0xffffffffu << (32 - prefixlen));
}
