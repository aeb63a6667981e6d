#pragma once
// What the runner's masquerade and forward filter need to know, validated, and its encoding
// into the runner_config map value (bpf/lib/runner_types.h).
#include <cstdint>

#include "common/ipv4.h"

struct runner_config;

namespace kohaku::runner {

// Conntrack timeouts in seconds; defaults are the kernel's nf_conntrack defaults.
struct ConntrackTimeouts {
  uint32_t tcp_syn_sent = 120;
  uint32_t tcp_syn_recv = 60;
  uint32_t tcp_established = 432000;
  uint32_t tcp_fin_wait = 120;
  uint32_t tcp_close_wait = 60;
  uint32_t tcp_time_wait = 120;
  uint32_t tcp_close = 10;
  uint32_t udp = 30;
  uint32_t udp_stream = 120;
  uint32_t icmp = 30;

  bool operator==(const ConntrackTimeouts&) const = default;
};

struct NatConfig {
  Ipv4Cidr overlay;  // the whole overlay network (all runners), e.g. 10.0.0.0/8
  Ipv4Addr uplink;   // address masqueraded traffic leaves with
  uint16_t port_min = 32768;
  uint16_t port_max = 65535;
  uint16_t vxlan_port = 4789;  // underlay port: never translated, never handed out
  ConntrackTimeouts timeouts;

  // Throws std::invalid_argument naming the bad field.
  void validate() const;
  bool operator==(const NatConfig&) const = default;
};

// Map value for `config` with the given number of deny rules; validates first.
runner_config encode_nat_config(const NatConfig& config, uint32_t policy_rules);
// Inverse of encode_nat_config (used to read back an adopted, pinned configuration).
NatConfig decode_nat_config(const runner_config& value);

}  // namespace kohaku::runner
