/* Runner data plane maps (masquerade, conntrack, forward filter) and their accessors; BPF side
 * only, the key and value layouts are in lib/runner_types.h. */
#pragma once

#include <bpf/bpf_helpers.h>

#include "lib/runner_types.h"

/* Names are the pin file names under <pin_root>/runner/ (kept below 16 characters so the
 * kernel's map name equals the pin name). */
struct {
  __uint(type, BPF_MAP_TYPE_LRU_HASH);
  __uint(max_entries, RUNNER_CT_DEFAULT_MAX_ENTRIES); /* the loader sets it from config */
  __type(key, struct runner_ct_key);
  __type(value, struct runner_ct_entry);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} runner_ct SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct runner_config);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} runner_config SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, RUNNER_POLICY_MAX_RULES);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct runner_policy_key);
  __type(value, struct runner_policy_value);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} runner_policy SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __uint(max_entries, RUNNER_NETS_MAX);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __type(key, struct runner_net_key);
  __type(value, struct runner_net_value);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} runner_nets SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct runner_stats);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} runner_stats SEC(".maps");

static __always_inline struct runner_config* runner_get_config(void) {
  __u32 zero = 0;
  struct runner_config* cfg = bpf_map_lookup_elem(&runner_config, &zero);
  return cfg && cfg->enabled ? cfg : 0;
}

static __always_inline struct runner_stats* runner_get_stats(void) {
  __u32 zero = 0;
  return bpf_map_lookup_elem(&runner_stats, &zero);
}

/* Per-CPU slot: a plain increment is race free. */
#define RUNNER_COUNT(stats, field) \
  do {                             \
    if (stats) (stats)->field++;   \
  } while (0)
