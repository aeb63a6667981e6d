/* Runner data plane (masquerade, conntrack, forward filter): map layouts; the map definitions are
 * in lib/runner_maps.h.
 *
 * The structs are the ABI between the BPF programs and userspace (userspace/runner/bpf includes
 * this header; plain C, no BPF-only constructs), and they are what `bpftool map dump pinned
 * .../runner/<map>` prints, so every key and value is a named struct with named fields. Addresses
 * are __u8[4] in network order (bpftool prints [10,1,0,5]), ports and identifiers are in host order
 * (bpftool prints 443), timestamps are bpf_ktime_get_ns() (CLOCK_MONOTONIC) nanoseconds.
 *
 * Changing a struct or a max_entries changes the pinned map's shape: the loader migrates the
 * conntrack table and recreates the others (see userspace/runner/bpf/runner_datapath.cpp).
 */
#pragma once

#include <linux/types.h>

/* Conntrack tuple. ICMP echo flows put the identifier in both sport and dport so reversing a
 * tuple (swap addresses, swap ports) works the same for every protocol. */
struct runner_ct_key {
  __u8 saddr[4];
  __u8 daddr[4];
  __u16 sport;
  __u16 dport;
  __u8 proto;
  __u8 pad[3];
};

enum runner_ct_dir {
  RUNNER_CT_ORIGINAL = 0, /* key = tuple as sent by the workload (before translation) */
  RUNNER_CT_REPLY = 1,    /* key = tuple of a reply as it arrives (to the uplink address) */
};

/* TCP states, named after the kernel's nf_conntrack states they stand in for. */
enum runner_ct_tcp_state {
  RUNNER_TCP_NONE = 0, /* UDP / ICMP */
  RUNNER_TCP_SYN_SENT = 1,
  RUNNER_TCP_SYN_RECV = 2,
  RUNNER_TCP_ESTABLISHED = 3,
  RUNNER_TCP_FIN_WAIT = 4,   /* the workload closed first */
  RUNNER_TCP_CLOSE_WAIT = 5, /* the remote closed first */
  RUNNER_TCP_TIME_WAIT = 6,  /* both sides sent FIN */
  RUNNER_TCP_CLOSE = 7,      /* RST seen */
};

enum runner_ct_flags {
  RUNNER_CT_SEEN_REPLY = 1 << 0,
  RUNNER_CT_FIN_ORIGINAL = 1 << 1,
  RUNNER_CT_FIN_REPLY = 1 << 2,
  RUNNER_CT_HOST = 1 << 3, /* a flow of the runner itself (see struct runner_ct_entry) */
};

/* Two entries per flow. The ORIGINAL entry is authoritative: it carries the state, the expiry
 * and the translated source (nat_addr:nat_port = uplink address and external port). The REPLY
 * entry maps a reply back: nat_addr:nat_port = the workload's address and original port. Each
 * entry holds what is needed to build its peer's key, so either half finds the other.
 * The runner's own flows on the uplink address get one REPLY-keyed entry flagged
 * RUNNER_CT_HOST (nat_addr:nat_port = the uplink address and the runner's own port, state and
 * expiry kept in it): it reserves the port so masquerade never hands it out while the runner
 * uses it, and replies matching it go to the runner untranslated. */
struct runner_ct_entry {
  __u64 created_ns;
  __u64 last_seen_ns;
  __u64 expires_ns; /* ORIGINAL and HOST: last_seen_ns + timeout of the current state */
  __u64 packets_original;
  __u64 packets_reply;
  __u8 nat_addr[4];
  __u16 nat_port;
  __u8 dir;       /* enum runner_ct_dir */
  __u8 tcp_state; /* enum runner_ct_tcp_state */
  __u8 flags;     /* enum runner_ct_flags */
  __u8 pad[7];
};

