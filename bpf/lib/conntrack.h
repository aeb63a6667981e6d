/* Runner conntrack: the flow keys of a packet (parsed by lib/pkt.h), the TCP state machine and
 * the timeouts.
 *
 * A flow is two runner_ct entries (see lib/runner_types.h): ORIGINAL keyed by the workload's
 * tuple, REPLY keyed by the tuple a reply carries after masquerade. The ORIGINAL entry holds
 * the state and the expiry; the daemon's garbage collector deletes both halves once expired.
 * No sequence-window tracking: like nf_conntrack with tcp_loose=1 a flow seen mid-stream is
 * picked up as ESTABLISHED, so flows survive a daemon restart or a collected entry.
 */
#pragma once

#include "lib/pkt.h"
#include "lib/runner_maps.h"

#define RN_NS_PER_SEC 1000000000ull

KH_INLINE void rn_ct_key_init(struct runner_ct_key* k, __be32 saddr, __be32 daddr, __u16 sport,
                              __u16 dport, __u8 proto) {
  __builtin_memset(k, 0, sizeof(*k));
  pkt_set_addr(k->saddr, saddr);
  pkt_set_addr(k->daddr, daddr);
  k->sport = sport;
  k->dport = dport;
  k->proto = proto;
}

/* Key of the packet as it travels. */
KH_INLINE void rn_ct_key_of(struct runner_ct_key* k, const struct pkt* p) {
  rn_ct_key_init(k, p->saddr, p->daddr, p->sport, p->dport, p->proto);
}

/* Key of a packet travelling the other way in the same flow. */
KH_INLINE void rn_ct_key_reversed(struct runner_ct_key* k, const struct pkt* p) {
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

  if (flags & PKT_TCP_RST) {
    state = RUNNER_TCP_CLOSE;
  } else if (flags & PKT_TCP_SYN) {
    if (dir == RUNNER_CT_ORIGINAL && !(flags & PKT_TCP_ACK)) {
      /* A new SYN on a closed or closing tuple reopens it (port reuse). */
      if (state == RUNNER_TCP_NONE || state == RUNNER_TCP_SYN_SENT ||
          state >= RUNNER_TCP_TIME_WAIT) {
        state = RUNNER_TCP_SYN_SENT;
        e->flags &= ~(RUNNER_CT_FIN_ORIGINAL | RUNNER_CT_FIN_REPLY);
      }
    } else if (dir == RUNNER_CT_REPLY && state == RUNNER_TCP_SYN_SENT) {
      state = RUNNER_TCP_SYN_RECV;
    }
  } else if (flags & PKT_TCP_FIN) {
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
  } else if (state == RUNNER_TCP_SYN_RECV && dir == RUNNER_CT_ORIGINAL && (flags & PKT_TCP_ACK)) {
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

  rn_ct_key_init(orig, pkt_addr(reply_entry->nat_addr), pkt_addr(reply->saddr),
                 reply_entry->nat_port, remote_port, reply->proto);
}

/* The REPLY key of a flow from its ORIGINAL key and entry. */
KH_INLINE void rn_ct_reply_of_original(struct runner_ct_key* reply,
                                       const struct runner_ct_key* orig,
                                       const struct runner_ct_entry* orig_entry) {
  __u16 remote_port = orig->proto == IPPROTO_ICMP ? orig_entry->nat_port : orig->dport;

  rn_ct_key_init(reply, pkt_addr(orig->daddr), pkt_addr(orig_entry->nat_addr), remote_port,
                 orig_entry->nat_port, orig->proto);
}
