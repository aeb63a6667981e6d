#pragma once
// The host's side of the overlay in the kernel: the anchor interface holding the host overlay
// IP, and one point-to-point VXLAN device vxkr<id> per runner allocation, kept in step with the
// control plane's state in both directions.
#include <mutex>
#include <vector>

#include "host/host_config.h"
#include "host/overlay_service.h"
#include "host/runner_registry.h"

namespace kohaku {

inline constexpr const char* kHostAnchorName = "kohaku-host";

class HostTunnels : public AllocationObserver {
 public:
  explicit HostTunnels(const HostConfig& config);

  // Start-up: anchor + forwarding, recovery from the vxkr devices already present (a device
  // whose VNI does not match its id is removed; one the state does not know becomes a
  // placeholder allocation), then every allocation's device is ensured. Devices that already
  // match are left alone, so traffic of runners that stay registered is never interrupted.
  void start(OverlayService& service);

  // Re-ensures the devices of these allocations (drift repair) and removes vxkr devices that
  // belong to no allocation.
  void reconcile(const std::vector<RunnerAllocation>& allocations);

  void on_allocated(const RunnerAllocation& allocation) override;
  void on_released(const RunnerAllocation& allocation) override;

 private:
  void ensure_tunnel(const RunnerAllocation& allocation);

  HostConfig config_;
  std::mutex mutex_;  // netlink changes to one device must not interleave
};

}  // namespace kohaku
