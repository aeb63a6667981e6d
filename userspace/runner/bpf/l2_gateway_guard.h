#pragma once
// The guard on every named L2 network's vxlan<VNI> device (bpf/l2_gateway_guard.bpf.c): ARP
// requests for the shared gateway address and broadcasts sourced by the shared gateway MAC stay
// on this runner instead of being flooded to the other members (docs/l2-networks.md, "The
// distributed gateway"). One program for all networks; the map l2_gateways says which device
// guards which gateway.
//
// With a pin root the map, the counters and the program are pinned under <pin_root>/l2/ and
// adopted by the next daemon (a map of another shape is replaced: its entries are rewritten by
// the next sync anyway). Not thread safe: the L2 agent drives it under its lock.
#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "common/bpf/attach_points.h"
#include "common/ipv4.h"
#include "common/netlink/link.h"
#include "lib/l2_gateway_types.h"

struct l2_gateway_guard;

namespace kohaku::bpf {
template <class Skel>
class PinnedSkeleton;
}

namespace kohaku::runner {

struct L2Gateway {
  Ipv4Addr address;
  netlink::MacAddr mac;
  bool operator==(const L2Gateway&) const = default;
};

class L2GatewayGuard {
 public:
  // Loads the program and creates or adopts the maps (pin_root empty: nothing pinned; else a
  // bpffs is mounted there when none is). Throws (what, path, errno text) when the kernel
  // refuses.
  static std::unique_ptr<L2GatewayGuard> open(const std::string& pin_root);
  ~L2GatewayGuard();
  L2GatewayGuard(const L2GatewayGuard&) = delete;
  L2GatewayGuard& operator=(const L2GatewayGuard&) = delete;

  // Makes l2_gateways hold exactly `by_ifindex` and attaches the program to each of those
  // devices (egress). Throws std::runtime_error naming the device.
  void sync(const std::map<int, L2Gateway>& by_ifindex);
  // The map's entries, as sync() left them or a previous daemon did.
  std::map<int, L2Gateway> entries() const;
  l2_guard_stats counters() const;  // summed over CPUs
  std::string pin_dir() const { return pin_dir_; }
  int program_fd() const;

 private:
  L2GatewayGuard();
  int map_fd(const char* name) const;

  using Skeleton = bpf::PinnedSkeleton<l2_gateway_guard>;
  std::unique_ptr<Skeleton> skel_;
  std::string pin_dir_;
  uint32_t program_id_ = 0;
};

}  // namespace kohaku::runner
