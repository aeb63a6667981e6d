/* Runner uplink, TC egress: masquerades traffic from the kohaku networks to the outside.
 *
 * Packets whose source is in a kohaku network -- the overlay, or a named L2 network with
 * outbound NAT on (lib/net_class.h) -- and whose destination is outside all of them leave with
 * the uplink's address as source and an external port (or ICMP echo identifier) claimed in the
 * conntrack table; ICMP errors a workload sends about a tracked flow have their quoted packet
 * translated too. A named network with outbound NAT off leaves untouched (its addresses are
 * routable by the operator's choice); deny rules apply to both. Everything else on the uplink --
 * the runner's own traffic, the VXLAN underlay, traffic between kohaku networks -- passes
 * untouched. Traffic of a NAT-on network that cannot be masqueraded (fragments, protocols
 * without ports) is dropped rather than leaked with a private source.
 */
#include "lib/conntrack.h"
#include "lib/nat.h"
#include "lib/net_class.h"
#include "lib/pkt.h"
#include "lib/policy.h"

KH_INLINE int rn_egress_icmp_error(struct __sk_buff* skb, const struct runner_config* cfg,
                                   struct runner_stats* stats, const struct pkt* p) {
  struct runner_ct_key key;
  struct runner_ct_entry* orig;
  struct pkt in;

  /* The quoted packet is a reply the workload received: reversed, it is the ORIGINAL key. */
  if (pkt_parse_ipv4_at(skb, p->l4_off + sizeof(struct icmphdr), p->l3_end, &in) != PKT_PARSE_OK ||
      !in.has_ports)
    goto drop;
  rn_ct_key_reversed(&key, &in);
  orig = bpf_map_lookup_elem(&runner_ct, &key);
  if (!orig || orig->dir != RUNNER_CT_ORIGINAL) goto drop;
  if (rn_rewrite_addr(skb, p, true, p->saddr, pkt_addr(orig->nat_addr)) ||
      rn_rewrite_icmp_inner(skb, p, &in, false, in.daddr, pkt_addr(orig->nat_addr), in.dport,
                            orig->nat_port))
    return TC_ACT_SHOT;
  RUNNER_COUNT(stats, icmp_errors_translated);
  return TC_ACT_OK;
drop:
  RUNNER_COUNT(stats, dropped_untracked_icmp_error);
  return TC_ACT_SHOT;
}

/* Reserves the port of a flow the runner itself opened from the uplink address, so masquerade
 * never hands out a (remote, port) pair the runner's sockets use: the kernel picks ephemeral
 * ports without knowing our table, and both default to 32768 and up. A port masquerade handed
 * out first cannot be taken back from its workload; that case is only counted. */
KH_INLINE void rn_track_host_flow(const struct runner_config* cfg, struct runner_stats* stats,
                                  const struct pkt* p) {
  struct runner_ct_key key;
  struct runner_ct_entry* e;
  __u64 now = bpf_ktime_get_ns();

  rn_ct_key_reversed(&key, p);
  e = bpf_map_lookup_elem(&runner_ct, &key);
  if (!e) {
    struct runner_ct_entry v = {
        .created_ns = now,
        .nat_port = p->sport,
        .dir = RUNNER_CT_REPLY,
        .flags = RUNNER_CT_HOST,
    };

    pkt_set_addr(v.nat_addr, p->saddr);
    if (bpf_map_update_elem(&runner_ct, &key, &v, BPF_NOEXIST)) return;
    e = bpf_map_lookup_elem(&runner_ct, &key);
    if (!e) return;
  } else if (!(e->flags & RUNNER_CT_HOST)) {
    RUNNER_COUNT(stats, host_port_conflicts);
    return;
  }
  rn_ct_touch(cfg, e, p->proto, p->tcp_flags, RUNNER_CT_ORIGINAL, now);
}

/* Finds or creates the flow of an outgoing packet; returns its ORIGINAL entry or NULL (drop). */
KH_INLINE struct runner_ct_entry* rn_egress_flow(const struct runner_config* cfg,
                                                 struct runner_stats* stats, const struct pkt* p,
                                                 __u64 now) {
  struct runner_ct_key key, reply;
  struct runner_ct_entry* orig;
  __be32 uplink = pkt_addr(cfg->uplink_addr);
  __u16 port;

  rn_ct_key_of(&key, p);
  orig = bpf_map_lookup_elem(&runner_ct, &key);
  if (orig && pkt_addr(orig->nat_addr) != uplink) {
    /* The uplink address changed: the old mapping can never see a reply again. */
    rn_ct_reply_of_original(&reply, &key, orig);
    bpf_map_delete_elem(&runner_ct, &reply);
    bpf_map_delete_elem(&runner_ct, &key);
    orig = 0;
  }
  if (orig) {
    rn_ct_reply_of_original(&reply, &key, orig);
    if (bpf_map_lookup_elem(&runner_ct, &reply)) return orig;
    /* The LRU evicted the REPLY half: put it back, or start over if its port is gone. */
    struct runner_ct_entry back = {
        .created_ns = now,
        .last_seen_ns = now,
        .nat_port = p->sport,
        .dir = RUNNER_CT_REPLY,
    };
    pkt_set_addr(back.nat_addr, p->saddr);
    RUNNER_COUNT(stats, ct_peer_missing);
    if (bpf_map_update_elem(&runner_ct, &reply, &back, BPF_NOEXIST) == 0) return orig;
    bpf_map_delete_elem(&runner_ct, &key);
  }

  struct runner_ct_entry reply_value = {
      .created_ns = now,
      .last_seen_ns = now,
      .nat_port = p->sport,
      .dir = RUNNER_CT_REPLY,
  };
  struct runner_ct_entry orig_value = {
      .created_ns = now,
      .last_seen_ns = now,
      .dir = RUNNER_CT_ORIGINAL,
  };
  pkt_set_addr(reply_value.nat_addr, p->saddr);
  rn_ct_key_init(&reply, p->daddr, uplink, p->dport, 0, p->proto);
  port = rn_nat_claim_port(cfg, stats, &reply, &reply_value, p->sport);
  if (!port) {
    RUNNER_COUNT(stats, nat_alloc_failed);
    return 0;
  }
  pkt_set_addr(orig_value.nat_addr, uplink);
  orig_value.nat_port = port;
  if (bpf_map_update_elem(&runner_ct, &key, &orig_value, BPF_NOEXIST)) {
    /* Another CPU created the flow first (or the insert failed): use theirs. */
    bpf_map_delete_elem(&runner_ct, &reply);
    orig = bpf_map_lookup_elem(&runner_ct, &key);
    if (!orig) RUNNER_COUNT(stats, ct_insert_failed);
    return orig;
  }
  RUNNER_COUNT(stats, ct_created);
  orig = bpf_map_lookup_elem(&runner_ct, &key);
  if (!orig) RUNNER_COUNT(stats, ct_insert_failed);
  return orig;
}

