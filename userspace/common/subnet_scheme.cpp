#include "subnet_scheme.h"

#include <charconv>
#include <stdexcept>
#include <vector>

namespace kohaku {
namespace {

[[noreturn]] void reject(std::string_view spec, const std::string& why) {
  throw std::invalid_argument("invalid OVERLAY_SUBNET '" + std::string(spec) + "': " + why);
}

std::vector<std::string_view> split(std::string_view text, char sep) {
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    auto pos = text.find(sep, start);
    parts.push_back(text.substr(start, pos - start));
    if (pos == std::string_view::npos) break;
    start = pos + 1;
  }
  return parts;
}

unsigned parse_small(std::string_view spec, std::string_view part, const char* what) {
  unsigned v = 0;
  auto [ptr, ec] = std::from_chars(part.data(), part.data() + part.size(), v);
  if (part.empty() || ec != std::errc() || ptr != part.data() + part.size() || v > 32)
    reject(spec, std::string(what) + " '" + std::string(part) + "' is not a number 0..32");
  return v;
}

}  // namespace

std::optional<std::string> special_range_overlap(const Ipv4Cidr& network) {
  // Addresses no interface may carry: "this network", loopback, multicast, reserved and
  // broadcast. 10.0.0.0/1 would put 0.0.0.1/1 on kohaku-host.
  struct Forbidden {
    const char* cidr;
    const char* what;
  };
  for (const Forbidden& f : {Forbidden{"0.0.0.0/8", "'this network' (0.0.0.0/8)"},
                             Forbidden{"127.0.0.0/8", "loopback (127.0.0.0/8)"},
                             Forbidden{"224.0.0.0/4", "multicast (224.0.0.0/4)"},
                             Forbidden{"240.0.0.0/4", "reserved and broadcast (240.0.0.0/4)"}}) {
    const Ipv4Cidr bad = Ipv4Cidr::parse(f.cidr);
    if (network.contains(bad) || bad.contains(network)) return std::string(f.what);
  }
  return std::nullopt;
}

SubnetScheme SubnetScheme::parse(std::string_view spec) {
  auto parts = split(spec, '/');
  if (parts.size() != 4)
    reject(spec, "expected BASE/TOTAL_PREFIX/NODE_BITS/SUBNET_BITS (four parts separated by '/')");
  auto base = Ipv4Addr::try_parse(parts[0]);
  if (!base) reject(spec, "BASE '" + std::string(parts[0]) + "' is not an IPv4 address");
  unsigned total = parse_small(spec, parts[1], "TOTAL_PREFIX");
  unsigned node = parse_small(spec, parts[2], "NODE_BITS");
  unsigned sub = parse_small(spec, parts[3], "SUBNET_BITS");
  if (total < 1 || total > 24) reject(spec, "TOTAL_PREFIX must be 1..24");
  if (node < 1 || node > 16) reject(spec, "NODE_BITS must be 1..16");
  if (sub < 8) reject(spec, "SUBNET_BITS must be at least 8 (room for gateway and .254)");
  if (total + node + sub != 32)
    reject(spec, "TOTAL_PREFIX + NODE_BITS + SUBNET_BITS must be 32, got " +
                     std::to_string(total + node + sub));
  const Ipv4Cidr network{Ipv4Addr{base->value & Ipv4Cidr::mask_for(static_cast<uint8_t>(total))},
                         static_cast<uint8_t>(total)};
  if (auto why = special_range_overlap(network))
    reject(spec, "the overlay network " + network.to_string() + " overlaps " + *why +
                     "; choose a private range such as 10.128.0.0/12");
  SubnetScheme s;
  s.base_ = network.addr;
  s.total_prefix_ = static_cast<uint8_t>(total);
  s.node_bits_ = static_cast<uint8_t>(node);
  s.subnet_bits_ = static_cast<uint8_t>(sub);
  return s;
}

void SubnetScheme::check_id(uint32_t id) const {
  if (!valid_runner_id(id))
    throw std::out_of_range("runner id " + std::to_string(id) + " outside 1.." +
                            std::to_string(max_runner_id()));
}

Ipv4Cidr SubnetScheme::runner_subnet(uint32_t id) const {
  check_id(id);
  return Ipv4Cidr{Ipv4Addr{base_.value + (id << subnet_bits_)}, runner_prefix()};
}

Ipv4Addr SubnetScheme::runner_gateway(uint32_t id) const {
  return Ipv4Addr{runner_subnet(id).addr.value + 1};
}

Ipv4Addr SubnetScheme::host_ip_on_runner_subnet(uint32_t id) const {
  return Ipv4Addr{runner_subnet(id).addr.value + 254};
}

Ipv4Addr SubnetScheme::first_container_ip(uint32_t id) const {
  return Ipv4Addr{runner_subnet(id).addr.value + 2};
}

Ipv4Addr SubnetScheme::last_container_ip(uint32_t id) const {
  return Ipv4Addr{runner_subnet(id).last().value - 1};
}

uint64_t SubnetScheme::container_ip_count(uint32_t id) const {
  // size minus network, gateway, broadcast and the host's .254 address.
  return runner_subnet(id).size() - 4;
}

bool SubnetScheme::is_container_ip(uint32_t id, Ipv4Addr ip) const {
  return ip >= first_container_ip(id) && ip <= last_container_ip(id) &&
         ip != host_ip_on_runner_subnet(id);
}

uint32_t SubnetScheme::runner_for_ip(Ipv4Addr ip) const {
  if (!overlay_network().contains(ip)) return 0;
  uint32_t id = (ip.value - base_.value) >> subnet_bits_;
  return valid_runner_id(id) ? id : 0;
}

std::string SubnetScheme::to_string() const {
  return base_.to_string() + "/" + std::to_string(total_prefix_) + "/" +
         std::to_string(node_bits_) + "/" + std::to_string(subnet_bits_);
}

std::string host_vxlan_device_name(uint32_t runner_id) {
  static constexpr char kDigits[] = "0123456789abcdefghijklmnopqrstuvwxyz";
  std::string digits;
  do {
    digits.insert(digits.begin(), kDigits[runner_id % 36]);
    runner_id /= 36;
  } while (runner_id != 0);
  return "vxkr" + digits;
}

uint32_t runner_id_from_device_name(std::string_view name) {
  if (name.size() <= 4 || name.substr(0, 4) != "vxkr") return 0;
  auto digits = name.substr(4);
  if (digits.size() > 6 || digits[0] == '0') return 0;
  uint32_t id = 0;
  for (char c : digits) {
    int d;
    if (c >= '0' && c <= '9')
      d = c - '0';
    else if (c >= 'a' && c <= 'z')
      d = c - 'a' + 10;
    else
      return 0;
    id = id * 36 + static_cast<uint32_t>(d);
  }
  return id;
}

}  // namespace kohaku
