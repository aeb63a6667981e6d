#include "runner/bpf/deny_rule.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <charconv>
#include <cstring>
#include <stdexcept>

#include "common/enum_names.h"
#include "lib/runner_types.h"

namespace kohaku::runner {
namespace {

std::string cidr_text(const Ipv4Cidr& c) {
  return c.prefix == 0 ? "any" : c.to_string();
}

// The names a rule's protocol is written and read by; any other protocol is its number.
constexpr EnumName<uint8_t> kProtocolNames[] = {
    {0, "any"}, {IPPROTO_TCP, "tcp"}, {IPPROTO_UDP, "udp"}, {IPPROTO_ICMP, "icmp"}};

}  // namespace

void DenyRule::validate() const {
  if (source.addr.value & ~source.mask())
    throw std::invalid_argument("deny rule: source " + source.to_string() + " has host bits set");
  if (destination.addr.value & ~destination.mask())
    throw std::invalid_argument("deny rule: destination " + destination.to_string() +
                                " has host bits set");
  if (source.prefix > 32 || destination.prefix > 32)
    throw std::invalid_argument("deny rule: prefix longer than 32");
  if (port != 0 && protocol != IPPROTO_TCP && protocol != IPPROTO_UDP)
    throw std::invalid_argument("deny rule: a port needs protocol tcp or udp, not " +
                                protocol_name(protocol));
}

std::string DenyRule::to_string() const {
  return "src=" + cidr_text(source) + " dst=" + cidr_text(destination) +
         " proto=" + protocol_name(protocol) + " port=" + (port ? std::to_string(port) : "any");
}

std::string DenyRule::protocol_name(uint8_t protocol) {
  if (auto name = find_enum_name(kProtocolNames, protocol)) return std::string(*name);
  return std::to_string(protocol);
}

uint8_t DenyRule::parse_protocol(std::string_view text) {
  if (auto named = enum_value(kProtocolNames, text)) return *named;
  unsigned value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || value > 255 || text.empty())
    throw std::invalid_argument("deny rule: unknown protocol '" + std::string(text) + "'");
  return static_cast<uint8_t>(value);
}

runner_policy_key encode_deny_rule(const DenyRule& r) {
  r.validate();
  runner_policy_key k{};
  uint32_t src = htonl(r.source.addr.value), dst = htonl(r.destination.addr.value);
  std::memcpy(k.src_addr, &src, 4);
  std::memcpy(k.dst_addr, &dst, 4);
  k.src_prefix = r.source.prefix;
  k.dst_prefix = r.destination.prefix;
  k.proto = r.protocol;
  k.dst_port = r.port;
  return k;
}

DenyRule decode_deny_rule(const runner_policy_key& k) {
  DenyRule r;
  uint32_t src, dst;
  std::memcpy(&src, k.src_addr, 4);
  std::memcpy(&dst, k.dst_addr, 4);
  r.source = {Ipv4Addr{ntohl(src)}, k.src_prefix};
  r.destination = {Ipv4Addr{ntohl(dst)}, k.dst_prefix};
  r.protocol = k.proto;
  r.port = k.dst_port;
  return r;
}

}  // namespace kohaku::runner
