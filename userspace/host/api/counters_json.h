#pragma once
// The status JSON of one runner's BPF counters, the same shape for every stage (the express stage
// on the uplink, host_forward on the tunnels): fwd_* -> forwarded_*, pass_<reason> ->
// passed{reason}, drop_<reason> -> dropped{reason}, plus the passed/dropped totals.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string_view>
#include <utility>
#include <vector>

namespace kohaku {

nlohmann::json counters_json(const std::vector<std::pair<std::string_view, uint64_t>>& named,
                             uint64_t passed_packets, uint64_t dropped_packets);

}  // namespace kohaku
