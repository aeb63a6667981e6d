#pragma once
// The runner's BPF data plane as one object: the masquerade programs for the uplink
// (runner_nat_egress / runner_nat_ingress), the forward filter for the overlay bridge
// (runner_forward_filter, one copy per network bridge: the overlay's and every named network's),
// the fast path on each workload's veth (runner_workload) and the maps they share (runner_ct,
// runner_config, runner_policy, runner_nets, runner_stats; layouts in bpf/lib/runner_types.h;
// the fast path's runner_wl, runner_wl_addr, runner_wl_cfg, runner_wl_stats in
// bpf/lib/workload_types.h).
//
// With a pin root the maps are pinned under <pin_root>/runner/ and adopted by the next daemon:
// the conntrack table survives a restart, attach() replaces the running filters atomically, so
// no flow is dropped. Maps whose layout changed (struct fields, conntrack size) are recreated and
// their entries carried over by field name (common/bpf/pinned_skeleton.h).
// Without a pin root (tests) nothing outlives the object except attached filters.
//
// Not thread safe: the daemon drives it from one thread.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/bpf/attach_points.h"
#include "lib/runner_types.h"
#include "runner/bpf/conntrack_table.h"
#include "runner/bpf/deny_rule.h"
#include "runner/bpf/nat_config.h"
#include "runner/bpf/net_table.h"
#include "runner/bpf/workload_table.h"

struct runner_nat_egress;
struct runner_nat_ingress;
struct runner_forward_filter;
struct runner_workload;
struct runner_overlay_ingress;

namespace kohaku::bpf {
template <class Skel>
class PinnedSkeleton;
}

namespace kohaku::runner {

struct DatapathOptions {
  std::string pin_root;                    // e.g. /sys/fs/bpf/kohaku; empty = do not pin
  uint32_t conntrack_max_entries = 65536;  // map entries (two per flow)
};

struct TableUsage {
  uint64_t entries = 0;      // conntrack entries now (two per flow)
  uint64_t max_entries = 0;  // capacity; the LRU evicts the least recently used beyond it
};

class RunnerDatapath {
 public:
  // Loads the programs and creates or adopts the maps. Throws std::system_error (what, path,
  // errno text) when the kernel refuses or the pin root is not on bpffs, std::invalid_argument
  // when options are invalid.
  static std::unique_ptr<RunnerDatapath> open(const DatapathOptions& options);
  ~RunnerDatapath();
  RunnerDatapath(const RunnerDatapath&) = delete;
  RunnerDatapath& operator=(const RunnerDatapath&) = delete;

  // True when the conntrack table came from pins of a previous daemon (flows kept).
  bool adopted_conntrack() const { return adopted_ct_; }
  std::string pin_dir() const { return pin_dir_; }

  // Writes the configuration and enables translation/filtering. Validates first (throws
  // std::invalid_argument and changes nothing).
  void configure(const NatConfig& config);
  // The configuration in the map, if enabled (e.g. adopted from the previous daemon).
  std::optional<NatConfig> configuration() const;
  // Programs pass every packet untouched (flows stay in the table).
  void disable();

  // Uplink: masquerade egress + reverse ingress. Bridge: forward filter on its egress (any
  // number of bridges: the overlay's and each named network's).
  void attach_uplink(int ifindex);
  void detach_uplink(int ifindex);
  void attach_bridge(int ifindex);
  void detach_bridge(int ifindex);

  // Fast path: the program on a workload's host-side veth (TC ingress), the workloads it knows
  // (workload_table.h) and the two devices it may route to after a FIB lookup (0: none yet).
  void attach_workload(int veth_ifindex);
  bool detach_workload(int veth_ifindex);  // false when there was none (or no such device)
  // vxlan0's ingress: what the hub routes to a fast-path workload is delivered past the bridge.
  bool ensure_overlay_ingress(int vxlan_ifindex);
  void set_fast_path_devices(uint32_t uplink_ifindex, uint32_t overlay_ifindex);
  runner_wl_config fast_path_devices() const;
  WorkloadMaps workload_maps() const;

  // Named L2 networks (map runner_nets): makes the map hold exactly `networks`. Throws
  // std::invalid_argument (validate_net_entries) before changing anything. Returns the number
  // of entries written or deleted.
  size_t set_named_networks(const std::vector<NetEntry>& networks);
  std::vector<NetEntry> named_networks() const;

  // Deny rules: add returns false when the rule exists, remove false when it did not.
  bool add_deny_rule(const DenyRule& rule);
  bool remove_deny_rule(const DenyRule& rule);
  std::vector<DenyRuleStatus> deny_rules() const;

  // Garbage collection of expired flows (see conntrack_table.h); call every few seconds.
  ConntrackSweep collect_garbage() { return collect_garbage(monotonic_now_ns()); }
  ConntrackSweep collect_garbage(uint64_t now_ns);
  std::vector<ConntrackRecord> conntrack() const;
  TableUsage table_usage() const;

  // Counters summed over CPUs, and the same as (name, value) pairs for status output.
  runner_stats counters() const;
  static std::vector<std::pair<std::string, uint64_t>> named_counters(const runner_stats& s);

  // Removes the pins (switching to the kernel datapath); attached filters must be detached first.
  void unpin();

  // Deletes the flows masqueraded behind `old_uplink` (the uplink address changed); returns the
  // number of conntrack entries removed.
  uint64_t forget_flows_via(Ipv4Addr old_uplink);

  // Leftovers of a previous daemon without opening anything (switching to the kernel datapath,
  // overlay disabled): our filters on every device of the namespace, and the pins under
  // <pin_root>/runner. Return what they removed ("nat_egress on eth0 egress" / pin names).
  static std::vector<std::string> detach_everywhere();
  static std::vector<std::string> remove_pins(const std::string& pin_root);

  int nat_egress_fd() const;
  int nat_ingress_fd() const;
  int forward_filter_fd() const;
  int workload_fd() const;
  int overlay_ingress_fd() const;
  int conntrack_fd() const;

 private:
  RunnerDatapath();
  int map_fd(const char* name) const;
  void write_config(const runner_config& value);
  runner_config read_config() const;
  uint32_t count_rules() const;

  using Egress = bpf::PinnedSkeleton<runner_nat_egress>;
  using Ingress = bpf::PinnedSkeleton<runner_nat_ingress>;
  using Filter = bpf::PinnedSkeleton<runner_forward_filter>;
  using Workload = bpf::PinnedSkeleton<runner_workload>;
  using OverlayIngress = bpf::PinnedSkeleton<runner_overlay_ingress>;
  int workload_map_fd(const char* name) const;
  std::unique_ptr<Egress> egress_;
  std::unique_ptr<Workload> workload_;
  std::unique_ptr<Ingress> ingress_;
  std::unique_ptr<Filter> filter_;
  std::unique_ptr<OverlayIngress> overlay_ingress_;
  std::string pin_dir_;
  bool adopted_ct_ = false;
};

}  // namespace kohaku::runner
