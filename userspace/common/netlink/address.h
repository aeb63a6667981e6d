#pragma once
// IPv4 interface addresses.
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ipv4.h"
#include "common/netlink/ensure.h"

namespace kohaku::netlink {

// An address with its prefix length, host bits kept: "10.1.0.254/16".
struct IfAddr {
  Ipv4Addr addr;
  uint8_t prefix = 32;

  static std::optional<IfAddr> try_parse(std::string_view text);
  static IfAddr parse(std::string_view text);  // throws std::invalid_argument
  std::string to_string() const;
  auto operator<=>(const IfAddr&) const = default;
};

std::vector<IfAddr> list_addresses(std::string_view dev);  // IPv4 only
// The ifindex of the device holding `addr` (one dump of the address table); nullopt when none.
std::optional<int> find_address_owner(Ipv4Addr addr);
void add_address(std::string_view dev, const IfAddr& a);
void delete_address(std::string_view dev, const IfAddr& a);
// Leaves exactly `a` as the IPv4 address of `dev`: adds it when missing, removes every other
// IPv4 address (logged). kKept / kCreated (only added) / kRepaired (others removed).
EnsureAction ensure_address(std::string_view dev, const IfAddr& a);
// The same for a device whose ifindex the caller knows (one lookup less per call).
EnsureAction ensure_address(std::string_view dev, int ifindex, const IfAddr& a);

}  // namespace kohaku::netlink
