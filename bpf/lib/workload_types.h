/* Runner fast path (bpf/runner_workload.bpf.c): the workloads it knows and their counters. Map
 * layouts shared with userspace (userspace/runner/bpf); the map definitions are in
 * lib/workload_maps.h. Same conventions as lib/runner_types.h: addresses __u8[4] in network
 * order, MACs __u8[6], named fields so `bpftool map dump pinned .../runner/runner_wl` reads. */
#pragma once

#include <linux/types.h>

/* A workload's host-side veth: the device the fast path runs on (TC ingress: what the workload
 * sends) and the device replies are delivered through (bpf_redirect_peer into its namespace). */
struct runner_wl_key {
  __u32 ifindex;
};

enum runner_wl_flags {
  RUNNER_WL_FAST = 1 << 0, /* route past the bridge; off: check the source, then the bridge */
};

struct runner_wl {
  __u8 addr[4];          /* the workload's IPv4 address: the only source it may send from */
  __u8 mac[6];           /* its MAC (the namespace side of the veth): the only source MAC */
  __u8 gw_mac[6];        /* its gateway's MAC (the bridge): routed frames are addressed to it */
  __u32 bridge_ifindex;  /* the bridge the veth is a port of; FIB lookups start there */
  __u32 flags;           /* enum runner_wl_flags */
  __u32 prefixlen;       /* of its subnet (the bridge's): other overlay subnets are via the hub */
};

/* Workloads by address, for delivery (a workload to another, replies at the uplink). */
struct runner_wl_addr_key {
  __u8 addr[4];
};

struct runner_wl_addr {
  __u32 ifindex; /* its host-side veth: the key into runner_wl */
};

/* Where the fast path may redirect after a FIB lookup (single entry, key 0): the uplink (to the
 * outside, where runner_nat_egress masquerades) and vxlan0 (the overlay, via the hub). A route
 * to any other device goes to the kernel, which knows what the operator meant. */
struct runner_wl_config {
  __u32 uplink_ifindex;
  __u32 overlay_ifindex;
};

/* Per-CPU counters per workload (key: its veth); userspace sums the CPUs. */
struct runner_wl_stats {
  __u64 fwd_fib;        /* routed out (uplink or vxlan0) with the FIB's neighbour */
  __u64 fwd_neigh;      /* routed out, the kernel resolving the neighbour (bpf_redirect_neigh) */
  __u64 fwd_peer;       /* routed to another workload of this runner (bpf_redirect_peer) */
  __u64 delivered;      /* delivered into this workload past the bridge (replies, workloads) */
  __u64 pass_l2;        /* not routed: ARP, IPv6, frames to another MAC of the segment */
  __u64 pass_local;     /* to the runner itself, broadcast or multicast */
  __u64 pass_kernel;    /* routed by the kernel: options, fragments, TTL, other routes, MTU */
  __u64 drop_spoofed_mac;
  __u64 drop_spoofed_ip;
  __u64 drop_denied;   /* an operator deny rule */
  __u64 drop_isolated; /* to another kohaku network */
  __u64 bytes_fwd;
};

#define RUNNER_WL_MAX 4096
