#pragma once
// The runner's uplink: the interface that carries its route to the outside, and the IPv4
// address masqueraded traffic leaves with. The default route's device (lowest metric) when there
// is one; without a default route, the device of the most specific route to the host (the only
// "outside" such a runner has). Read from the routing table on every heartbeat, so a changed
// default route or uplink address is followed.
#include <optional>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "common/netlink/address.h"
#include "common/netlink/route.h"

namespace kohaku::runner {

struct Uplink {
  std::string dev;
  int ifindex = 0;
  Ipv4Addr addr;
  std::string why;  // "default route" / "route to 192.168.1.10"

  bool operator==(const Uplink& o) const {
    return dev == o.dev && ifindex == o.ifindex && addr == o.addr;
  }
};

// Pure choice over a routing table snapshot (unit-testable). `ignore` lists devices that can
// never be the uplink (the overlay bridge). nullopt when no route leads outside.
std::optional<netlink::RouteInfo> choose_uplink_route(const std::vector<netlink::RouteInfo>& routes,
                                                      Ipv4Addr host,
                                                      const std::vector<std::string>& ignore);

// The address the kernel's MASQUERADE would pick on the device: the route's preferred source
// when the device holds it, else an address whose network contains the gateway, else
// `preferred` (the runner's physical address) when the device holds it, else the first one.
std::optional<Ipv4Addr> choose_uplink_address(const netlink::RouteInfo& route,
                                              const std::vector<netlink::IfAddr>& addresses,
                                              std::optional<Ipv4Addr> preferred);

// Both from the kernel's current state. Throws std::runtime_error saying what is missing.
Uplink find_uplink(Ipv4Addr host, std::optional<Ipv4Addr> preferred,
                   const std::vector<std::string>& ignore);

}  // namespace kohaku::runner
