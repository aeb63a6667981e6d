/* Runner masquerade: rewriting addresses, ports and ICMP identifiers with incremental checksum
 * updates, the rewrite of the packet quoted in an ICMP error, and external port allocation.
 *
 * Checksums: outer L4 checksums go through bpf_l4_csum_replace() so CHECKSUM_PARTIAL skbs
 * (offloaded TCP/UDP from containers) and CHECKSUM_COMPLETE skbs stay consistent: address
 * changes carry BPF_F_PSEUDO_HDR, UDP carries BPF_F_MARK_MANGLED_0 so a zero ("none") checksum
 * stays zero and a computed zero becomes 0xffff. Inside an ICMP error every change is balanced
 * against the outer ICMP checksum, so the sum over the ICMP message (what CHECKSUM_COMPLETE
 * tracks) never changes and the outer update needs no pseudo-header flag.
 */
#pragma once

#include <linux/tcp.h>
#include <linux/udp.h>

#include "lib/conntrack.h"
#include "lib/csum.h"

#ifndef offsetof
#define offsetof(type, member) __builtin_offsetof(type, member)
#endif

/* Bounded collision retries for a new flow's external port (random start, then linear). */
#define RN_NAT_MAX_RETRIES 32

#define RN_IP_CSUM_OFF offsetof(struct iphdr, check)
#define RN_IP_SADDR_OFF offsetof(struct iphdr, saddr)
#define RN_IP_DADDR_OFF offsetof(struct iphdr, daddr)

KH_INLINE __u32 rn_l4_csum_off(__u8 proto) {
  if (proto == IPPROTO_TCP) return offsetof(struct tcphdr, check);
  if (proto == IPPROTO_UDP) return offsetof(struct udphdr, check);
  return offsetof(struct icmphdr, checksum);
}

/* Port field (source or destination) of TCP/UDP, or the ICMP echo identifier. */
KH_INLINE __u32 rn_l4_port_off(__u8 proto, bool source) {
  if (proto == IPPROTO_ICMP) return offsetof(struct icmphdr, un.echo.id);
  return source ? 0 : 2;
}

/* Rewrites the source or destination address of the outer IPv4 header at p. */
KH_INLINE int rn_rewrite_addr(struct __sk_buff* skb, const struct pkt* p, bool source, __be32 from,
                              __be32 to) {
  __u32 field = p->l3_off + (source ? RN_IP_SADDR_OFF : RN_IP_DADDR_OFF);

  if (from == to) return 0;
  if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
    __u64 flags = BPF_F_PSEUDO_HDR | sizeof(to);

    if (p->proto == IPPROTO_UDP) flags |= BPF_F_MARK_MANGLED_0;
    if (bpf_l4_csum_replace(skb, p->l4_off + rn_l4_csum_off(p->proto), from, to, flags)) return -1;
  }
  if (bpf_l3_csum_replace(skb, p->l3_off + RN_IP_CSUM_OFF, from, to, sizeof(to))) return -1;
  return bpf_skb_store_bytes(skb, field, &to, sizeof(to), 0);
}

/* Rewrites a TCP/UDP port or the ICMP echo identifier of the outer packet (host order in). */
KH_INLINE int rn_rewrite_port(struct __sk_buff* skb, const struct pkt* p, bool source, __u16 from_h,
                              __u16 to_h) {
  __be16 from = bpf_htons(from_h), to = bpf_htons(to_h);
  __u64 flags = sizeof(to);

  if (from == to) return 0;
  if (p->proto == IPPROTO_UDP) flags |= BPF_F_MARK_MANGLED_0;
  if (bpf_l4_csum_replace(skb, p->l4_off + rn_l4_csum_off(p->proto), from, to, flags)) return -1;
  return bpf_skb_store_bytes(skb, p->l4_off + rn_l4_port_off(p->proto, source), &to, sizeof(to), 0);
}

/* Rewrites the packet quoted in an ICMP error: one address of its IPv4 header (with its header
 * checksum), the matching port or echo identifier and, when the quote contains it, its L4
 * checksum. `outer` is the ICMP error, `in` the quoted packet. The quoted header's own checksum
 * absorbs the address change, so only the port and the quoted L4 checksum change the sum over
 * the ICMP message and need balancing in the outer ICMP checksum. */
