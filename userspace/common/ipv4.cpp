#include "ipv4.h"

#include <arpa/inet.h>

#include <charconv>
#include <stdexcept>

namespace kohaku {

std::optional<Ipv4Addr> Ipv4Addr::try_parse(std::string_view text) {
  uint32_t value = 0;
  for (int part = 0; part < 4; ++part) {
    if (part > 0) {
      if (text.empty() || text.front() != '.') return std::nullopt;
      text.remove_prefix(1);
    }
    size_t len = 0;
    while (len < text.size() && len < 4 && text[len] >= '0' && text[len] <= '9') ++len;
    // Leading zeros are rejected: inet_aton reads them as octal, which surprises users.
    if (len == 0 || len > 3 || (len > 1 && text[0] == '0')) return std::nullopt;
    unsigned octet = 0;
    std::from_chars(text.data(), text.data() + len, octet);
    if (octet > 255) return std::nullopt;
    value = (value << 8) | octet;
    text.remove_prefix(len);
  }
  if (!text.empty()) return std::nullopt;
  return Ipv4Addr{value};
}

Ipv4Addr Ipv4Addr::parse(std::string_view text) {
  if (auto a = try_parse(text)) return *a;
  throw std::invalid_argument("invalid IPv4 address '" + std::string(text) + "'");
}

std::string Ipv4Addr::to_string() const {
  return std::to_string(value >> 24) + "." + std::to_string((value >> 16) & 0xff) + "." +
         std::to_string((value >> 8) & 0xff) + "." + std::to_string(value & 0xff);
}

uint32_t Ipv4Addr::network_order() const {
  return htonl(value);
}
Ipv4Addr Ipv4Addr::from_network_order(uint32_t be) {
  return Ipv4Addr{ntohl(be)};
}

std::optional<Ipv4Cidr> Ipv4Cidr::try_parse(std::string_view text, bool allow_host_bits) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto addr = Ipv4Addr::try_parse(text.substr(0, slash));
  auto plen = text.substr(slash + 1);
  if (!addr || plen.empty() || plen.size() > 2 || (plen.size() > 1 && plen[0] == '0'))
    return std::nullopt;
  unsigned prefix = 0;
  auto [ptr, ec] = std::from_chars(plen.data(), plen.data() + plen.size(), prefix);
  if (ec != std::errc() || ptr != plen.data() + plen.size() || prefix > 32) return std::nullopt;
  uint32_t m = mask_for(static_cast<uint8_t>(prefix));
  if ((addr->value & ~m) != 0 && !allow_host_bits) return std::nullopt;
  return Ipv4Cidr{Ipv4Addr{addr->value & m}, static_cast<uint8_t>(prefix)};
}

Ipv4Cidr Ipv4Cidr::parse(std::string_view text, bool allow_host_bits) {
  if (auto c = try_parse(text, allow_host_bits)) return *c;
  throw std::invalid_argument("invalid IPv4 CIDR '" + std::string(text) + "'" +
                              (allow_host_bits ? "" : " (host bits must be zero)"));
}

std::string Ipv4Cidr::to_string() const {
  return addr.to_string() + "/" + std::to_string(prefix);
}

}  // namespace kohaku
