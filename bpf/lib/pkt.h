/* Packet parsing for every kohaku TC program: Ethernet + IPv4 and, where a program needs it, the
 * start of the L4 header. One result code (enum pkt_parse_result) and two ways in, because the
 * programs need different things from a packet:
 *  - pkt_parse_l3(): direct packet access. Checks what the kernel's ip_rcv() checks and hands
 *    back pointers into the linear data, pulling non-linear data when the headers straddle it.
 *    For programs that rewrite headers in place (host_forward: MACs and TTL). Result: struct
 *    pkt_hdrs.
 *  - pkt_parse_l4() (outer packet) and pkt_parse_ipv4_at() (any IPv4 header, e.g. the one
 *    quoted in an ICMP error): copies with bpf_skb_load_bytes(), so headers in the non-linear
 *    part are found without a pull, down to the L4 tuple (ports, TCP flags, ICMP type). For
 *    programs that only rewrite through helpers (the runner's masquerade and filter). Result:
 *    struct pkt.
 * Plus the IPv4 header predicates and address helpers both kinds of program use.
 */
#pragma once

#include "lib/common.h"

#define PKT_IP_MF 0x2000
#define PKT_IP_OFFSET 0x1fff

/* TCP header flag bits (byte 13). */
#define PKT_TCP_FIN 0x01
#define PKT_TCP_SYN 0x02
#define PKT_TCP_RST 0x04
#define PKT_TCP_ACK 0x10

/* linux/icmp.h pulls in libc socket headers the BPF target lacks: the few bits needed here. */
#define ICMP_ECHOREPLY 0
#define ICMP_DEST_UNREACH 3
#define ICMP_ECHO 8
#define ICMP_TIME_EXCEEDED 11
#define ICMP_PARAMETERPROB 12

struct icmphdr {
  __u8 type;
  __u8 code;
  __sum16 checksum;
  union {
    struct {
      __be16 id;
      __be16 sequence;
    } echo;
    __be32 gateway;
  } un;
};

enum pkt_parse_result {
  PKT_PARSE_OK = 0,
  PKT_PARSE_NOT_IPV4,  /* not an IPv4 ethertype (ARP, IPv6, VLAN, ...) */
  PKT_PARSE_MALFORMED, /* claims IPv4 but the header is truncated or invalid */
};

/* Direct view of the headers (pkt_parse_l3): pointers into the linear data, invalidated by any
 * helper that changes packet data. */
struct pkt_hdrs {
  struct ethhdr* eth;
  struct iphdr* ip;
  __u32 ip_hlen; /* bytes, options included */
};

/* Copied view (pkt_parse_l4, pkt_parse_ipv4_at): what the programs need to know about a packet,
 * valid whatever the program does to the packet afterwards. All offsets are from skb->data.
 * Kept apart from struct pkt_hdrs: its address escapes to bpf_skb_load_bytes(), so the compiler
 * keeps it whole on the stack, and unused pointer fields would cost every instance 24 bytes. */
struct pkt {
  __u32 l3_off;
  __u32 l4_off;
  __u32 l3_end; /* l3_off + IP total length */
  __be32 saddr;
  __be32 daddr;
  __u8 proto;
  __u8 fragment; /* any fragment: no (complete) L4 header to translate */
  __u8 tcp_flags;
  __u8 icmp_type;
  __u8 icmp_code;
  __u8 has_ports; /* sport/dport valid: TCP, UDP, ICMP echo request/reply */
  __u16 sport;    /* host order; ICMP echo: the identifier */
  __u16 dport;    /* host order; ICMP echo: the identifier */
};

/* Addresses stored as __u8[4] in map keys and values (network order) to and from __be32. */
KH_INLINE __be32 pkt_addr(const __u8 a[4]) {
  __be32 v;

  __builtin_memcpy(&v, a, 4);
  return v;
}

KH_INLINE void pkt_set_addr(__u8 a[4], __be32 v) {
  __builtin_memcpy(a, &v, 4);
}

KH_INLINE bool pkt_ipv4_has_options(const struct iphdr* ip) {
  return ip->ihl != 5;
}

/* Any fragment: first (MF set) or later (offset non-zero). */
KH_INLINE bool pkt_ipv4_is_fragment(const struct iphdr* ip) {
  return (ip->frag_off & bpf_htons(PKT_IP_MF | PKT_IP_OFFSET)) != 0;
}

/* Multicast (224.0.0.0/4), limited broadcast and the reserved class E space above it. */
KH_INLINE bool pkt_ipv4_is_multicast_or_broadcast(__be32 addr) {
  return (bpf_ntohl(addr) & 0xf0000000) >= 0xe0000000;
}

/* Network-order mask for a prefix length; 0..32 only (anything larger acts as 32). */
KH_INLINE __be32 pkt_ipv4_prefix_mask(__u32 prefixlen) {
  if (prefixlen == 0) return 0;
  if (prefixlen >= 32) return 0xffffffff;
  return bpf_htonl(0xffffffffu << (32 - prefixlen));
}

KH_INLINE bool pkt_icmp_is_error(__u8 type) {
  return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB;
}

KH_INLINE bool pkt_icmp_is_echo(__u8 type) {
  return type == ICMP_ECHO || type == ICMP_ECHOREPLY;
}

