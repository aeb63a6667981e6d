/* Runner conntrack: the tuple of a packet, the TCP state machine and the timeouts.
 *
 * A flow is two runner_ct entries (see lib/runner_maps.h): ORIGINAL keyed by the workload's
 * tuple, REPLY keyed by the tuple a reply carries after masquerade. The ORIGINAL entry holds
 * the state and the expiry; the daemon's garbage collector deletes both halves once expired.
 * No sequence-window tracking: like nf_conntrack with tcp_loose=1 a flow seen mid-stream is
 * picked up as ESTABLISHED, so flows survive a daemon restart or a collected entry.
 */
#pragma once

#include <linux/tcp.h>
#include <linux/udp.h>

#include "lib/eth_ipv4.h"
#include "lib/runner_maps.h"

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

#define RN_NS_PER_SEC 1000000000ull

#define RN_TCP_FIN 0x01
#define RN_TCP_SYN 0x02
#define RN_TCP_RST 0x04
#define RN_TCP_ACK 0x10

KH_INLINE __be32 rn_addr(const __u8 a[4]) {
  __be32 v;

  __builtin_memcpy(&v, a, 4);
  return v;
}

KH_INLINE void rn_set_addr(__u8 a[4], __be32 v) {
  __builtin_memcpy(a, &v, 4);
}

KH_INLINE bool rn_in_overlay(const struct runner_config* cfg, __be32 addr) {
  return (addr & rn_addr(cfg->overlay_mask)) == rn_addr(cfg->overlay_addr);
}

/* What the programs need to know about a packet. Read with bpf_skb_load_bytes() so headers in
 * the non-linear part of an skb are found too; all offsets are from skb->data. */
struct rn_pkt {
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

enum rn_parse {
  RN_PARSE_OK = 0,
  RN_PARSE_NOT_IPV4,
  RN_PARSE_MALFORMED,
};

KH_INLINE bool rn_icmp_is_error(__u8 type) {
  return type == ICMP_DEST_UNREACH || type == ICMP_TIME_EXCEEDED || type == ICMP_PARAMETERPROB;
}

KH_INLINE bool rn_icmp_is_echo(__u8 type) {
  return type == ICMP_ECHO || type == ICMP_ECHOREPLY;
}

/* Reads the IPv4 header at l3_off and the start of its L4 header. `end` bounds the L4 header:
 * the frame for an outer packet, the quoting ICMP message for an inner one (which may be cut
 * off after 8 bytes of L4: then ports are still valid). */
KH_INLINE enum rn_parse rn_parse_ipv4_at(struct __sk_buff* skb, __u32 l3_off, __u32 end,
                                         struct rn_pkt* p) {
  struct iphdr ip;
  __u32 hlen;

  if (bpf_skb_load_bytes(skb, l3_off, &ip, sizeof(ip)) < 0) return RN_PARSE_MALFORMED;
  if (ip.version != 4 || ip.ihl < 5) return RN_PARSE_MALFORMED;
  hlen = ip.ihl * 4;
  p->l3_off = l3_off;
  p->l4_off = l3_off + hlen;
  p->l3_end = l3_off + bpf_ntohs(ip.tot_len);
  p->saddr = ip.saddr;
  p->daddr = ip.daddr;
  p->proto = ip.protocol;
  p->fragment = kh_ipv4_is_fragment(&ip);
  p->tcp_flags = 0;
  p->icmp_type = 0;
  p->icmp_code = 0;
  p->has_ports = 0;
  p->sport = 0;
  p->dport = 0;
  if (p->fragment && (ip.frag_off & bpf_htons(KH_IP_OFFSET)))
    return RN_PARSE_OK; /* later fragment: no L4 header at all */

