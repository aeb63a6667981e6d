#pragma once
// The hub express stage (docs/bpf-host-datapath.md, "Express path"): on top of the loaded TC fast
// path it loads (or adopts) bpf/host_express.bpf.c, finds the uplink (the device holding
// HOST_REACHABLE_ADDRESS), picks the hook for it (OVERLAY_EXPRESS: auto = native XDP on physical
// NICs, TC elsewhere; an XDP attach the driver refuses falls back to TC with one warning), follows
// an uplink that moves or is recreated, and keeps express_runners in step with the tunnels.
// Nothing here throws to the caller: a stage that cannot run is off, with the reason in status().
#include <nlohmann/json.hpp>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "host/bpf/host_express.h"
#include "host/host_config.h"

namespace kohaku {

struct TunnelDevice;  // host/datapath/host_datapath_mode.h
namespace bpf {
class HostDatapath;
}

class ExpressStage {
 public:
  explicit ExpressStage(const HostConfig& config);
  ~ExpressStage();  // leaves the program attached: forwarding outlives the process
  ExpressStage(const ExpressStage&) = delete;
  ExpressStage& operator=(const ExpressStage&) = delete;

  // With the TC fast path loaded: loads the express programs and attaches one to the uplink
  // (OVERLAY_EXPRESS = off: removes what an earlier run attached).
  void start(const bpf::HostDatapath& base, const std::vector<TunnelDevice>& tunnels);
  void tunnel_up(const TunnelDevice& tunnel);
  void tunnel_down(uint32_t runner_id);
  // Every tick: the runners as they are, the uplink found again (a moved address, a recreated
  // device, a program detached behind our back), STALE neighbour entries on the tunnels
  // revalidated.
  void reconcile(const std::vector<TunnelDevice>& tunnels);
  // The "express" object of /api/overlay/status (docs/api.md); `names` maps runner ids to names.
  nlohmann::json status(const std::function<nlohmann::json(uint32_t)>& runner_name) const;

  // Leaving the BPF datapath: removes our express program from the device holding `host_ip`.
  static void remove_from_uplink(Ipv4Addr host_ip);

 private:
  struct Uplink {
    uint32_t ifindex = 0;
    std::string name;
    std::string kind;  // IFLA_INFO_KIND; "" for a physical NIC
    std::array<uint8_t, 6> mac{};
    bool operator==(const Uplink&) const = default;
  };
  static std::optional<Uplink> find_uplink(Ipv4Addr host_ip);
  void follow_uplink();  // mu_ held
  void attach_to(const Uplink& uplink);
  void set_off(const std::string& reason);
  void ensure_gro(const Uplink& uplink);
  void revalidate_neighbours(const std::vector<TunnelDevice>& tunnels);

  HostConfig config_;
  std::unique_ptr<bpf::HostExpress> express_;  // set in start(), before concurrent use

  mutable std::mutex mu_;  // guards the fields below
  std::optional<Uplink> uplink_;
  std::optional<bpf::ExpressHook> hook_;  // attached now
  std::string why_;                       // why this hook (or why none)
  bool warned_ = false;                   // the one warning of a fallback or failure was logged
};

}  // namespace kohaku
