/* Layouts of the keys and values of the host's inter-runner fast path maps
 * (bpf/host_forward.bpf.c; the maps themselves are in lib/host_maps.h). Plain C, no BPF-only
 * constructs: the userspace loader (userspace/host/bpf/host_datapath.h) includes this same file,
 * so the layout is declared once. Addresses are stored as __u8[4] in network order, which keeps LPM
 * keys byte-ordered and makes `bpftool map dump` print them as [10,1,0,0].
 *
 * Changing any struct here changes the map's BTF; the loader then migrates the pinned map
 * (docs/bpf-host-datapath.md). Add fields at the end and keep names stable where possible. */
#pragma once

#include <linux/types.h>

#define KH_HOST_MAX_RUNNERS 65536
#define KH_HOST_MAX_ADDRS 131072 /* anchor addresses + one .254 per runner subnet */

/* host_routes (LPM trie): runner subnet -> the vxkr device that reaches it. */
struct host_route_key {
  __u32 prefixlen; /* LPM prefix length, 0..32 */
  __u8 addr[4];    /* subnet address, network order */
};

struct host_route {
  __u32 ifindex;   /* target vxkr device */
  __u32 runner_id; /* owner of the subnet */
};

/* host_ingress (hash): tunnel device -> the runner behind it and the sources it may use. */
struct host_ingress_key {
  __u32 ifindex; /* vxkr device the packet arrived on */
};

struct host_ingress {
  __u32 runner_id;
  __u32 prefixlen; /* of the runner's subnet */
  __u8 subnet[4];  /* network order */
};

/* host_addrs (hash): the host's own addresses; traffic to them goes to the host stack and they
 * are accepted as sources on every tunnel. */
struct host_addr_key {
  __u8 addr[4]; /* network order */
};

struct host_addr {
  __u32 ifindex; /* device holding the address (0 when not tied to one) */
};

/* Why a packet was handed to the kernel unchanged. The order matches the pass_* fields below. */
enum host_pass_reason {
  HOST_PASS_NON_IPV4,    /* ARP, IPv6 and every other ethertype */
  HOST_PASS_MALFORMED,   /* truncated or invalid IPv4 header: the kernel drops and counts it */
  HOST_PASS_IP_OPTIONS,  /* header with options */
  HOST_PASS_FRAGMENT,    /* fragments are reassembled or forwarded by the kernel */
  HOST_PASS_L2_NOT_HOST, /* frame not addressed to the device's MAC (broadcast, other host) */
  HOST_PASS_TO_HOST,     /* to a host address, multicast or broadcast */
  HOST_PASS_NO_ROUTE,    /* destination outside every runner subnet */
  HOST_PASS_TTL,         /* TTL <= 1: the kernel sends Time Exceeded */
  HOST_PASS_OVERSIZE,    /* above the target MTU (GSO: per segment): Fragmentation Needed */
  HOST_PASS_FIB,         /* the kernel's routing rejects it or picks another device */
  HOST_PASS_UNMANAGED,   /* arrived on a device that is not a registered runner tunnel */
  HOST_PASS_MAX,
};

enum host_drop_reason {
  HOST_DROP_SPOOFED, /* source outside the ingress runner's subnet and the host's addresses */
  HOST_DROP_MAX,
};

/* host_stats (per-CPU hash, key: runner id of the ingress tunnel; 0 collects packets from
 * unregistered devices). Userspace sums the per-CPU values. */
struct host_stats_key {
  __u32 runner_id;
};

struct host_stats {
  __u64 fwd_packets;   /* redirected to the target tunnel */
  __u64 fwd_bytes;     /* frame bytes as received (Ethernet header included) */
  __u64 fwd_neigh;     /* of fwd_packets: next hop MAC left to bpf_redirect_neigh */
  __u64 fwd_no_fib;    /* of fwd_neigh: FIB lookup refused (forwarding off on ingress) */
  __u64 pass_bytes;    /* all pass_* packets */
  __u64 pass_non_ipv4; /* one counter per enum host_pass_reason, same order */
  __u64 pass_malformed;
  __u64 pass_ip_options;
  __u64 pass_fragment;
  __u64 pass_l2_not_host;
  __u64 pass_to_host;
  __u64 pass_no_route;
  __u64 pass_ttl;
  __u64 pass_oversize;
  __u64 pass_fib;
  __u64 pass_unmanaged;
  __u64 drop_bytes;   /* all drop_* packets */
  __u64 drop_spoofed; /* one counter per enum host_drop_reason, same order */
};
