#pragma once
// Deny rules as JSON, the same shape for the runner API's body, its answers and the rules file
// in STATE_DIR: {"source": "10.1.0.0/16" | "10.1.0.5" | "any", "destination": ..., "protocol":
// "tcp" | "udp" | "icmp" | "any" | 0..255, "port": 0..65535}. Missing fields mean "any".
#include <nlohmann/json.hpp>

#include "runner/bpf/deny_rule.h"

namespace kohaku::runner {

// Throws DomainError(kMalformed) saying which field is wrong; a rule matching everything is
// refused too (it would cut the runner off).
DenyRule deny_rule_from_json(const nlohmann::json& body);
// {source, destination, protocol (name when it has one), port}
nlohmann::json deny_rule_to_json(const DenyRule& rule);
// The same with its hit count and text, as GET /api/policy/deny and the status show it:
// {..., "hits": 3, "rule": "src=any dst=... proto=icmp port=any"}
nlohmann::json deny_rule_status_to_json(const DenyRuleStatus& status);

}  // namespace kohaku::runner
