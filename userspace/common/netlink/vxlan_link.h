#pragma once
// Point-to-point VXLAN links: create, read back, list, and "ensure" (keep / repair / recreate).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "common/netlink/ensure.h"
#include "common/netlink/link.h"

namespace kohaku::netlink {

struct VxlanSpec {
  std::string name;
  uint32_t vni = 0;               // 0..16777215
  std::optional<Ipv4Addr> local;  // source address of the tunnel; none = kernel picks
  Ipv4Addr remote;                // unicast peer (no multicast group, no FDB entries needed)
  // No remote at all: destinations come from FDB entries (head-end replication, see fdb.h).
  // `remote` must then stay unspecified.
  bool fdb_only = false;
  uint16_t port = 4789;  // UDP destination port
  unsigned mtu = 1450;
  std::optional<MacAddr> mac;  // none = kernel picks a random one
  bool learning = false;       // false = "nolearning"
  std::string underlay_dev;    // optional: bind the tunnel to this physical device
  bool up = true;
  // false: net.ipv6.conf.<name>.disable_ipv6 = 1, set while a new device is still down, so it
  // never gets IPv6 addresses or routes. Besides the traffic, each IPv6-enabled device that comes
  // up costs the kernel a walk of the whole IPv6 FIB and a route insertion next to every other
  // device's (fib6_ifup, fib6_add_rt2node): O(devices) per device, which a host with thousands of
  // IPv4-only tunnels pays quadratically. A kernel without IPv6 has nothing to switch off.
  bool ipv6 = true;
};

struct VxlanInfo {
  LinkInfo link;
  uint32_t vni = 0;
  std::optional<Ipv4Addr> local;
  std::optional<Ipv4Addr> remote;
  uint16_t port = 0;
  bool learning = false;
  int underlay_ifindex = 0;  // 0 = not bound to a device
};

// Throws std::invalid_argument for a bad name, VNI > 2^24-1, port 0, MTU outside 68..65535 or a
// multicast/unspecified/loopback remote.
void validate_vxlan_spec(const VxlanSpec& spec);

void create_vxlan(const VxlanSpec& spec);  // errors: "create vxlan NAME (VNI n, remote r): ..."
std::optional<VxlanInfo> find_vxlan(std::string_view name);  // nullopt: missing or not vxlan
std::vector<VxlanInfo> list_vxlans(std::string_view name_prefix = {});

// Keeps a matching device; changes MTU/up state in place; recreates it when VNI, local, remote,
// port, learning, underlay device or link kind differ (the kernel cannot change those). Every
// repair is logged with what differed. A recreated device starts bare: ensure its address and
// bridge membership after this call.
EnsureAction ensure_vxlan(const VxlanSpec& spec);
// The same, given the device as list_vxlans() just reported it: when that matches the spec the
// answer costs no netlink request (periodic checks of thousands of tunnels list them once);
// otherwise it is ensure_vxlan(spec).
EnsureAction ensure_vxlan(const VxlanSpec& spec, const VxlanInfo& seen);

}  // namespace kohaku::netlink
