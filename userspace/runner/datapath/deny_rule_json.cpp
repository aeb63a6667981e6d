#include "runner/datapath/deny_rule_json.h"

#include "common/domain_error.h"

namespace kohaku::runner {

using nlohmann::json;

namespace {

// "10.1.0.0/16", a single address ("10.1.0.5" = /32) or "any" (missing = any).
Ipv4Cidr parse_rule_cidr(const json& body, const char* key) {
  if (!body.contains(key) || body[key].is_null()) return Ipv4Cidr{};
  if (!body[key].is_string())
    throw DomainError(ErrorKind::kMalformed, std::string(key) + " must be a string");
  const std::string text = body[key];
  if (text == "any") return Ipv4Cidr{};
  if (auto c = Ipv4Cidr::try_parse(text)) return *c;
  if (auto a = Ipv4Addr::try_parse(text)) return Ipv4Cidr{*a, 32};
  throw DomainError(ErrorKind::kMalformed,
                    std::string(key) + " '" + text +
                        "' is not an IPv4 network with the host bits zero, an address or 'any'");
}

}  // namespace

DenyRule deny_rule_from_json(const json& body) {
  if (!body.is_object()) throw DomainError(ErrorKind::kMalformed, "the body must be a JSON object");
  for (const auto& [key, value] : body.items())
    if (key != "source" && key != "destination" && key != "protocol" && key != "port")
      throw DomainError(
          ErrorKind::kMalformed,
          "unknown field '" + key + "' (allowed: source, destination, protocol, port)");
  DenyRule rule;
  rule.source = parse_rule_cidr(body, "source");
  rule.destination = parse_rule_cidr(body, "destination");
  try {
    if (body.contains("protocol")) {
      const json& p = body["protocol"];
      if (p.is_string())
        rule.protocol = DenyRule::parse_protocol(p.get<std::string>());
      else if (p.is_number_unsigned() && p.get<uint64_t>() <= 255)
        rule.protocol = static_cast<uint8_t>(p.get<uint64_t>());
      else
        throw std::invalid_argument("protocol must be tcp, udp, icmp, any or a number 0..255");
    }
    if (body.contains("port")) {
      const json& port = body["port"];
      if (!port.is_number_unsigned() || port.get<uint64_t>() > 65535)
        throw std::invalid_argument("port must be a number 0..65535 (0 = any)");
      rule.port = static_cast<uint16_t>(port.get<uint64_t>());
    }
    rule.validate();
  } catch (const std::invalid_argument& e) {
    throw DomainError(ErrorKind::kMalformed, e.what());
  }
  if (rule.source.prefix == 0 && rule.destination.prefix == 0 && rule.protocol == 0)
    throw DomainError(ErrorKind::kMalformed,
                      "a deny rule matching everything would cut the runner off; give a source, "
                      "destination or protocol");
  return rule;
}

json deny_rule_to_json(const DenyRule& rule) {
  auto cidr = [](const Ipv4Cidr& c) { return c.prefix == 0 ? std::string("any") : c.to_string(); };
  return json{{"source", cidr(rule.source)},
              {"destination", cidr(rule.destination)},
              {"protocol", DenyRule::protocol_name(rule.protocol)},
              {"port", rule.port}};
}

nlohmann::json deny_rule_status_to_json(const DenyRuleStatus& status) {
  nlohmann::json j = deny_rule_to_json(status.rule);
  j["hits"] = status.hits;
  j["rule"] = status.rule.to_string();
  return j;
}

}  // namespace kohaku::runner
