#pragma once
// The host's side of the overlay in the kernel: the anchor interface holding the host overlay
// IP, and one point-to-point VXLAN device vxkr<id> per runner allocation, kept in step with the
// control plane's state in both directions. The datapath (BPF maps and filters, or the kernel
// path's rules) is told about every device as it comes and goes.
#include <mutex>

#include <vector>
#include "common/firewalld.h"

#include "common/netlink/vxlan_link.h"
#include "host/datapath/host_datapath_mode.h"
#include "host/host_config.h"
#include "host/overlay/overlay_service.h"
#include "host/overlay/runner_registry.h"

namespace kohaku {

inline constexpr const char* kHostAnchorName = "kohaku-host";

class HostTunnels : public AllocationObserver {
 public:
  // `datapath` (may be null: devices only, with net.ipv4.ip_forward on) must outlive this.
  HostTunnels(const HostConfig& config, HostDatapathMode* datapath = nullptr);

  // Start-up: anchor + forwarding, recovery from the vxkr devices already present (a device
  // whose VNI does not match its id is removed; one the state does not know becomes a
  // placeholder allocation), then every allocation's device is ensured. Devices that already
  // match are left alone, so traffic of runners that stay registered is never interrupted.
  // Finally the datapath starts (or adopts its pinned state) with the resulting devices.
  void start(OverlayService& service);

  // Re-ensures the devices of these allocations (drift repair) and removes vxkr devices that
  // belong to no allocation; the datapath then reconciles with the devices as they are (an
  // ifindex changes when a device is recreated).
  void reconcile(const std::vector<RunnerAllocation>& allocations);

  void on_allocated(const RunnerAllocation& allocation) override;
  void on_released(const RunnerAllocation& allocation) override;

 private:
  // Ensures the device and its address; returns it as the datapath sees it. `seen`: the device
  // as a listing of this pass reported it (none: missing or not listed), which spares the
  // lookups when it matches.
  TunnelDevice ensure_tunnel(const RunnerAllocation& allocation,
                             const netlink::VxlanInfo* seen = nullptr);
  TunnelDevice tunnel_device(const RunnerAllocation& allocation, uint32_t ifindex) const;
  AnchorAddress anchor_address() const;

  // Deletes a vxkr device and takes it out of firewalld's trusted zone.
  void delete_tunnel(const std::string& name);

  HostConfig config_;
  HostDatapathMode* datapath_;
  // When firewalld runs: every vxkr device in its trusted zone, the VXLAN port open.
  FirewalldZones firewall_{"tunnels"};
  std::mutex mutex_;  // netlink changes to one device must not interleave
};

}  // namespace kohaku
