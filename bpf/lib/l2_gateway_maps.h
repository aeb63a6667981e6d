/* Maps of the named L2 network gateway guard (bpf/l2_gateway_guard.bpf.c); BPF side only, the
 * key and value layouts (and why the guard exists) are in lib/l2_gateway_types.h. */
#pragma once

#include <bpf/bpf_helpers.h>

#include "lib/l2_gateway_types.h"

/* Names are the pin file names under <pin_root>/l2/ (userspace/common/bpf/attach_points.h). */
struct {
  __uint(type, BPF_MAP_TYPE_HASH);
  __uint(max_entries, L2_GATEWAY_MAX_NETWORKS);
  __type(key, struct l2_gateway_key);
  __type(value, struct l2_gateway);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} l2_gateways SEC(".maps");

struct {
  __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
  __uint(max_entries, 1);
  __type(key, __u32);
  __type(value, struct l2_guard_stats);
  __uint(pinning, LIBBPF_PIN_BY_NAME);
} l2_guard_stats SEC(".maps");
