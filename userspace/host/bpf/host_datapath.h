#pragma once
// The host's BPF fast path (bpf/host_forward.bpf.c) as the daemon drives it: load or adopt the
// pinned program and maps, keep the maps in step with runner allocations, attach the program to
// vxkr devices and read the counters.
//
// Restart model: programs and maps are pinned under <pin_root>/host/ and TC filters keep running
// after the process exits. A new HostDatapath reuses the pinned maps (entries and counters kept),
// loads the new program and re-pins it; attach() then swaps it in atomically per device. A pinned
// map whose layout differs from this build's is recreated and its entries carried over by field
// name (migrated_maps() lists them); call reconcile() afterwards with the full desired state.
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ipv4.h"
#include "lib/host_types.h"

struct host_forward;

namespace kohaku::bpf {

template <class Skel>
class PinnedSkeleton;

struct HostDatapathOptions {
  std::string pin_root = "/sys/fs/bpf/kohaku";  // BPF_PIN_ROOT
  // false: nothing is pinned or adopted (tests of the program itself).
  bool pin = true;
};

// A runner tunnel: packets for `subnet` go out of `ifindex`, and packets arriving on `ifindex`
// must come from `subnet` (or a host address).
struct RunnerRoute {
  uint32_t runner_id = 0;
  Ipv4Cidr subnet;
  uint32_t ifindex = 0;

  bool operator==(const RunnerRoute&) const = default;
};

struct HostAddress {
  Ipv4Addr addr;
  uint32_t ifindex = 0;  // device holding it; 0 when not tied to one

  bool operator==(const HostAddress&) const = default;
};

// One runner's counters summed over CPUs (field meanings: bpf/lib/host_types.h).
struct RunnerCounters {
  host_stats sum{};

  uint64_t pass_packets() const;
  uint64_t drop_packets() const;
  // Every counter by its map field name, in map order, for status output.
  std::vector<std::pair<std::string_view, uint64_t>> named() const;
};

// Map updates are safe from several threads; attach/detach are safe from several threads.
//
// Cost: upsert_runner and remove_runner touch only that runner's entries (a few map syscalls and
// O(log n) work on an in-memory mirror of the runner entries), whatever the number of runners;
// reconcile is O(n log n) for n runners. The mirror is read from the maps when they are adopted
// and rebuilt by every reconcile, so entries written behind our back are found there.
class HostDatapath {
 public:
  // Loads (or adopts) the program and maps; throws std::system_error / std::runtime_error with
  // the step, the path and the errno text. Mounts the bpffs when the pin root is not on one.
  explicit HostDatapath(const HostDatapathOptions& options);
  ~HostDatapath();  // leaves pins and TC filters in place: forwarding outlives the process
  HostDatapath(const HostDatapath&) = delete;
  HostDatapath& operator=(const HostDatapath&) = delete;

  const std::string& pin_dir() const { return pin_dir_; }  // "" when not pinned
  const std::vector<std::string>& migrated_maps() const { return migrated_; }
  int program_fd() const;
  uint32_t program_id() const;
  int map_fd(std::string_view name) const;  // host_routes, host_ingress, host_addrs, host_stats

  // Makes the runner routable and its tunnel's sources allowed; replaces whatever this runner
  // had before (another subnet or device). Throws std::invalid_argument, changing nothing, for
  // id 0, ifindex 0, or a subnet another runner owns.
  void upsert_runner(const RunnerRoute& route);
  // Removes the runner's route, ingress entry and counters; false when it had none.
  bool remove_runner(uint32_t runner_id);
  std::vector<RunnerRoute> runners() const;  // from the ingress map, by runner id

  void add_host_address(const HostAddress& addr);
  bool remove_host_address(Ipv4Addr addr);
  std::vector<HostAddress> host_addresses() const;

  // Makes the maps hold exactly these runners and host addresses (adoption after a restart).
  void reconcile(const std::vector<RunnerRoute>& runners, const std::vector<HostAddress>& addrs);

  // TC ingress of a vxkr device; attach replaces a previous program atomically, detach removes
  // only our filter (false when it was not attached). A tunnel created without a clsact gets one
  // on the shared tunnel blocks (kHostTunnelTcBlocks), where the one filter serves every tunnel:
  // attaching through one attaches all, detaching through one detaches all (the datapath leaves
  // BPF mode for all tunnels at once anyway).
  void attach(uint32_t ifindex);
  bool detach(uint32_t ifindex);
  std::optional<uint32_t> attached_program_id(uint32_t ifindex) const;

  std::optional<RunnerCounters> counters(uint32_t runner_id) const;
  std::map<uint32_t, RunnerCounters> all_counters() const;  // id 0: unregistered devices

 private:
  void load(const HostDatapathOptions& options);
  void ensure_stats_entry(uint32_t runner_id);
  void write_host_address(const HostAddress& addr);
  bool erase_host_address(Ipv4Addr addr);
  // The mirror of host_routes / host_ingress, and map writes that keep it in step.
  void load_mirror();
  void put_route(const RunnerRoute& r);
  bool erase_route(std::pair<uint32_t, uint8_t> key);
  void put_ingress(const RunnerRoute& r);
  bool erase_ingress(uint32_t ifindex);
  // The first route of another runner than `self` that overlaps `subnet`, if any.
  std::optional<std::pair<Ipv4Cidr, uint32_t>> overlapping_route(const Ipv4Cidr& subnet,
                                                                 uint32_t self) const;

  // Serializes map writers: upsert/remove/reconcile read-modify-write several maps.
  std::mutex write_mu_;
  using Skeleton = PinnedSkeleton<host_forward>;
  std::unique_ptr<Skeleton> skel_;
  std::string pin_dir_;
  std::vector<std::string> migrated_;

  // What host_routes and host_ingress hold, guarded by write_mu_. Route keys are (network
  // address, prefix length), ordered by address: the routes inside a subnet form one range,
  // and the routes containing it are at most one per prefix length.
  struct Owned {
    std::set<std::pair<uint32_t, uint8_t>> routes;
    std::set<uint32_t> ifindexes;
  };
  std::map<std::pair<uint32_t, uint8_t>, uint32_t> route_owner_;  // route key -> runner id
  std::map<uint32_t, uint32_t> ingress_owner_;                    // ifindex -> runner id
  std::map<uint32_t, Owned> owned_;                               // runner id -> its keys
};

// Leaving the BPF datapath (OVERLAY_DATAPATH switched to "kernel") without loading anything:
// removes our filter from a device's TC ingress (false when it was not there)...
bool detach_host_forward(uint32_t ifindex);
// The program id our filter runs on a device's TC ingress (nullopt: no filter of ours there).
std::optional<uint32_t> host_forward_program(uint32_t ifindex);
// ...and the pins under <pin_root>/host/; the maps and program vanish with their last user.
// Returns how many pins were removed; a missing directory is not an error.
size_t remove_host_pins(const std::string& pin_root);

}  // namespace kohaku::bpf
