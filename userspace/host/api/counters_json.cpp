#include "host/api/counters_json.h"

#include <string>

namespace kohaku {

nlohmann::json counters_json(const std::vector<std::pair<std::string_view, uint64_t>>& named,
                             uint64_t passed_packets, uint64_t dropped_packets) {
  nlohmann::json j = nlohmann::json::object();
  nlohmann::json passed = nlohmann::json::object(), dropped = nlohmann::json::object();
  for (const auto& [name, value] : named) {
    if (name.starts_with("fwd_"))
      j["forwarded_" + std::string(name.substr(4))] = value;
    else if (name == "pass_bytes")
      j["passed_bytes"] = value;
    else if (name.starts_with("pass_"))
      passed[std::string(name.substr(5))] = value;
    else if (name == "drop_bytes")
      j["dropped_bytes"] = value;
    else if (name.starts_with("drop_"))
      dropped[std::string(name.substr(5))] = value;
  }
  j["passed_packets"] = passed_packets;
  j["passed"] = passed;
  j["dropped_packets"] = dropped_packets;
  j["dropped"] = dropped;
  return j;
}

}  // namespace kohaku