/* Timeouts in seconds; defaults are the kernel's nf_conntrack defaults. */
struct runner_ct_timeouts {
  __u32 tcp_syn_sent;    /* 120 */
  __u32 tcp_syn_recv;    /* 60 */
  __u32 tcp_established; /* 432000 (5 days) */
  __u32 tcp_fin_wait;    /* 120 */
  __u32 tcp_close_wait;  /* 60 */
  __u32 tcp_time_wait;   /* 120 */
  __u32 tcp_close;       /* 10 */
  __u32 udp;             /* 30, no reply seen yet */
  __u32 udp_stream;      /* 120, replies seen */
  __u32 icmp;            /* 30 */
};

/* Single entry (key 0). The programs pass everything untouched until `enabled` is 1, so a
 * freshly created map never translates with a zero uplink address. */
struct runner_config {
  __u8 overlay_addr[4]; /* overlay network address, e.g. [10,0,0,0] */
  __u8 overlay_mask[4]; /* its netmask, e.g. [255,0,0,0] */
  __u8 uplink_addr[4];  /* source address masqueraded traffic leaves with */
  __u16 port_min;       /* external port / ICMP identifier range */
  __u16 port_max;
  __u16 vxlan_port; /* underlay UDP port: never translated, never allocated */
  __u8 enabled;
  __u8 pad;
  struct runner_ct_timeouts timeouts;
  __u32 policy_rules; /* entries in runner_policy; 0 skips the rule walk on the fast path */
};

/* Operator deny rule. Key of the policy map; the value counts hits. Prefix 0 matches any
 * address, proto 0 any protocol, port 0 any destination port (TCP/UDP only). */
struct runner_policy_key {
  __u8 src_addr[4];
  __u8 dst_addr[4];
  __u8 src_prefix;
  __u8 dst_prefix;
  __u8 proto;
  __u8 pad;
  __u16 dst_port;
  __u16 pad2;
};

struct runner_policy_value {
  __u64 hits;
};

/* Named L2 networks of this runner (docs/l2-networks.md), map runner_nets: an LPM trie keyed by
 * subnet. `id` is the network's VNI (nonzero, unique and stable per network), so two networks
 * differ exactly when their ids do; the overlay network is id 0 (it lives in runner_config, not
 * here). */
struct runner_net_key {
  __u32 prefixlen; /* LPM trie: bits of addr that count */
  __u8 addr[4];
};

enum runner_net_flags {
  RUNNER_NET_OUTBOUND_NAT = 1 << 0, /* masquerade traffic to the outside */
};

struct runner_net_value {
  __u32 id;
  __u32 flags; /* enum runner_net_flags */
};

/* Per-CPU counters (one entry, key 0); userspace sums the CPUs. */
struct runner_stats {
  __u64 egress_translated;  /* packets masqueraded on the uplink */
  __u64 ingress_translated; /* replies translated back on the uplink */
  __u64 icmp_errors_translated;
  __u64 ct_created;          /* new flows (pairs of entries) */
  __u64 ct_peer_missing;     /* a flow's other half was gone (LRU eviction: table pressure) */
  __u64 ct_insert_failed;    /* map update failed for a new flow */
  __u64 nat_port_retries;    /* external ports tried and found taken */
  __u64 nat_alloc_failed;    /* no free external port within the retry bound: packet dropped */
  __u64 dropped_unsupported; /* overlay->outside that cannot be masqueraded (protocol, fragment) */
  __u64 dropped_untracked_icmp_error; /* ICMP error from the overlay about no tracked flow */
  __u64 forward_allowed;
  __u64 forward_dropped_untracked; /* outside -> overlay that is no reply of a tracked flow */
  __u64 forward_dropped_spoofed;   /* outside -> outside through the overlay bridge */
  __u64 policy_denied;             /* dropped by an operator deny rule */
  __u64 passed_not_overlay;        /* uplink traffic that is none of our business */
  __u64 passed_vxlan_underlay;
  __u64 host_port_conflicts;      /* a runner flow reuses a port masquerade handed out first */
  __u64 passed_no_nat;            /* network -> outside from a network with outbound NAT off */
  __u64 forward_dropped_isolated; /* routed between two different kohaku networks */
};

#define RUNNER_CT_DEFAULT_MAX_ENTRIES 262144
#define RUNNER_POLICY_MAX_RULES 1024
#define RUNNER_NETS_MAX 256
