#pragma once
// Owning handles for libnl3 objects (each released with its own put/free function), and
// conversions between kohaku's IPv4 types and libnl's nl_addr.
#include <netlink/addr.h>
#include <netlink/cache.h>
#include <netlink/route/addr.h>
#include <netlink/route/link.h>
#include <netlink/route/neighbour.h>
#include <netlink/route/route.h>

#include <memory>
#include <optional>

#include "common/ipv4.h"

namespace kohaku::netlink {

struct LinkDeleter {
  void operator()(rtnl_link* p) const { rtnl_link_put(p); }
};
struct CacheDeleter {
  void operator()(nl_cache* p) const { nl_cache_free(p); }
};
struct AddrDeleter {
  void operator()(nl_addr* p) const { nl_addr_put(p); }
};
struct RtAddrDeleter {
  void operator()(rtnl_addr* p) const { rtnl_addr_put(p); }
};
struct RouteDeleter {
  void operator()(rtnl_route* p) const { rtnl_route_put(p); }
};
struct NeighDeleter {
  void operator()(rtnl_neigh* p) const { rtnl_neigh_put(p); }
};

using LinkPtr = std::unique_ptr<rtnl_link, LinkDeleter>;
using CachePtr = std::unique_ptr<nl_cache, CacheDeleter>;
using AddrPtr = std::unique_ptr<nl_addr, AddrDeleter>;
using RtAddrPtr = std::unique_ptr<rtnl_addr, RtAddrDeleter>;
using RoutePtr = std::unique_ptr<rtnl_route, RouteDeleter>;
using NeighPtr = std::unique_ptr<rtnl_neigh, NeighDeleter>;

// AF_INET nl_addr holding `addr` with the given prefix length (32 for a host address).
AddrPtr make_nl_addr(Ipv4Addr addr, unsigned prefix = 32);
// The IPv4 address held by `a`; nullopt for null, other families or the all-zero address.
std::optional<Ipv4Addr> to_ipv4(const nl_addr* a);

}  // namespace kohaku::netlink