SEC("tc")
int runner_nat_egress(struct __sk_buff* skb) {
  struct runner_config* cfg = runner_get_config();
  struct runner_stats* stats;
  struct runner_ct_entry* orig;
  struct rn_net src;
  struct pkt p;
  __u16 nat_port;
  __be32 nat_addr;
  __u64 now;

  if (!cfg) return TC_ACT_OK;
  stats = runner_get_stats();
  switch (pkt_parse_l4(skb, &p)) {
    case PKT_PARSE_OK:
      break;
    case PKT_PARSE_NOT_IPV4:
      return TC_ACT_OK;
    default:
      /* Unparsable L4: only a source of a NAT-on network would be leaked; only that drops. */
      if (bpf_skb_load_bytes(skb, ETH_HLEN + RN_IP_SADDR_OFF, &nat_addr, 4) == 0 &&
          rn_classify(cfg, nat_addr).nat) {
        RUNNER_COUNT(stats, dropped_unsupported);
        return TC_ACT_SHOT;
      }
      return TC_ACT_OK;
  }

  /* The VXLAN underlay the runner encapsulates leaves from the uplink address, which is in no
   * network: settled before any network lookup, so the underlay stays the cheapest path. */
  if (p.proto == IPPROTO_UDP && p.has_ports && p.dport == cfg->vxlan_port &&
      p.saddr == pkt_addr(cfg->uplink_addr)) {
    RUNNER_COUNT(stats, passed_vxlan_underlay);
    return TC_ACT_OK;
  }
  src = rn_classify(cfg, p.saddr);
  if (!rn_net_inside(src)) {
    /* The runner's own traffic, including the VXLAN underlay it encapsulates: its
     * source is the uplink address, never a network's, so it is never rewritten. */
    if (p.proto == IPPROTO_UDP && p.has_ports && p.dport == cfg->vxlan_port) {
      RUNNER_COUNT(stats, passed_vxlan_underlay);
      return TC_ACT_OK;
    }
    if (p.saddr == pkt_addr(cfg->uplink_addr) && !p.fragment && p.has_ports &&
        (p.proto != IPPROTO_ICMP || p.icmp_type == ICMP_ECHO))
      rn_track_host_flow(cfg, stats, &p);
    RUNNER_COUNT(stats, passed_not_overlay);
    return TC_ACT_OK;
  }
  if (rn_net_inside(rn_classify(cfg, p.daddr))) {
    RUNNER_COUNT(stats, passed_not_overlay);
    return TC_ACT_OK;
  }
  if (rn_policy_denies(cfg, &p)) {
    RUNNER_COUNT(stats, policy_denied);
    return TC_ACT_SHOT;
  }
  if (!src.nat) {
    RUNNER_COUNT(stats, passed_no_nat);
    return TC_ACT_OK;
  }
  if (p.fragment) {
    RUNNER_COUNT(stats, dropped_unsupported);
    return TC_ACT_SHOT;
  }
  if (p.proto == IPPROTO_ICMP && pkt_icmp_is_error(p.icmp_type))
    return rn_egress_icmp_error(skb, cfg, stats, &p);
  if (!p.has_ports || (p.proto == IPPROTO_ICMP && p.icmp_type != ICMP_ECHO)) {
    RUNNER_COUNT(stats, dropped_unsupported);
    return TC_ACT_SHOT;
  }

  now = bpf_ktime_get_ns();
  orig = rn_egress_flow(cfg, stats, &p, now);
  if (!orig) return TC_ACT_SHOT;
  rn_ct_touch(cfg, orig, p.proto, p.tcp_flags, RUNNER_CT_ORIGINAL, now);
  nat_addr = pkt_addr(orig->nat_addr);
  nat_port = orig->nat_port;
  if (rn_rewrite_addr(skb, &p, true, p.saddr, nat_addr) ||
      rn_rewrite_port(skb, &p, true, p.sport, nat_port))
    return TC_ACT_SHOT;
  RUNNER_COUNT(stats, egress_translated);
  return TC_ACT_OK;
}

char LICENSE[] SEC("license") = "GPL";
