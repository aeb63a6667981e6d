#pragma once
// The hub express path (bpf/host_express.bpf.c) as the daemon drives it: load or adopt the pinned
// programs and maps, keep express_runners in step with the runner tunnels, attach the TC or the
// XDP variant to the uplink and read the counters.
//
// The programs route by the maps of the TC fast path (host_routes, host_ingress, host_addrs), so
// HostExpress is built on a loaded HostDatapath and shares those maps with it. Its own maps and
// programs are pinned beside them under <pin_root>/host/, adopted after a restart (entries and
// counters kept) and migrated by field name when their layout changed; the attached program keeps
// running while no daemon does.
#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/ipv4.h"
#include "lib/express_types.h"

struct host_express;

namespace kohaku::bpf {

template <class Skel>
class PinnedSkeleton;

class HostDatapath;

// What the program knows of the hub itself (express_config).
struct ExpressConfig {
  Ipv4Addr host_ip;  // HOST_REACHABLE_ADDRESS
  uint32_t uplink_ifindex = 0;
  std::array<uint8_t, 6> uplink_mac{};
  uint16_t vxlan_port = 4789;
  uint32_t vni_base = 100;
  bool tx_devmap = false;  // XDP on veth: XDP_TX needs an XDP program on the peer, devmap does not

  bool operator==(const ExpressConfig&) const = default;
};

// One runner as the express path sees it (express_runners).
struct ExpressRunner {
  uint32_t runner_id = 0;
  uint32_t vni = 0;
  Ipv4Addr physical_ip;
  uint32_t tunnel_ifindex = 0;
  std::array<uint8_t, 6> tunnel_mac{};
  Ipv4Cidr subnet;

  bool operator==(const ExpressRunner&) const = default;
};

// One runner's express counters summed over CPUs (field meanings: bpf/lib/express_types.h).
struct ExpressCounters {
  express_stats sum{};

  uint64_t pass_packets() const;
  uint64_t drop_packets() const;
  // Every counter by its map field name, in map order, for status output.
  std::vector<std::pair<std::string_view, uint64_t>> named() const;
};

// How the program is attached to a device: TC ingress or XDP (native = in the driver).
enum class ExpressHook { kTc, kXdpNative, kXdpGeneric };
std::string_view express_hook_name(ExpressHook hook);  // "tc" / "xdp-native" / "xdp-generic"

class HostExpress {
 public:
  struct Options {
    std::string pin_root = "/sys/fs/bpf/kohaku";
    bool pin = true;  // false: nothing pinned or adopted (tests of the program itself)
  };
  // Loads (or adopts) programs and maps; throws std::system_error / std::runtime_error with the
  // step, the path and the errno text. `base` must outlive this object.
  HostExpress(const Options& options, const HostDatapath& base);
  ~HostExpress();  // leaves pins and attachments in place: forwarding outlives the process
  HostExpress(const HostExpress&) = delete;
  HostExpress& operator=(const HostExpress&) = delete;

  const std::vector<std::string>& migrated_maps() const { return migrated_; }
  int tc_program_fd() const;
  int xdp_program_fd() const;
  uint32_t program_id(ExpressHook hook) const;
  int map_fd(std::string_view name) const;

  // Writes express_config (enabled) and puts the uplink into express_tx.
  void configure(const ExpressConfig& config);
  // Sets express_config.enabled = 0: every frame passes to the kernel.
  void disable();

  // Makes the runner expressible (as source and as target); replaces what it had. Throws
  // std::invalid_argument, changing nothing, for id 0, ifindex 0 or a bad subnet. O(1): the
  // loader keeps a mirror of what it wrote and writes only what changed.
  void upsert_runner(const ExpressRunner& runner);
  bool remove_runner(uint32_t runner_id);  // false when it had none
  // Makes express_runners hold exactly these runners (adoption after a restart, every tick).
  void reconcile(const std::vector<ExpressRunner>& runners);
  std::vector<ExpressRunner> runners() const;  // from the map, by runner id

  // Attaches the variant for `hook` to the device, replacing a previous attachment of ours
  // atomically. XDP: throws std::system_error with the kernel's reason when the driver refuses.
  void attach(uint32_t ifindex, ExpressHook hook);
  // Removes our TC filter and our XDP program from the device (an XDP program of another tool
  // stays). Returns whether anything was removed.
  bool detach(uint32_t ifindex);
  // What of ours is attached to the device now, by the kernel's word.
  std::optional<ExpressHook> attached(uint32_t ifindex) const;

  std::optional<ExpressCounters> counters(uint32_t runner_id) const;
  std::map<uint32_t, ExpressCounters> all_counters() const;  // id 0: frames of no runner

 private:
  void load(const Options& options, const HostDatapath& base);
  void write_runner(const ExpressRunner& runner);
  void erase_runner(uint32_t runner_id);

  std::mutex write_mu_;  // serializes map writers and guards mirror_
  using Skeleton = PinnedSkeleton<host_express>;
  std::unique_ptr<Skeleton> skel_;
  std::string pin_dir_;
  std::vector<std::string> migrated_;
  std::map<uint32_t, ExpressRunner> mirror_;  // what express_runners holds
};

// Leaving the express stage without loading anything: removes our TC filter and XDP program from
// a device (false when neither was there)...
bool detach_host_express(uint32_t ifindex);

}  // namespace kohaku::bpf
