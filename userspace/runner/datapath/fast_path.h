#pragma once
// The runner fast path in the daemon (docs/bpf-runner-fast-path.md): the program
// runner_workload on the host-side veth of every workload the runner knows, and the maps that
// tell it each workload's address, MAC and bridge. The daemon's own namespace workloads and
// Docker's containers on the overlay and named networks are handed in as FastPathWorkloads per
// source; every reconcile pass makes the maps and the attachments match their union: a new veth
// gets the program, a recreated one gets it back, a gone one is forgotten. A veth the program
// cannot attach to keeps today's path (the bridge) with one warning naming the device.
// A daemon starts with the maps its predecessor pinned: until every source has reported once, a
// pass adds and never removes, so the workloads served before the restart keep their entries and
// their counters (a source not heard from yet is not a source without workloads).
//
// Not thread safe: RunnerDatapathMode drives it under its own lock.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "common/netlink/link.h"

namespace kohaku::runner {

class RunnerDatapath;

// A workload as its source found it.
struct FastPathWorkload {
  std::string label;      // "workload wl-0123abcd4567", "container 3f2a9c01d2e4"
  std::string host_veth;  // the host side of its veth pair
  Ipv4Addr ip;
  uint8_t prefix = 0;    // of its subnet
  netlink::MacAddr mac;  // the namespace side's MAC
  std::string bridge;    // the bridge host_veth must be a port of

  bool operator==(const FastPathWorkload&) const = default;
};

// The sources of workloads: the daemon's own namespace workloads and Docker's containers.
inline constexpr const char* kFastPathRunnerSource = "runner";
inline constexpr const char* kFastPathDockerSource = "docker";

class FastPath {
 public:
  // `sources`: every source that will report (set_workloads); a workload in the maps is removed
  // only once all of them have.
  FastPath(RunnerDatapath& dp, std::set<std::string> sources)
      : dp_(dp), expected_(std::move(sources)) {}

  // The workloads of one source (kFastPath*Source), replacing what it gave before.
  void set_workloads(const std::string& source, std::vector<FastPathWorkload> workloads);
  // One pass: the devices the program may route to, then the maps and the attachments.
  // Problems with one workload are logged (once per message) and leave the others alone.
  void reconcile(uint32_t uplink_ifindex, uint32_t overlay_ifindex);
  // OVERLAY_FAST_PATH off: no device to redirect to, empty maps, and no runner_workload or
  // runner_overlay_ingress on any port of `bridges` (what a previous daemon with the fast path
  // on left attached included). Returns the filters removed.
  std::vector<std::string> disable(const std::set<std::string>& bridges);
  // Per workload: label, veth, address, whether the program runs there, its counters.
  nlohmann::json status() const;

 private:
  bool every_source_reported() const;

  RunnerDatapath& dp_;
  std::set<std::string> expected_;
  std::map<std::string, std::vector<FastPathWorkload>> sources_;
  std::map<uint32_t, std::string> attached_;     // veth ifindex -> label, program attached
  std::map<uint32_t, FastPathWorkload> served_;  // veth ifindex -> what the maps hold
  std::set<std::string> warned_;                 // messages logged once
};

}  // namespace kohaku::runner
