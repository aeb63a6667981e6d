#pragma once
// IPv4 unicast routes in the calling thread's network namespace.
#include <linux/rtnetlink.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "common/netlink/ensure.h"

namespace kohaku::netlink {

struct RouteSpec {
  Ipv4Cidr dst;                     // 0.0.0.0/0 for the default route
  std::optional<Ipv4Addr> gateway;  // none = directly connected through `dev`
  std::string dev;                  // required without a gateway; optional with one
  uint32_t table = RT_TABLE_MAIN;
  uint32_t metric = 0;
  std::optional<Ipv4Addr> src;  // preferred source address
};

struct RouteInfo {
  Ipv4Cidr dst;
  std::optional<Ipv4Addr> gateway;
  int oif = 0;
  std::string dev;
  uint32_t table = 0;
  uint32_t metric = 0;
  std::optional<Ipv4Addr> src;
  uint8_t protocol = 0;
  uint8_t scope = 0;
};

std::string to_string(const RouteSpec& r);  // "10.128.0.0/12 via 10.129.0.254 dev eth0 metric 0"

void add_route(const RouteSpec& r);      // fails when a route with that key exists
void replace_route(const RouteSpec& r);  // creates or overwrites the route with that key
void delete_route(const RouteSpec& r);
// Unicast IPv4 routes of `table` (with a single next hop).
std::vector<RouteInfo> list_routes(uint32_t table = RT_TABLE_MAIN);
std::optional<RouteInfo> find_route(const Ipv4Cidr& dst, uint32_t table = RT_TABLE_MAIN,
                                    uint32_t metric = 0);
// Same key (dst, table, metric): kept when gateway/dev/src match, else replaced (logged).
EnsureAction ensure_route(const RouteSpec& r);

}  // namespace kohaku::netlink
