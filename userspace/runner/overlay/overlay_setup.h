#pragma once
// The runner's side of the overlay in its own network namespace: bridge kohaku-overlay holding
// the gateway address, vxlan0 (VNI base+id, local runner IP, remote host IP) enslaved to it, the
// route to the whole overlay network via the host's address on this runner's subnet, and IPv4
// forwarding. apply() is idempotent and is called on every heartbeat: whatever drifted (VNI,
// remote, local, port, MTU, a deleted device, a lost address or route) is put back and logged.
// Nothing here is ever torn down on shutdown: workloads keep talking while the runner restarts.
#include <nlohmann/json.hpp>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "common/netlink/address.h"
#include "common/netlink/link.h"
#include "common/netlink/route.h"
#include "common/netlink/vxlan_link.h"
#include "runner/overlay/host_api.h"

namespace kohaku::runner {

inline constexpr const char* kOverlayBridge = "kohaku-overlay";
inline constexpr const char* kOverlayVxlan = "vxlan0";

// A fixed, locally administered MAC for a bridge whose gateway is `gateway`:
// 02:6b:<gateway's four bytes>. Without it the kernel derives the bridge MAC from its ports, so
// re-creating vxlan0 (or a restart that rebuilds the bridge) changes the gateway's MAC under the
// workloads' ARP caches and their traffic stops until those entries time out.
std::array<uint8_t, 6> bridge_mac_for(Ipv4Addr gateway);
std::string mac_to_string(const std::array<uint8_t, 6>& mac);

struct OverlayPlan {
  std::string bridge = kOverlayBridge;
  netlink::IfAddr bridge_address;  // gateway/prefix of the runner subnet
  std::array<uint8_t, 6> bridge_mac{};
  unsigned mtu = 1450;
  netlink::VxlanSpec vxlan;
  netlink::RouteSpec route;  // overlay network via the host's address on the runner subnet
};

// The wanted state from the host's answer. vni_base/port/mtu are this runner's configuration
// (the host refuses a mismatch at registration, so they agree with the host's).
// bridge: OVERLAY_BRIDGE_NAME.
OverlayPlan make_overlay_plan(const OverlayAssignment& assignment, Ipv4Addr local_ip,
                              uint32_t vni_base, uint16_t port, unsigned mtu,
                              const std::string& bridge = kOverlayBridge);

// How an existing vxlan0 differs from the plan, one entry per attribute ("remote 10.0.0.1, want
// 10.0.0.9"); empty when it matches. nullopt device: {"missing"}.
std::vector<std::string> vxlan_drift(const netlink::VxlanSpec& want,
                                     const std::optional<netlink::VxlanInfo>& have);
// Same for the bridge: missing, not a bridge, MTU, down, and the gateway address absent.
std::vector<std::string> bridge_drift(const OverlayPlan& plan,
                                      const std::optional<netlink::LinkInfo>& have,
                                      const std::vector<netlink::IfAddr>& addresses);

struct ApplyResult {
  bool changed = false;              // something was created or repaired
  std::vector<std::string> repairs;  // what, for the log and the status
};

// Brings the namespace to `plan`. Throws netlink::NetlinkError / std::exception naming the
// object when the kernel refuses.
// log_drift false: do not describe drift before repairing it (the caller already reported this
// state as failing and retries quietly).
ApplyResult apply_overlay(const OverlayPlan& plan, bool log_drift = true);

// Observed state of the bridge and vxlan0 for GET /api/overlay/status (never throws).
// Without a plan, `bridge` is the one looked at.
nlohmann::json observe_overlay(const std::optional<OverlayPlan>& plan,
                               const std::string& bridge = kOverlayBridge);

// The fallback network used when the overlay is off or broken: a bridge holding the gateway.
struct DefaultNetworkPlan {
  std::string bridge;  // DOCKER_NETWORK_NAME cut to an interface name
  netlink::IfAddr gateway_address;
  std::array<uint8_t, 6> bridge_mac{};
  unsigned mtu = 1500;
};
DefaultNetworkPlan make_default_plan(const std::string& network_name, Ipv4Cidr subnet,
                                     Ipv4Addr gateway);
ApplyResult apply_default_network(const DefaultNetworkPlan& plan);

}  // namespace kohaku::runner
