/* Layouts of the hub express path's maps (bpf/host_express.bpf.c), shared with the userspace
 * loader (userspace/host/bpf/host_express.cpp): plain C, no BPF-only constructs. Addresses are
 * __u8[4] in network order so `bpftool map dump` prints them as [10,1,0,0], as in host_types.h.
 *
 * Changing a struct changes the map's BTF; the loader then migrates the pinned map by field name
 * (docs/bpf-host-datapath.md). Add fields at the end and keep names stable. */
#pragma once

#include <linux/types.h>

/* express_config (array, one entry): what the program needs to know about the hub itself. */
struct express_config {
  __u32 enabled;        /* 0: every frame passes (reason not_configured) */
  __u32 uplink_ifindex; /* the device holding host_ip, where the program is attached */
  __u8 host_ip[4];      /* HOST_REACHABLE_ADDRESS: outer destination of runner frames */
  __u8 uplink_mac[6];   /* outer destination MAC of frames addressed to the hub */
  __u16 vxlan_port;     /* OVERLAY_VXLAN_PORT, network order */
  __u32 vni_base;       /* OVERLAY_VXLAN_ID: runner id N uses VNI base + N */
  __u32 tx_devmap;      /* XDP only: send through express_tx even back out of the uplink
                         * (veth drops XDP_TX frames unless its peer runs XDP) */
};

/* express_runners (hash, key: runner id): one runner as the hub sees it. */
struct express_runner_key {
  __u32 runner_id;
};

struct express_runner {
  __u32 vni;            /* base + id */
  __u8 physical_ip[4];  /* outer source of its frames, outer destination of frames to it */
  __u32 tunnel_ifindex; /* the hub's vxkr device for this runner */
  __u8 tunnel_mac[6];   /* that device's MAC: inner destination of frames the runner routes */
  __u8 subnet[4];       /* the runner's subnet: allowed inner sources */
  __u32 prefixlen;
};

/* express_nexthops (hash, key: runner id): the underlay next hop towards a runner's physical IP
 * (outer MACs, egress device), looked up with bpf_fib_lookup by the program itself and cached
 * for KH_EXPRESS_NH_TTL_NS: the lookup costs more than the rest of the rewrite. The loader
 * deletes an entry whenever the runner's physical IP changes. */
struct express_nexthop_key {
  __u32 runner_id;
};

struct express_nexthop {
  __u8 physical_ip[4]; /* the address this entry was resolved for */
  __u8 dmac[6];
  __u8 smac[6];
  __u32 ifindex;     /* egress device */
  __u64 resolved_ns; /* bpf_ktime_get_coarse_ns() of the lookup */
};

#define KH_EXPRESS_NH_TTL_NS 1000000000ULL /* re-resolve the underlay next hop every second */

/* Why a frame went to the kernel unchanged. The order matches the pass_* fields below. */
enum express_pass_reason {
  EXPRESS_PASS_NOT_CONFIGURED, /* no configuration yet (loader starting) */
  EXPRESS_PASS_NON_VXLAN,      /* not IPv4/UDP to host_ip:vxlan_port: ordinary host traffic */
  EXPRESS_PASS_UNKNOWN_VNI,    /* no runner with this VNI (or no VXLAN I flag) */
  EXPRESS_PASS_GSO,            /* GSO aggregate (TC) not taken whole: not a plain UDP-tunnel
                                * aggregate, inner neither TCP nor UDP, or another egress */
  EXPRESS_PASS_FRAGMENT,       /* outer or inner IP fragment */
  EXPRESS_PASS_IP_OPTIONS,     /* outer or inner IP header with options */
  EXPRESS_PASS_MALFORMED,      /* truncated or inconsistent headers: the kernel drops them */
  EXPRESS_PASS_INNER_NON_IPV4, /* ARP, IPv6, ... inside the tunnel */
  EXPRESS_PASS_L2_NOT_HOST,    /* inner frame not addressed to the hub's tunnel MAC */
  EXPRESS_PASS_TO_HOST,        /* inner destination is a host address, multicast, broadcast */
  EXPRESS_PASS_NO_ROUTE,       /* inner destination outside every runner subnet */
  EXPRESS_PASS_TTL,            /* inner TTL <= 1: the kernel sends Time Exceeded */
  EXPRESS_PASS_OVERSIZE,       /* inner packet above the target tunnel's MTU, or outer frame
                                * above the egress device's: Fragmentation Needed */
  EXPRESS_PASS_NO_NEIGH,       /* inner next hop not resolved yet on the target tunnel */
  EXPRESS_PASS_OUTER_NO_NEIGH, /* underlay next hop towards the target not resolved yet */
  EXPRESS_PASS_FIB,            /* the kernel's routing rejects it or routes it elsewhere */
  EXPRESS_PASS_NO_TARGET,      /* the target tunnel belongs to no runner of express_runners */
  EXPRESS_PASS_EGRESS,         /* XDP: the egress device is not in express_tx */
  EXPRESS_PASS_MAX,
};

enum express_drop_reason {
  EXPRESS_DROP_SPOOFED_OUTER, /* VNI of runner A from another outer source than A's IP */
  EXPRESS_DROP_SPOOFED_INNER, /* inner source outside A's subnet and the host's addresses */
  EXPRESS_DROP_MAX,
};

/* express_stats (per-CPU hash, key: runner id of the sending runner A; 0 collects frames that
 * belong to no runner: ordinary host traffic, unknown VNIs). Userspace sums the CPUs. */
struct express_stats_key {
  __u32 runner_id;
};

struct express_stats {
  __u64 fwd_packets;         /* rewritten and sent towards the target runner */
  __u64 fwd_bytes;           /* frame bytes (outer Ethernet header included) */
  __u64 fwd_nh_lookups;      /* of fwd_packets: underlay next hop (re)resolved for this frame */
  __u64 fwd_gso;             /* of fwd_packets: GSO aggregates (TC), each rewritten once */
  __u64 fwd_gso_segs;        /* the packets those aggregates left the hub as */
  __u64 pass_bytes;          /* all pass_* frames */
  __u64 pass_not_configured; /* one counter per enum express_pass_reason, same order */
  __u64 pass_non_vxlan;
  __u64 pass_unknown_vni;
  __u64 pass_gso;
  __u64 pass_fragment;
  __u64 pass_ip_options;
  __u64 pass_malformed;
  __u64 pass_inner_non_ipv4;
  __u64 pass_l2_not_host;
  __u64 pass_to_host;
  __u64 pass_no_route;
  __u64 pass_ttl;
  __u64 pass_oversize;
  __u64 pass_no_neigh;
  __u64 pass_outer_no_neigh;
  __u64 pass_fib;
  __u64 pass_no_target;
  __u64 pass_egress;
  __u64 drop_bytes;         /* all drop_* frames */
  __u64 drop_spoofed_outer; /* one counter per enum express_drop_reason, same order */
  __u64 drop_spoofed_inner;
};

#define KH_EXPRESS_MAX_EGRESS 64 /* devices express_tx may hold */
