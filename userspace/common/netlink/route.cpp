#include "common/netlink/route.h"

#include <net/if.h>
#include <netlink/route/nexthop.h>
#include <netlink/route/route.h>
#include <sys/socket.h>

#include <cerrno>
#include <new>
#include <stdexcept>

#include "common/log.h"
#include "common/netlink/link.h"

namespace kohaku::netlink {
namespace {

constexpr std::string_view kLog = "netlink";

RoutePtr build(const NlSocket& sock, const RouteSpec& r, const std::string& what) {
  if (!r.gateway && r.dev.empty()) {
    throw std::invalid_argument("route " + r.dst.to_string() + ": needs a gateway or a device");
  }
  RoutePtr route(rtnl_route_alloc());
  if (!route) throw std::bad_alloc();
  rtnl_route_set_family(route.get(), AF_INET);
  AddrPtr dst = make_nl_addr(r.dst.addr, r.dst.prefix);
  sock.check(rtnl_route_set_dst(route.get(), dst.get()), what);
  rtnl_route_set_table(route.get(), r.table);
  rtnl_route_set_protocol(route.get(), RTPROT_STATIC);
  rtnl_route_set_type(route.get(), RTN_UNICAST);
  rtnl_route_set_scope(route.get(), r.gateway ? RT_SCOPE_UNIVERSE : RT_SCOPE_LINK);
  rtnl_route_set_priority(route.get(), r.metric);
  if (r.src) {
    AddrPtr src = make_nl_addr(*r.src);
    sock.check(rtnl_route_set_pref_src(route.get(), src.get()), what);
  }
  rtnl_nexthop* nh = rtnl_route_nh_alloc();
  if (nh == nullptr) throw std::bad_alloc();
  if (r.gateway) {
    AddrPtr gw = make_nl_addr(*r.gateway);
    rtnl_route_nh_set_gateway(nh, gw.get());
  }
  if (!r.dev.empty()) {
    LinkPtr link = fetch_link(sock, r.dev);
    if (!link) {
      rtnl_route_nh_free(nh);
      throw NetlinkError(what, "device " + r.dev + ": No such device", NLE_OBJ_NOTFOUND, ENODEV);
    }
    rtnl_route_nh_set_ifindex(nh, rtnl_link_get_ifindex(link.get()));
  }
  rtnl_route_add_nexthop(route.get(), nh);  // the route owns nh from here
  return route;
}

std::vector<RouteInfo> list_on(const NlSocket& sock, uint32_t table) {
  nl_cache* raw = nullptr;
  sock.check(rtnl_route_alloc_cache(sock.get(), AF_INET, 0, &raw), "list routes");
  CachePtr cache(raw);
  CachePtr links = link_cache(sock, "list routes");
  std::vector<RouteInfo> out;
  for (rtnl_route* route : objects_of<rtnl_route>(cache.get())) {
    if (rtnl_route_get_table(route) != table || rtnl_route_get_type(route) != RTN_UNICAST ||
        rtnl_route_get_nnexthops(route) != 1) {
      continue;
    }
    RouteInfo info;
    nl_addr* dst = rtnl_route_get_dst(route);
    info.dst.prefix = static_cast<uint8_t>(dst ? nl_addr_get_prefixlen(dst) : 0);
    info.dst.addr = to_ipv4(dst).value_or(Ipv4Addr{});
    info.table = table;
    info.metric = rtnl_route_get_priority(route);
    info.src = to_ipv4(rtnl_route_get_pref_src(route));
    info.protocol = rtnl_route_get_protocol(route);
    info.scope = rtnl_route_get_scope(route);
    rtnl_nexthop* nh = rtnl_route_nexthop_n(route, 0);
    info.gateway = to_ipv4(rtnl_route_nh_get_gateway(nh));
    info.oif = rtnl_route_nh_get_ifindex(nh);
    char name[IFNAMSIZ] = {};
    if (info.oif > 0 && rtnl_link_i2name(links.get(), info.oif, name, sizeof name) != nullptr) {
      info.dev = name;
    }
    out.push_back(std::move(info));
  }
  return out;
}

std::optional<RouteInfo> find_on(const NlSocket& sock, const Ipv4Cidr& dst, uint32_t table,
                                 uint32_t metric) {
  for (RouteInfo& r : list_on(sock, table)) {
    if (r.dst == dst && r.metric == metric) return std::move(r);
  }
  return std::nullopt;
}

}  // namespace

std::string to_string(const RouteSpec& r) {
  std::string s = r.dst.prefix == 0 ? std::string("default") : r.dst.to_string();
  if (r.gateway) s += " via " + r.gateway->to_string();
  if (!r.dev.empty()) s += " dev " + r.dev;
  if (r.src) s += " src " + r.src->to_string();
  if (r.table != RT_TABLE_MAIN) s += " table " + std::to_string(r.table);
  if (r.metric != 0) s += " metric " + std::to_string(r.metric);
  return s;
}

void add_route(const RouteSpec& r) {
  std::string what = "add route " + to_string(r);
  NlSocket sock;
  RoutePtr route = build(sock, r, what);
  sock.check(rtnl_route_add(sock.get(), route.get(), NLM_F_EXCL), what);
}

void replace_route(const RouteSpec& r) {
  std::string what = "replace route " + to_string(r);
  NlSocket sock;
  RoutePtr route = build(sock, r, what);
  sock.check(rtnl_route_add(sock.get(), route.get(), NLM_F_REPLACE), what);
}

void delete_route(const RouteSpec& r) {
  std::string what = "delete route " + to_string(r);
  NlSocket sock;
  RoutePtr route = build(sock, r, what);
  // Match routes whoever added them (iproute2 uses "boot", the kernel "kernel").
  rtnl_route_set_protocol(route.get(), RTPROT_UNSPEC);
  sock.check(rtnl_route_delete(sock.get(), route.get(), 0), what);
}

std::vector<RouteInfo> list_routes(uint32_t table) {
  NlSocket sock;
  return list_on(sock, table);
}

std::optional<RouteInfo> find_route(const Ipv4Cidr& dst, uint32_t table, uint32_t metric) {
  NlSocket sock;
  return find_on(sock, dst, table, metric);
}

EnsureAction ensure_route(const RouteSpec& r) {
  std::string what = "ensure route " + to_string(r);
  NlSocket sock;
  RoutePtr route = build(sock, r, what);  // validates input and resolves dev first
  auto have = find_on(sock, r.dst, r.table, r.metric);
  if (!have) {
    // REPLACE, not EXCL: a route of another type (blackhole, multipath) under the same key is
    // invisible to find_on but must give way too.
    sock.check(rtnl_route_add(sock.get(), route.get(), NLM_F_REPLACE), what);
    log::info(kLog, "added route " + to_string(r));
    return EnsureAction::kCreated;
  }
  std::string drift;
  auto add = [&drift](const std::string& d) { drift += (drift.empty() ? "" : ", ") + d; };
  auto str = [](const std::optional<Ipv4Addr>& a) { return a ? a->to_string() : "none"; };
  if (have->gateway != r.gateway) add("gateway " + str(have->gateway) + " -> " + str(r.gateway));
  if (!r.dev.empty() && have->dev != r.dev) {
    add("dev " + (have->dev.empty() ? "none" : have->dev) + " -> " + r.dev);
  }
  if (r.src && have->src != r.src) add("src " + str(have->src) + " -> " + str(r.src));
  if (drift.empty()) return EnsureAction::kKept;
  sock.check(rtnl_route_add(sock.get(), route.get(), NLM_F_REPLACE), what);
  log::warn(kLog, "repaired route " + r.dst.to_string() + ": " + drift);
  return EnsureAction::kRepaired;
}

}  // namespace kohaku::netlink
