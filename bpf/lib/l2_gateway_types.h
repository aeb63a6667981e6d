/* Named L2 networks (docs/l2-networks.md): the distributed gateway every member carries, as the
 * guard on each member's vxlan<VNI> device sees it: the layouts of its maps (defined in
 * lib/l2_gateway_maps.h). Plain C shared with userspace (userspace/runner/bpf/l2_gateway_guard.h);
 * what `bpftool map dump pinned /sys/fs/bpf/kohaku/l2/l2_gateways` prints.
 *
 * Every member's bridge holds the same gateway address and MAC, so a workload's gateway is
 * always its own runner. Two kinds of frame must therefore never cross the tunnel:
 *  - ARP requests for the gateway address: the local bridge answers; copies flooded to the other
 *    members only bring back duplicate answers;
 *  - broadcast/multicast frames the gateway itself sends (its ARP requests, IPv6 ND): every peer
 *    holds that MAC too, so its bridge would see its own address arrive from the tunnel (the
 *    kernel logs "received packet ... with own address as source address") and its vxlan device
 *    would learn the shared MAC behind one member.
 */
#pragma once

#include <linux/types.h>

/* Key: the vxlan device the guard is attached to. */
struct l2_gateway_key {
  __u32 ifindex;
};

struct l2_gateway {
  __u8 addr[4]; /* gateway address, network order ([172,20,0,1]) */
  __u8 mac[6];  /* the bridge's (shared) MAC */
  __u8 pad[2];
};

/* Per-CPU counters (one entry, key 0); userspace sums the CPUs. */
struct l2_guard_stats {
  __u64 gateway_arp_kept_local;    /* ARP requests for the gateway not flooded to peers */
  __u64 gateway_floods_kept_local; /* broadcast/multicast from the gateway MAC not flooded */
  __u64 passed;                    /* frames sent to the peers */
};

#define L2_GATEWAY_MAX_NETWORKS 256
