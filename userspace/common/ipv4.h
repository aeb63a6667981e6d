#pragma once
// IPv4 addresses and prefixes as host-order integers, with strict text parsing.
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace kohaku {

struct Ipv4Addr {
  uint32_t value = 0;  // host byte order

  // Strict dotted quad: four decimal parts 0..255, no leading zeros, nothing else.
  static std::optional<Ipv4Addr> try_parse(std::string_view text);
  // Same, but throws std::invalid_argument naming the text.
  static Ipv4Addr parse(std::string_view text);

  std::string to_string() const;
  uint32_t network_order() const;
  static Ipv4Addr from_network_order(uint32_t be);
  bool is_loopback() const { return (value >> 24) == 127; }
  bool is_unspecified() const { return value == 0; }

  auto operator<=>(const Ipv4Addr&) const = default;
};

struct Ipv4Cidr {
  Ipv4Addr addr;  // network address (host bits zero)
  uint8_t prefix = 0;

  // "a.b.c.d/n"; host bits must be zero unless allow_host_bits (then they are masked).
  static std::optional<Ipv4Cidr> try_parse(std::string_view text, bool allow_host_bits = false);
  static Ipv4Cidr parse(std::string_view text, bool allow_host_bits = false);
  // The network of `prefix` bits that holds a (a's host bits cleared).
  static Ipv4Cidr holding(Ipv4Addr a, uint8_t prefix) {
    return Ipv4Cidr{Ipv4Addr{a.value & mask_for(prefix)}, prefix};
  }

  static uint32_t mask_for(uint8_t prefix) {
    return prefix == 0 ? 0 : (prefix >= 32 ? 0xffffffffu : ~((1u << (32 - prefix)) - 1));
  }
  uint32_t mask() const { return mask_for(prefix); }
  uint64_t size() const { return uint64_t{1} << (32 - prefix); }
  Ipv4Addr first() const { return addr; }
  Ipv4Addr last() const { return Ipv4Addr{addr.value | ~mask()}; }
  bool contains(Ipv4Addr a) const { return (a.value & mask()) == addr.value; }
  bool contains(const Ipv4Cidr& other) const {
    return other.prefix >= prefix && contains(other.addr);
  }
  std::string to_string() const;

  auto operator<=>(const Ipv4Cidr&) const = default;
};

}  // namespace kohaku
