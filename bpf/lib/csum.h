/* Incremental Internet checksum updates (RFC 1624) for headers the program writes directly.
 * For L4 checksums that cover a pseudo header prefer bpf_l4_csum_replace() with
 * BPF_F_PSEUDO_HDR: it also handles CHECKSUM_PARTIAL skbs, which a direct write cannot. */
#pragma once

#include "lib/common.h"

KH_INLINE __u16 kh_csum_fold(__u32 sum) {
  sum = (sum & 0xffff) + (sum >> 16);
  sum = (sum & 0xffff) + (sum >> 16);
  return (__u16)sum;
}

/* One's-complement add of two 16-bit quantities (any byte order, as long as both match). */
KH_INLINE __u32 kh_csum_add16(__u32 sum, __u16 v) {
  return sum + v;
}

/* HC' = ~(~HC + ~m + m'): replace the 16-bit word `from` by `to` under checksum *sum. All three
 * are in network byte order, straight from the packet. */
KH_INLINE void kh_csum_replace2(__sum16* sum, __be16 from, __be16 to) {
  __u32 s = (__u16) ~*sum;

  s = kh_csum_add16(s, (__u16)~from);
  s = kh_csum_add16(s, to);
  *sum = (__sum16)~kh_csum_fold(s);
}

/* Same for a 32-bit field (an IPv4 address), word by word. */
KH_INLINE void kh_csum_replace4(__sum16* sum, __be32 from, __be32 to) {
  __u32 s = (__u16) ~*sum;

  s = kh_csum_add16(s, (__u16) ~(from & 0xffff));
  s = kh_csum_add16(s, (__u16) ~(from >> 16));
  s = kh_csum_add16(s, to & 0xffff);
  s = kh_csum_add16(s, to >> 16);
  *sum = (__sum16)~kh_csum_fold(s);
}

/* Decrements the TTL and patches the header checksum to match; returns the new TTL. The TTL
 * shares its 16-bit checksum word with the protocol byte, which stays unchanged. */
KH_INLINE __u8 kh_ipv4_decrease_ttl(struct iphdr* ip) {
  __be16 before = *(__be16*)&ip->ttl;
  __be16 after;

  ip->ttl--;
  after = *(__be16*)&ip->ttl;
  kh_csum_replace2(&ip->check, before, after);
  return ip->ttl;
}
