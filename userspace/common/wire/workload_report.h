#pragma once
// One attached workload as the runner reports it: the answer to an attach, GET /api/workloads and
// the `workloads` of the runner's status, which the host's GET /api/nodes/HOST/overlay passes on
// to kohakuctl. The runner builds it (runner/workloads/workload_manager.cpp) and kohakuctl reads
// it (tools/kohakuctl/overlay_commands.cpp), so both ends share one definition of the fields.
// The runner's own record (runner/workloads/workload_store.h) is a file format, not this message:
// it keeps what only the runner needs (host_managed, release_pending).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/ipv4.h"

namespace kohaku::wire {

struct WorkloadReport {
  std::string id;             // "id": "wl-" + 12 hex digits, never empty
  std::string name;           // "name": the caller's label, may be empty
  Ipv4Addr ip;                // "ip"
  uint8_t prefix = 0;         // "prefix": 0..32
  Ipv4Addr gateway;           // "gateway"
  std::string interface;      // "interface": the name inside the namespace
  std::string host_veth;      // "host_veth": the runner's end, a port of `bridge`
  uint32_t mtu = 0;           // "mtu"
  std::string network;        // "network": "overlay", "default" or "l2:NAME"
  std::string bridge;         // "bridge"
  int64_t created_at_ms = 0;  // "created_at_ms"
  std::string netns;          // "netns": left out when empty (attached by pid)
  int pid = 0;                // "pid": left out when 0 (attached by namespace path)

  // Throws std::invalid_argument naming the field ("workload report: 'KEY' ...") when `j` is not
  // an object with every field above of its type (netns and pid may be absent).
  static WorkloadReport from_json(const nlohmann::json& j);
  nlohmann::json to_json() const;
  bool operator==(const WorkloadReport&) const = default;
};

// A `workloads` array; throws as from_json, naming the entry by its place.
std::vector<WorkloadReport> workload_reports_from_json(const nlohmann::json& list);
nlohmann::json to_json(const std::vector<WorkloadReport>& reports);

}  // namespace kohaku::wire
