#include "runner/overlay/uplink.h"

#include <algorithm>
#include <stdexcept>

#include "common/netlink/link.h"

namespace kohaku::runner {

namespace nl = kohaku::netlink;

std::optional<nl::RouteInfo> choose_uplink_route(const std::vector<nl::RouteInfo>& routes,
                                                 Ipv4Addr host,
                                                 const std::vector<std::string>& ignore) {
  const nl::RouteInfo* best = nullptr;
  auto usable = [&](const nl::RouteInfo& r) {
    return !r.dev.empty() && std::find(ignore.begin(), ignore.end(), r.dev) == ignore.end();
  };
  // The default route first: that is where traffic to "anywhere" leaves.
  for (const auto& r : routes) {
    if (r.dst.prefix != 0 || !usable(r)) continue;
    if (!best || r.metric < best->metric) best = &r;
  }
  if (best) return *best;
  for (const auto& r : routes) {
    if (!r.dst.contains(host) || !usable(r)) continue;
    if (!best || r.dst.prefix > best->dst.prefix ||
        (r.dst.prefix == best->dst.prefix && r.metric < best->metric))
      best = &r;
  }
  if (best) return *best;
  return std::nullopt;
}

std::optional<Ipv4Addr> choose_uplink_address(const nl::RouteInfo& route,
                                              const std::vector<nl::IfAddr>& addresses,
                                              std::optional<Ipv4Addr> preferred) {
  if (addresses.empty()) return std::nullopt;
  auto holds = [&](Ipv4Addr a) {
    return std::any_of(addresses.begin(), addresses.end(),
                       [&](const nl::IfAddr& x) { return x.addr == a; });
  };
  if (route.src && holds(*route.src)) return route.src;
  if (route.gateway) {
    for (const auto& a : addresses) {
      Ipv4Cidr net{Ipv4Addr{a.addr.value & Ipv4Cidr::mask_for(a.prefix)}, a.prefix};
      if (net.contains(*route.gateway)) return a.addr;
    }
  }
  if (preferred && holds(*preferred)) return preferred;
  return addresses.front().addr;
}

Uplink find_uplink(Ipv4Addr host, std::optional<Ipv4Addr> preferred,
                   const std::vector<std::string>& ignore) {
  auto route = choose_uplink_route(nl::list_routes(), host, ignore);
  if (!route)
    throw std::runtime_error("no uplink: neither a default route nor a route to the host " +
                             host.to_string());
  auto addresses = nl::list_addresses(route->dev);
  auto addr = choose_uplink_address(*route, addresses, preferred);
  if (!addr) throw std::runtime_error("uplink " + route->dev + " has no IPv4 address");
  Uplink u;
  u.dev = route->dev;
  u.ifindex = route->oif ? route->oif : nl::get_link(route->dev).ifindex;
  u.addr = *addr;
  u.why = route->dst.prefix == 0 ? "default route" : "route to " + host.to_string();
  return u;
}

}  // namespace kohaku::runner
