/* Maps of the hub express path (BPF side only; layouts in lib/express_types.h). The program also
 * reads host_routes, host_ingress and host_addrs of the TC fast path (lib/host_maps.h): the
 * loader hands it those maps, so both stages route by the same table. */
#pragma once

#include <bpf/bpf_helpers.h>

#include "lib/express_types.h"
#include "lib/host_maps.h"

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __type(key, __u32);
  __type(value, struct express_config);
  __uint(max_entries, 1);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} express_config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __type(key, struct express_runner_key);
  __type(value, struct express_runner);
  __uint(max_entries, KH_HOST_MAX_RUNNERS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} express_runners SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __type(key, struct express_nexthop_key);
  __type(value, struct express_nexthop);
  __uint(max_entries, KH_HOST_MAX_RUNNERS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} express_nexthops SEC(".maps");

/* Entries are created zeroed by the loader for every runner (and 0): the program only looks up. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __type(key, struct express_stats_key);
  __type(value, struct express_stats);
  __uint(max_entries, KH_HOST_MAX_RUNNERS + 1);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} express_stats SEC(".maps");

/* XDP egress devices by ifindex (the uplink, and any other underlay device the loader adds).
 * Not pinned: its content follows from express_config, which every loader writes, and a devmap
 * carries no BTF to migrate by (the program it belongs to keeps it while no daemon runs). */
struct {
  __uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
  __type(key, __u32);
  __type(value, __u32);
  __uint(max_entries, KH_EXPRESS_MAX_EGRESS);
} express_tx SEC(".maps");
