#pragma once
// How the host forwards between runner tunnels: the BPF fast path (OVERLAY_DATAPATH = "bpf", the
// default) or the kernel path (ip_forward + FORWARD accept rules, KohakuRiver's way). Chooses the
// active one at start-up, falls back to the kernel path with one warning when BPF cannot be
// loaded, removes the other mode's leftovers (a restart that switches modes leaves nothing
// behind), and keeps the BPF maps and TC filters in step with the tunnels HostTunnels reports.
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/config_checks.h"
#include "common/ipv4.h"
#include "host/datapath/kernel_forwarding.h"
#include "host/host_config.h"

namespace kohaku {
namespace bpf {
class HostDatapath;
}
class ExpressStage;

// One runner's tunnel as it exists in the kernel right now.
struct TunnelDevice {
  uint32_t runner_id = 0;
  std::string runner_name;
  std::string device;  // vxkr<id>
  uint32_t ifindex = 0;
  Ipv4Cidr subnet;     // the runner's subnet: routed to the device, allowed as source from it
  Ipv4Addr host_addr;  // the host's address on that subnet (<subnet>+254), held by the device
  // For the express stage on the uplink: the runner's underlay address (the device's remote),
  // the device's VNI and MAC.
  Ipv4Addr physical_ip;
  uint32_t vni = 0;
  std::array<uint8_t, 6> mac{};
};

// The host's own overlay address on the anchor interface.
struct AnchorAddress {
  Ipv4Addr addr;
  uint32_t ifindex = 0;
};

class HostDatapathMode {
 public:
  explicit HostDatapathMode(const HostConfig& config, std::string iptables = "iptables");
  ~HostDatapathMode();  // leaves pins and filters in place: forwarding outlives the process
  HostDatapathMode(const HostDatapathMode&) = delete;
  HostDatapathMode& operator=(const HostDatapathMode&) = delete;

  // Loads (or adopts) the BPF datapath when requested, else (or when that fails) sets up the
  // kernel path; then cleans up the other mode and reconciles with `tunnels`. Throws only when
  // neither datapath can be set up.
  void start(const AnchorAddress& anchor, const std::vector<TunnelDevice>& tunnels);

  // A tunnel device was created or re-checked (its ifindex may be new after a recreate).
  void tunnel_up(const TunnelDevice& tunnel);
  // The runner is released; called before its device is deleted, so nothing is redirected into a
  // vanishing device.
  void tunnel_down(uint32_t runner_id, Ipv4Addr host_addr);
  // The full desired state (every tick): maps hold exactly these tunnels, each has our filter
  // attached; in kernel mode the FORWARD rules are re-checked.
  void reconcile(const AnchorAddress& anchor, const std::vector<TunnelDevice>& tunnels);

  Datapath requested() const { return requested_; }
  Datapath active() const;
  // The "datapath" object of /api/overlay/status (docs/api.md).
  nlohmann::json status() const;

 private:
  bool try_load_bpf();
  void enter_kernel_mode();
  void leave_kernel_mode();
  void prepare_device(const TunnelDevice& tunnel);
  void reconcile_bpf(const AnchorAddress& anchor, const std::vector<TunnelDevice>& tunnels);

  HostConfig config_;
  Datapath requested_;
  KernelForwarding kernel_;

  mutable std::mutex mu_;  // guards the fields below (status() runs on API threads)
  Datapath active_;
  std::string reason_;        // why active differs from requested
  std::string kernel_error_;  // last failure to install the kernel path's rules
  std::map<uint32_t, TunnelDevice> tunnels_;
  std::unique_ptr<bpf::HostDatapath> bpf_;  // set once in start(), before any concurrent use
  std::unique_ptr<ExpressStage> express_;   // the uplink stage on top of bpf_ (express_stage.h)
};

}  // namespace kohaku
