/* Runner uplink, TC ingress: reverses the masquerade for replies.
 *
 * A packet to the uplink address whose tuple is the REPLY key of a tracked flow gets the
 * workload's address and original port (or ICMP echo identifier) back as its destination; an
 * ICMP error quoting a masqueraded packet gets the outer destination and the quoted source
 * translated. Everything else -- the runner's own traffic (whose flows only refresh their port
 * reservation), the VXLAN underlay -- passes untouched to the host stack.
 *
 * A translated packet for a workload on the fast path (lib/workload_deliver.h) goes straight
 * into the workload's namespace, when the forward filter's rules (lib/forward_policy.h) allow
 * it; otherwise the host stack routes it to the bridge, where runner_forward_filter decides and
 * counts, as before the fast path existed.
 */
#include "lib/conntrack.h"
#include "lib/forward_policy.h"
#include "lib/nat.h"
#include "lib/pkt.h"
#include "lib/workload_deliver.h"

/* After translation: into the workload past the bridge, or TC_ACT_OK for the host stack. */
KH_INLINE int rn_deliver_translated(struct __sk_buff* skb, const struct runner_config* cfg,
                                    __be32 workload) {
  const struct runner_wl* w;
  __u32 ifindex = 0;
  struct pkt q;
  int rc;

  w = rn_wl_by_addr(workload, &ifindex);
  if (!w) return TC_ACT_OK;
  if (pkt_parse_l4(skb, &q) != PKT_PARSE_OK || q.daddr != workload ||
      rn_forward_verdict(skb, cfg, &q) != RN_FWD_ALLOW)
    return TC_ACT_OK;
  rc = rn_wl_deliver(skb, w, ifindex);
  return rc == TC_ACT_REDIRECT ? rc : TC_ACT_OK;
}

KH_INLINE int rn_ingress_icmp_error(struct __sk_buff* skb, const struct runner_config* cfg,
                                    struct runner_stats* stats, const struct pkt* p) {
  struct runner_ct_key key, orig_key;
  struct runner_ct_entry* reply;
  struct pkt in;
  __be32 workload;

  /* The quoted packet is one we masqueraded: reversed, it is the REPLY key. */
  if (pkt_parse_ipv4_at(skb, p->l4_off + sizeof(struct icmphdr), p->l3_end, &in) != PKT_PARSE_OK ||
      !in.has_ports || in.saddr != pkt_addr(cfg->uplink_addr))
    return TC_ACT_OK;
  rn_ct_key_reversed(&key, &in);
  reply = bpf_map_lookup_elem(&runner_ct, &key);
  if (!reply || reply->dir != RUNNER_CT_REPLY || (reply->flags & RUNNER_CT_HOST)) return TC_ACT_OK;
  rn_ct_original_of_reply(&orig_key, &key, reply);
  if (!bpf_map_lookup_elem(&runner_ct, &orig_key)) {
    RUNNER_COUNT(stats, ct_peer_missing);
    return TC_ACT_OK;
  }
  workload = pkt_addr(reply->nat_addr);
  if (rn_rewrite_addr(skb, p, false, p->daddr, workload) ||
      rn_rewrite_icmp_inner(skb, p, &in, true, in.saddr, workload, in.sport, reply->nat_port))
    return TC_ACT_SHOT;
  RUNNER_COUNT(stats, icmp_errors_translated);
  return rn_deliver_translated(skb, cfg, workload);
}

SEC("tc")
int runner_nat_ingress(struct __sk_buff* skb) {
  struct runner_config* cfg = runner_get_config();
  struct runner_stats* stats;
  struct runner_ct_key key, orig_key;
  struct runner_ct_entry *reply, *orig;
  struct pkt p;
  __be32 workload;
  __u16 port;

  if (!cfg) return TC_ACT_OK;
  stats = runner_get_stats();
  if (pkt_parse_l4(skb, &p) != PKT_PARSE_OK) return TC_ACT_OK;
  if (p.daddr != pkt_addr(cfg->uplink_addr)) {
    RUNNER_COUNT(stats, passed_not_overlay);
    return TC_ACT_OK;
  }
  if (p.proto == IPPROTO_UDP && p.has_ports && p.dport == cfg->vxlan_port) {
    RUNNER_COUNT(stats, passed_vxlan_underlay);
    return TC_ACT_OK;
  }
  if (p.fragment)
    return TC_ACT_OK; /* the host stack reassembles; masqueraded flows never fragment here */
  if (p.proto == IPPROTO_ICMP && pkt_icmp_is_error(p.icmp_type))
    return rn_ingress_icmp_error(skb, cfg, stats, &p);
  if (!p.has_ports || (p.proto == IPPROTO_ICMP && p.icmp_type != ICMP_ECHOREPLY)) {
    RUNNER_COUNT(stats, passed_not_overlay);
    return TC_ACT_OK;
  }

  rn_ct_key_of(&key, &p);
  reply = bpf_map_lookup_elem(&runner_ct, &key);
  if (!reply || reply->dir != RUNNER_CT_REPLY) {
    RUNNER_COUNT(stats, passed_not_overlay); /* the runner's own traffic */
    return TC_ACT_OK;
  }
  if (reply->flags & RUNNER_CT_HOST) {
    /* A reply to the runner's own flow: keep its reservation alive, do not translate. */
    rn_ct_touch(cfg, reply, p.proto, p.tcp_flags, RUNNER_CT_REPLY, bpf_ktime_get_ns());
    RUNNER_COUNT(stats, passed_not_overlay);
    return TC_ACT_OK;
  }
  rn_ct_original_of_reply(&orig_key, &key, reply);
  orig = bpf_map_lookup_elem(&runner_ct, &orig_key);
  if (!orig) {
    /* The ORIGINAL half is gone (evicted or collected): the flow is dead. */
    RUNNER_COUNT(stats, ct_peer_missing);
    bpf_map_delete_elem(&runner_ct, &key);
    return TC_ACT_OK;
  }
  rn_ct_touch(cfg, orig, p.proto, p.tcp_flags, RUNNER_CT_REPLY, bpf_ktime_get_ns());
  workload = pkt_addr(reply->nat_addr);
  port = reply->nat_port;
  if (rn_rewrite_addr(skb, &p, false, p.daddr, workload) ||
      rn_rewrite_port(skb, &p, false, p.dport, port))
    return TC_ACT_SHOT;
  RUNNER_COUNT(stats, ingress_translated);
  return rn_deliver_translated(skb, cfg, workload);
}

char LICENSE[] SEC("license") = "GPL";
