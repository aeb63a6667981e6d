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

// A libnl object's release function as a unique_ptr deleter.
template <typename T, void (*Release)(T*)>
struct Released {
  void operator()(T* p) const { Release(p); }
};

using LinkPtr = std::unique_ptr<rtnl_link, Released<rtnl_link, rtnl_link_put>>;
using CachePtr = std::unique_ptr<nl_cache, Released<nl_cache, nl_cache_free>>;
using AddrPtr = std::unique_ptr<nl_addr, Released<nl_addr, nl_addr_put>>;
using RtAddrPtr = std::unique_ptr<rtnl_addr, Released<rtnl_addr, rtnl_addr_put>>;
using RoutePtr = std::unique_ptr<rtnl_route, Released<rtnl_route, rtnl_route_put>>;
using NeighPtr = std::unique_ptr<rtnl_neigh, Released<rtnl_neigh, rtnl_neigh_put>>;

// The objects of a libnl cache as the type it holds, for a range-for that may break or return:
//   for (rtnl_link* link : objects_of<rtnl_link>(cache.get())) ...
template <typename T>
class CacheObjects {
 public:
  class iterator {
   public:
    explicit iterator(nl_object* o) : o_(o) {}
    T* operator*() const { return reinterpret_cast<T*>(o_); }
    iterator& operator++() {
      o_ = nl_cache_get_next(o_);
      return *this;
    }
    bool operator!=(const iterator& other) const { return o_ != other.o_; }

   private:
    nl_object* o_;
  };

  explicit CacheObjects(nl_cache* cache) : cache_(cache) {}
  iterator begin() const { return iterator(nl_cache_get_first(cache_)); }
  iterator end() const { return iterator(nullptr); }

 private:
  nl_cache* cache_;
};

template <typename T>
CacheObjects<T> objects_of(nl_cache* cache) {
  return CacheObjects<T>(cache);
}

// AF_INET nl_addr holding `addr` with the given prefix length (32 for a host address).
AddrPtr make_nl_addr(Ipv4Addr addr, unsigned prefix = 32);
// The IPv4 address held by `a`; nullopt for null, other families or the all-zero address.
std::optional<Ipv4Addr> to_ipv4(const nl_addr* a);

}  // namespace kohaku::netlink
