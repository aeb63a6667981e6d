#pragma once
// An operator deny rule of the runner's forward filter and masquerade (map runner_policy):
// traffic from `source` to `destination` with protocol `protocol` (0 = any) to destination
// port `port` (0 = any; only with TCP or UDP) is dropped.
#include <compare>
#include <cstdint>
#include <string>
#include <string_view>

#include "common/ipv4.h"

struct runner_policy_key;

namespace kohaku::runner {

struct DenyRule {
  Ipv4Cidr source;       // 0.0.0.0/0 = any
  Ipv4Cidr destination;  // 0.0.0.0/0 = any
  uint8_t protocol = 0;  // IPPROTO_* number, 0 = any
  uint16_t port = 0;     // destination port, 0 = any

  // Throws std::invalid_argument when a port is given without TCP or UDP.
  void validate() const;
  // "src=10.1.0.0/16 dst=any proto=tcp port=22"
  std::string to_string() const;
  // "any", "tcp", "udp", "icmp", or the number for any other protocol.
  static std::string protocol_name(uint8_t protocol);
  // Protocol by name ("tcp", "udp", "icmp", "any") or number; throws std::invalid_argument.
  static uint8_t parse_protocol(std::string_view text);

  auto operator<=>(const DenyRule&) const = default;
};

struct DenyRuleStatus {
  DenyRule rule;
  uint64_t hits = 0;  // packets dropped by this rule
};

runner_policy_key encode_deny_rule(const DenyRule& rule);  // validates first
DenyRule decode_deny_rule(const runner_policy_key& key);

}  // namespace kohaku::runner
