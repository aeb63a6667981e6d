/* Maps of the host's inter-runner fast path (bpf/host_forward.bpf.c); BPF side only, the layouts
 * of their keys and values are in lib/host_types.h. The map names are the pin file names. The
 * express stage reads host_addrs too (lib/express_maps.h), through the one lookup below. */
#pragma once

#include <bpf/bpf_helpers.h>

#include "lib/common.h"
#include "lib/host_types.h"

struct {
  __uint(type, BPF_MAP_TYPE_LPM_TRIE);
  __type(key, struct host_route_key);
  __type(value, struct host_route);
  __uint(max_entries, KH_HOST_MAX_RUNNERS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} host_routes SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __type(key, struct host_ingress_key);
  __type(value, struct host_ingress);
  __uint(max_entries, KH_HOST_MAX_RUNNERS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} host_ingress SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __type(key, struct host_addr_key);
  __type(value, struct host_addr);
  __uint(max_entries, KH_HOST_MAX_ADDRS);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} host_addrs SEC(".maps");

/* Whether addr is one of the host's own addresses (traffic for the host, never forwarded). */
KH_INLINE bool kh_is_host_addr(__be32 addr) {
  struct host_addr_key key;

  __builtin_memcpy(key.addr, &addr, sizeof(key.addr));
  return bpf_map_lookup_elem(&host_addrs, &key) != NULL;
}

/* Entries are created by the loader (zeroed) when a runner is added: the program only looks up,
 * so memory follows the number of runners rather than the id space. */
struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
  __type(key, struct host_stats_key);
  __type(value, struct host_stats);
  __uint(max_entries, KH_HOST_MAX_RUNNERS + 1);
  __uint(map_flags, BPF_F_NO_PREALLOC);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} host_stats SEC(".maps");
