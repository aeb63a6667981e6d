#pragma once
// The runner's record of attached workloads, persisted in STATE_DIR/workloads.json (whole-file
// crash-safe replacement) so a restarted runner still knows which veth and which address belong
// to whom, and can detach them or free their addresses later.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "common/wire/workload_report.h"

namespace kohaku::runner {

struct Workload {
  std::string id;         // "wl-" + 12 hex digits; also the container_id the host records
  std::string name;       // caller's label, may be empty
  std::string netns;      // namespace path, or empty when attached by pid
  int pid = 0;            // when attached by pid
  std::string interface;  // name inside the namespace, e.g. eth0
  std::string host_veth;  // our end, enslaved to the bridge
  Ipv4Addr ip;
  uint8_t prefix = 0;
  Ipv4Addr gateway;
  uint32_t mtu = 0;
  std::string network;  // "overlay" or "default"
  std::string bridge;   // the bridge host_veth is a port of
  // true when the address came from the host (overlay): freed there on detach.
  bool host_managed = false;
  int64_t created_at_ms = 0;
  // Detached, but the host has not yet confirmed freeing the address: retried every heartbeat.
  bool release_pending = false;

  // What clients are told of it (common/wire/workload_report.h).
  wire::WorkloadReport report() const;
  // The state file's record: report() plus host_managed and release_pending.
  nlohmann::json to_json() const;
  // Throws std::invalid_argument naming the field.
  static Workload from_json(const nlohmann::json& j);
  bool operator==(const Workload&) const = default;
};

// "wl-" + 12 random hex digits.
std::string new_workload_id();
// The host-side veth name for a workload id: "kw" + the id's hex digits, 14 chars (IFNAMSIZ-safe).
std::string host_veth_name(const std::string& workload_id);

class WorkloadStore {
 public:
  explicit WorkloadStore(std::filesystem::path file) : file_(std::move(file)) {}

  const std::filesystem::path& file() const { return file_; }
  // Empty when the file does not exist; throws std::runtime_error naming the file when it is
  // unreadable or malformed (a corrupt state file must not silently forget workloads).
  std::vector<Workload> load() const;
  // Crash-safe replacement of the whole file.
  void save(const std::vector<Workload>& workloads) const;

 private:
  std::filesystem::path file_;
};

}  // namespace kohaku::runner