KH_INLINE int rn_rewrite_icmp_inner(struct __sk_buff* skb, const struct pkt* outer,
                                    const struct pkt* in, bool source, __be32 from, __be32 to,
                                    __u16 from_port_h, __u16 to_port_h) {
  __u32 outer_csum = outer->l4_off + offsetof(struct icmphdr, checksum);
  __u32 end = outer->l3_end;
  __be16 from_port = bpf_htons(from_port_h), to_port = bpf_htons(to_port_h);
  __u32 csum_off = in->l4_off + rn_l4_csum_off(in->proto);
  __u32 port_off = in->l4_off + rn_l4_port_off(in->proto, source);
  __sum16 old_csum, new_csum;

  if (from != to) {
    if (bpf_l3_csum_replace(skb, in->l3_off + RN_IP_CSUM_OFF, from, to, sizeof(to))) return -1;
    if (bpf_skb_store_bytes(skb, in->l3_off + (source ? RN_IP_SADDR_OFF : RN_IP_DADDR_OFF), &to,
                            sizeof(to), 0))
      return -1;
  }

  /* The quoted L4 checksum, when quoted: TCP's sits beyond the 8 bytes RFC 792 guarantees. */
  if (csum_off + sizeof(__sum16) <= end &&
      bpf_skb_load_bytes(skb, csum_off, &old_csum, sizeof(old_csum)) == 0) {
    new_csum = old_csum;
    if (in->proto != IPPROTO_UDP || old_csum != 0) {
      if (in->proto != IPPROTO_ICMP) kh_csum_replace4(&new_csum, from, to); /* pseudo header */
      kh_csum_replace2(&new_csum, from_port, to_port);
      if (in->proto == IPPROTO_UDP && new_csum == 0) new_csum = 0xffff;
    }
    if (new_csum != old_csum) {
      if (bpf_l4_csum_replace(skb, outer_csum, old_csum, new_csum, sizeof(new_csum))) return -1;
      if (bpf_skb_store_bytes(skb, csum_off, &new_csum, sizeof(new_csum), 0)) return -1;
    }
  }

  if (from_port != to_port && port_off + sizeof(to_port) <= end) {
    if (bpf_l4_csum_replace(skb, outer_csum, from_port, to_port, sizeof(to_port))) return -1;
    if (bpf_skb_store_bytes(skb, port_off, &to_port, sizeof(to_port), 0)) return -1;
  }
  return 0;
}

/* Claims an external port for a new flow by inserting its REPLY entry with BPF_NOEXIST: the
 * insert itself is the collision check, so two CPUs can never hand out the same port. The
 * original port is kept when it lies in the range and is free; otherwise a random start in the
 * range, then the next ports, at most RN_NAT_MAX_RETRIES tries. Returns the port, 0 if none. */
KH_INLINE __u16 rn_nat_claim_port(const struct runner_config* cfg, struct runner_stats* stats,
                                  struct runner_ct_key* reply, const struct runner_ct_entry* value,
                                  __u16 original) {
  __u32 min = cfg->port_min, max = cfg->port_max;
  __u32 span, start, i;

  if (min == 0 || max < min) return 0;
  span = max - min + 1;
  if (original >= min && original <= max && original != cfg->vxlan_port) {
    reply->dport = original;
    if (reply->proto == IPPROTO_ICMP) reply->sport = original;
    if (bpf_map_update_elem(&runner_ct, reply, value, BPF_NOEXIST) == 0) return original;
    RUNNER_COUNT(stats, nat_port_retries);
  }
  start = bpf_get_prandom_u32() % span;
  for (i = 0; i < RN_NAT_MAX_RETRIES; i++) {
    __u32 port = min + (start + i) % span;

    if (port == cfg->vxlan_port || port == original) continue;
    reply->dport = port;
    if (reply->proto == IPPROTO_ICMP) reply->sport = port;
    if (bpf_map_update_elem(&runner_ct, reply, value, BPF_NOEXIST) == 0) return port;
    RUNNER_COUNT(stats, nat_port_retries);
  }
  return 0;
}
