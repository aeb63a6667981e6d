#pragma once
// The overlay address plan: OVERLAY_SUBNET = "BASE/TOTAL_PREFIX/NODE_BITS/SUBNET_BITS".
// The overlay network BASE/TOTAL_PREFIX is cut into 2^NODE_BITS runner subnets of
// SUBNET_BITS host bits each; subnet 0 holds the host's own overlay address.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "ipv4.h"

namespace kohaku {

class SubnetScheme {
 public:
  // Throws std::invalid_argument with a message saying which rule the spec breaks.
  static SubnetScheme parse(std::string_view spec);

  uint32_t max_runner_id() const { return (1u << node_bits_) - 1; }
  bool valid_runner_id(uint32_t id) const { return id >= 1 && id <= max_runner_id(); }

  Ipv4Cidr overlay_network() const { return Ipv4Cidr{base_, total_prefix_}; }
  Ipv4Addr host_overlay_ip() const { return Ipv4Addr{base_.value + 1}; }
  uint8_t runner_prefix() const { return static_cast<uint8_t>(32 - subnet_bits_); }

  // All of these throw std::out_of_range for an id outside 1..max_runner_id().
  Ipv4Cidr runner_subnet(uint32_t id) const;
  Ipv4Addr runner_gateway(uint32_t id) const;
  Ipv4Addr host_ip_on_runner_subnet(uint32_t id) const;
  Ipv4Addr first_container_ip(uint32_t id) const;
  Ipv4Addr last_container_ip(uint32_t id) const;
  // Addresses a container can get: first..last minus the host's .254 address.
  uint64_t container_ip_count(uint32_t id) const;
  bool is_container_ip(uint32_t id, Ipv4Addr ip) const;
  // Which runner's subnet holds ip (0 when none).
  uint32_t runner_for_ip(Ipv4Addr ip) const;

  uint8_t total_prefix() const { return total_prefix_; }
  uint8_t node_bits() const { return node_bits_; }
  uint8_t subnet_bits() const { return subnet_bits_; }
  // Canonical "BASE/TOTAL/NODE/SUBNET" (host bits of BASE masked).
  std::string to_string() const;

 private:
  void check_id(uint32_t id) const;

  Ipv4Addr base_;
  uint8_t total_prefix_ = 0;
  uint8_t node_bits_ = 0;
  uint8_t subnet_bits_ = 0;
};

// The special range (loopback, multicast, ...) `network` overlaps, described; nullopt for none.
// No interface may carry an address there.
std::optional<std::string> special_range_overlap(const Ipv4Cidr& network);

// VXLAN device name on the host for a runner: "vxkr" + id in lower-case base 36.
std::string host_vxlan_device_name(uint32_t runner_id);
// Inverse of host_vxlan_device_name; 0 when name is not of that form.
uint32_t runner_id_from_device_name(std::string_view name);

}  // namespace kohaku