/* Makes the first `len` bytes directly accessible; false when the packet is shorter. */
KH_INLINE bool pkt_skb_ensure(struct __sk_buff* skb, __u32 len) {
  void *data, *data_end;

  if ((void*)(long)skb->data + len <= (void*)(long)skb->data_end) return true;
  if (skb->len < len || bpf_skb_pull_data(skb, len) != 0) return false;
  data = (void*)(long)skb->data;
  data_end = (void*)(long)skb->data_end;
  /* Opaque to the compiler: otherwise it may fold the comparison into arithmetic on pkt_end,
   * which the verifier refuses ("pointer arithmetic on pkt_end prohibited"). */
  asm volatile("" : "+r"(data_end));
  if (data + len > data_end) return false;
  return true;
}

/* Parses Ethernet + IPv4 at the start of the skb by direct access and checks what the kernel's
 * ip_rcv() checks before trusting the header: version, header length, total length within the
 * frame. The header checksum is left to the kernel: a fast path that forwards it keeps it
 * intact, so the receiver drops a corrupted header exactly as it would have otherwise.
 */
KH_INLINE enum pkt_parse_result pkt_parse_l3(struct __sk_buff* skb, struct pkt_hdrs* out) {
  void *data, *data_end;
  struct ethhdr* eth;
  struct iphdr* ip;
  __u32 hlen, tot;

  if (!pkt_skb_ensure(skb, sizeof(*eth))) return PKT_PARSE_NOT_IPV4;
  data = (void*)(long)skb->data;
  data_end = (void*)(long)skb->data_end;
  eth = data;
  if ((void*)(eth + 1) > data_end) return PKT_PARSE_NOT_IPV4;
  if (eth->h_proto != bpf_htons(ETH_P_IP)) return PKT_PARSE_NOT_IPV4;

  if (!pkt_skb_ensure(skb, sizeof(*eth) + sizeof(*ip))) return PKT_PARSE_MALFORMED;
  data = (void*)(long)skb->data;
  data_end = (void*)(long)skb->data_end;
  eth = data;
  ip = (void*)(eth + 1);
  if ((void*)(ip + 1) > data_end) return PKT_PARSE_MALFORMED;
  if (ip->version != 4 || ip->ihl < 5) return PKT_PARSE_MALFORMED;
  hlen = ip->ihl * 4;
  tot = bpf_ntohs(ip->tot_len);
  if (tot < hlen || sizeof(*eth) + tot > skb->len) return PKT_PARSE_MALFORMED;

  out->eth = eth;
  out->ip = ip;
  out->ip_hlen = hlen;
  return PKT_PARSE_OK;
}

/* Reads the IPv4 header at l3_off and the start of its L4 header. `end` bounds the L4 header:
 * the frame for an outer packet, the quoting ICMP message for an inner one (which may be cut
 * off after 8 bytes of L4: then ports are still valid). */
KH_INLINE enum pkt_parse_result pkt_parse_ipv4_at(struct __sk_buff* skb, __u32 l3_off, __u32 end,
                                                  struct pkt* p) {
  struct iphdr ip;
  __u32 hlen;

  if (bpf_skb_load_bytes(skb, l3_off, &ip, sizeof(ip)) < 0) return PKT_PARSE_MALFORMED;
  if (ip.version != 4 || ip.ihl < 5) return PKT_PARSE_MALFORMED;
  hlen = ip.ihl * 4;
  p->l3_off = l3_off;
  p->l4_off = l3_off + hlen;
  p->l3_end = l3_off + bpf_ntohs(ip.tot_len);
  p->saddr = ip.saddr;
  p->daddr = ip.daddr;
  p->proto = ip.protocol;
  p->fragment = pkt_ipv4_is_fragment(&ip);
  p->tcp_flags = 0;
  p->icmp_type = 0;
  p->icmp_code = 0;
  p->has_ports = 0;
  p->sport = 0;
  p->dport = 0;
  if (p->fragment && (ip.frag_off & bpf_htons(PKT_IP_OFFSET)))
    return PKT_PARSE_OK; /* later fragment: no L4 header at all */

  if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
    __be16 ports[2];

    if (p->l4_off + 4 > end || bpf_skb_load_bytes(skb, p->l4_off, ports, 4) < 0)
      return PKT_PARSE_MALFORMED;
    p->sport = bpf_ntohs(ports[0]);
    p->dport = bpf_ntohs(ports[1]);
    p->has_ports = 1;
    if (p->proto == IPPROTO_TCP && p->l4_off + 14 <= end &&
        bpf_skb_load_bytes(skb, p->l4_off + 13, &p->tcp_flags, 1) < 0)
      return PKT_PARSE_MALFORMED;
  } else if (p->proto == IPPROTO_ICMP) {
    struct icmphdr icmp;

    if (p->l4_off + sizeof(icmp) > end ||
        bpf_skb_load_bytes(skb, p->l4_off, &icmp, sizeof(icmp)) < 0)
      return PKT_PARSE_MALFORMED;
    p->icmp_type = icmp.type;
    p->icmp_code = icmp.code;
    if (pkt_icmp_is_echo(icmp.type)) {
      p->sport = p->dport = bpf_ntohs(icmp.un.echo.id);
      p->has_ports = 1;
    }
  }
  return PKT_PARSE_OK;
}

/* Outer packet of an Ethernet frame, through its L4 header (pkt_parse_ipv4_at). */
KH_INLINE enum pkt_parse_result pkt_parse_l4(struct __sk_buff* skb, struct pkt* p) {
  enum pkt_parse_result r;

  if (skb->protocol != bpf_htons(ETH_P_IP)) return PKT_PARSE_NOT_IPV4;
  r = pkt_parse_ipv4_at(skb, ETH_HLEN, skb->len, p);
  if (r != PKT_PARSE_OK) return r;
  if (p->l3_end > skb->len || p->l3_end < p->l4_off) return PKT_PARSE_MALFORMED;
  return PKT_PARSE_OK;
}
