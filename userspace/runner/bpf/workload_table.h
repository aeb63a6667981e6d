#pragma once
// The workloads the runner fast path knows (maps runner_wl, runner_wl_addr, runner_wl_stats;
// layouts in bpf/lib/workload_types.h): per workload its host-side veth, its address and MAC
// (the only source it may send from), its gateway's MAC and bridge, and whether its traffic is
// routed past the bridge. docs/bpf-runner-fast-path.md.
#include <compare>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "common/netlink/link.h"
#include "lib/workload_types.h"

namespace kohaku::runner {

struct WorkloadEntry {
  uint32_t ifindex = 0;  // its host-side veth
  Ipv4Addr addr;
  uint8_t prefix = 0;       // of its subnet: other overlay subnets are reached via the hub
  netlink::MacAddr mac;     // the namespace side of the veth
  netlink::MacAddr gw_mac;  // the bridge's
  uint32_t bridge_ifindex = 0;
  bool fast = true;  // route past the bridge (false: only the source check)

  std::string to_string() const;  // "ifindex 12 10.1.0.5 02:..:05 via bridge 4 (fast)"
  auto operator<=>(const WorkloadEntry&) const = default;
};

struct WorkloadMaps {
  int workloads = -1;  // runner_wl
  int by_addr = -1;    // runner_wl_addr
  int stats = -1;      // runner_wl_stats
};

// Throws std::invalid_argument naming the entry: ifindex or bridge 0, address 0, a multicast or
// zero MAC, an address or veth twice, more than RUNNER_WL_MAX.
void validate_workload_entries(const std::vector<WorkloadEntry>& entries);

// Adds or replaces one workload (validated first; nothing changes when invalid). An address
// that moved from another veth leaves that veth's entry in place until it is removed or synced.
void upsert_workload(const WorkloadMaps& maps, const WorkloadEntry& entry);
// Removes the workload on this veth (its address entry too, when it still points here); false
// when there was none.
bool remove_workload(const WorkloadMaps& maps, uint32_t ifindex);
// Makes the maps hold exactly `wanted`; returns the number of entries written or deleted.
size_t sync_workloads(const WorkloadMaps& maps, const std::vector<WorkloadEntry>& wanted);
// The entries, sorted by ifindex.
std::vector<WorkloadEntry> read_workloads(const WorkloadMaps& maps);
// Counters per veth, summed over CPUs.
std::map<uint32_t, runner_wl_stats> read_workload_counters(const WorkloadMaps& maps);

}  // namespace kohaku::runner
