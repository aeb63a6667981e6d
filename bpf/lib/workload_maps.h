/* Runner fast path maps (BPF side only; layouts in lib/workload_types.h). Pinned under
 * <pin_root>/runner/ next to the NAT maps. */
#pragma once

#include "lib/common.h"
#include "lib/workload_types.h"

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, RUNNER_WL_MAX);
  __type(key, struct runner_wl_key);
  __type(value, struct runner_wl);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} runner_wl SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, RUNNER_WL_MAX);
  __type(key, struct runner_wl_addr_key);
  __type(value, struct runner_wl_addr);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} runner_wl_addr SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct runner_wl_config);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} runner_wl_cfg SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __uint(max_entries, RUNNER_WL_MAX);
  __type(key, struct runner_wl_key);
  __type(value, struct runner_wl_stats);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} runner_wl_stats SEC(".maps");

KH_INLINE struct runner_wl_stats* runner_wl_stats_of(__u32 ifindex) {
  struct runner_wl_key key = {.ifindex = ifindex};

  return bpf_map_lookup_elem(&runner_wl_stats, &key);
}

#define RUNNER_WL_COUNT(stats, field) \
  do {                                \
    if (stats) (stats)->field++;      \
  } while (0)