  if (p->proto == IPPROTO_TCP || p->proto == IPPROTO_UDP) {
    __be16 ports[2];

    if (p->l4_off + 4 > end || bpf_skb_load_bytes(skb, p->l4_off, ports, 4) < 0)
      return RN_PARSE_MALFORMED;
    p->sport = bpf_ntohs(ports[0]);
    p->dport = bpf_ntohs(ports[1]);
    p->has_ports = 1;
    if (p->proto == IPPROTO_TCP && p->l4_off + 14 <= end &&
        bpf_skb_load_bytes(skb, p->l4_off + 13, &p->tcp_flags, 1) < 0)
      return RN_PARSE_MALFORMED;
  } else if (p->proto == IPPROTO_ICMP) {
    struct icmphdr icmp;

    if (p->l4_off + sizeof(icmp) > end ||
        bpf_skb_load_bytes(skb, p->l4_off, &icmp, sizeof(icmp)) < 0)
      return RN_PARSE_MALFORMED;
    p->icmp_type = icmp.type;
    p->icmp_code = icmp.code;
    if (rn_icmp_is_echo(icmp.type)) {
      p->sport = p->dport = bpf_ntohs(icmp.un.echo.id);
      p->has_ports = 1;
    }
  }
  return RN_PARSE_OK;
}

/* Outer packet of an Ethernet frame. */
KH_INLINE enum rn_parse rn_parse(struct __sk_buff* skb, struct rn_pkt* p) {
  enum rn_parse r;

  if (skb->protocol != bpf_htons(ETH_P_IP)) return RN_PARSE_NOT_IPV4;
  r = rn_parse_ipv4_at(skb, ETH_HLEN, skb->len, p);
  if (r != RN_PARSE_OK) return r;
  if (p->l3_end > skb->len || p->l3_end < p->l4_off) return RN_PARSE_MALFORMED;
  return RN_PARSE_OK;
}

KH_INLINE void rn_ct_key_init(struct runner_ct_key* k, __be32 saddr, __be32 daddr, __u16 sport,
                              __u16 dport, __u8 proto) {
  __builtin_memset(k, 0, sizeof(*k));
  rn_set_addr(k->saddr, saddr);
  rn_set_addr(k->daddr, daddr);
  k->sport = sport;
  k->dport = dport;
  k->proto = proto;
}

/* Key of the packet as it travels. */
KH_INLINE void rn_ct_key_of(struct runner_ct_key* k, const struct rn_pkt* p) {
  rn_ct_key_init(k, p->saddr, p->daddr, p->sport, p->dport, p->proto);
}

/* Key of a packet travelling the other way in the same flow. */
KH_INLINE void rn_ct_key_reversed(struct runner_ct_key* k, const struct rn_pkt* p) {
  rn_ct_key_init(k, p->daddr, p->saddr, p->dport, p->sport, p->proto);
}

KH_INLINE __u32 rn_ct_timeout(const struct runner_config* cfg, __u8 proto,
                              const struct runner_ct_entry* e) {
  const struct runner_ct_timeouts* t = &cfg->timeouts;

  if (proto == IPPROTO_UDP) return (e->flags & RUNNER_CT_SEEN_REPLY) ? t->udp_stream : t->udp;
  if (proto != IPPROTO_TCP) return t->icmp;
  switch (e->tcp_state) {
    case RUNNER_TCP_SYN_SENT:
      return t->tcp_syn_sent;
    case RUNNER_TCP_SYN_RECV:
      return t->tcp_syn_recv;
    case RUNNER_TCP_FIN_WAIT:
      return t->tcp_fin_wait;
    case RUNNER_TCP_CLOSE_WAIT:
      return t->tcp_close_wait;
    case RUNNER_TCP_TIME_WAIT:
      return t->tcp_time_wait;
    case RUNNER_TCP_CLOSE:
      return t->tcp_close;
    default:
      return t->tcp_established;
  }
}

/* Simplified nf_conntrack TCP transitions, enough to pick the right timeout. */
KH_INLINE void rn_ct_tcp_transition(struct runner_ct_entry* e, __u8 flags, int dir) {
  __u8 state = e->tcp_state;

  if (flags & RN_TCP_RST) {
    state = RUNNER_TCP_CLOSE;
  } else if (flags & RN_TCP_SYN) {
    if (dir == RUNNER_CT_ORIGINAL && !(flags & RN_TCP_ACK)) {
      /* A new SYN on a closed or closing tuple reopens it (port reuse). */
      if (state == RUNNER_TCP_NONE || state == RUNNER_TCP_SYN_SENT ||
          state >= RUNNER_TCP_TIME_WAIT) {
        state = RUNNER_TCP_SYN_SENT;
        e->flags &= ~(RUNNER_CT_FIN_ORIGINAL | RUNNER_CT_FIN_REPLY);
      }
    } else if (dir == RUNNER_CT_REPLY && state == RUNNER_TCP_SYN_SENT) {
      state = RUNNER_TCP_SYN_RECV;
    }
  } else if (flags & RN_TCP_FIN) {
    if (state != RUNNER_TCP_CLOSE) {
      e->flags |= dir == RUNNER_CT_ORIGINAL ? RUNNER_CT_FIN_ORIGINAL : RUNNER_CT_FIN_REPLY;
      if ((e->flags & RUNNER_CT_FIN_ORIGINAL) && (e->flags & RUNNER_CT_FIN_REPLY))
        state = RUNNER_TCP_TIME_WAIT;
      else if (e->flags & RUNNER_CT_FIN_ORIGINAL)
        state = RUNNER_TCP_FIN_WAIT;
      else
        state = RUNNER_TCP_CLOSE_WAIT;
    }
  } else if (state == RUNNER_TCP_NONE) {
    state = RUNNER_TCP_ESTABLISHED; /* picked up mid-stream */
  } else if (state == RUNNER_TCP_SYN_RECV && dir == RUNNER_CT_ORIGINAL && (flags & RN_TCP_ACK)) {
    state = RUNNER_TCP_ESTABLISHED;
  }
  e->tcp_state = state;
}

/* Accounts one packet of the flow whose ORIGINAL entry is `e`, travelling in `dir`. Plain
 * stores: two CPUs racing on one flow can lose a counter increment, never translate wrongly. */
KH_INLINE void rn_ct_touch(const struct runner_config* cfg, struct runner_ct_entry* e, __u8 proto,
                           __u8 tcp_flags, int dir, __u64 now) {
  if (dir == RUNNER_CT_REPLY) {
    e->flags |= RUNNER_CT_SEEN_REPLY;
    e->packets_reply++;
  } else {
    e->packets_original++;
  }
  if (proto == IPPROTO_TCP) rn_ct_tcp_transition(e, tcp_flags, dir);
  e->last_seen_ns = now;
  e->expires_ns = now + (__u64)rn_ct_timeout(cfg, proto, e) * RN_NS_PER_SEC;
}

/* The ORIGINAL key of the flow a REPLY entry belongs to: reply key (S, U, sp, ext) maps to
 * (C, S, cp, sp); for ICMP echo (S, U, id', id') maps to (C, S, id, id). */
KH_INLINE void rn_ct_original_of_reply(struct runner_ct_key* orig,
                                       const struct runner_ct_key* reply,
                                       const struct runner_ct_entry* reply_entry) {
  __u16 remote_port = reply->proto == IPPROTO_ICMP ? reply_entry->nat_port : reply->sport;

  rn_ct_key_init(orig, rn_addr(reply_entry->nat_addr), rn_addr(reply->saddr), reply_entry->nat_port,
                 remote_port, reply->proto);
}

/* The REPLY key of a flow from its ORIGINAL key and entry. */
KH_INLINE void rn_ct_reply_of_original(struct runner_ct_key* reply,
                                       const struct runner_ct_key* orig,
                                       const struct runner_ct_entry* orig_entry) {
  __u16 remote_port = orig->proto == IPPROTO_ICMP ? orig_entry->nat_port : orig->dport;

  rn_ct_key_init(reply, rn_addr(orig->daddr), rn_addr(orig_entry->nat_addr), remote_port,
                 orig_entry->nat_port, orig->proto);
}
