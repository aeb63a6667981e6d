#include "common/netlink/neighbour.h"

#include <linux/neighbour.h>
#include <sys/socket.h>

#include <new>
#include <string>

#include "common/netlink/nl_objects.h"
#include "common/netlink/nl_socket.h"

namespace kohaku::netlink {

std::vector<NeighbourEntry> list_neighbours() {
  NlSocket sock;
  nl_cache* raw = nullptr;
  sock.check(rtnl_neigh_alloc_cache(sock.get(), &raw), "list neighbour entries");
  CachePtr cache(raw);
  std::vector<NeighbourEntry> out;
  for (rtnl_neigh* n : objects_of<rtnl_neigh>(cache.get())) {
    if (rtnl_neigh_get_family(n) != AF_INET) continue;
    auto addr = to_ipv4(rtnl_neigh_get_dst(n));
    if (!addr) continue;
    NeighbourEntry e{rtnl_neigh_get_ifindex(n), *addr, {}, rtnl_neigh_get_state(n)};
    if (nl_addr* l = rtnl_neigh_get_lladdr(n); l != nullptr && nl_addr_get_len(l) == 6) {
      const auto* b = static_cast<const uint8_t*>(nl_addr_get_binary_addr(l));
      std::copy(b, b + 6, e.mac.bytes.begin());
    }
    out.push_back(e);
  }
  return out;
}

void revalidate_neighbour(int ifindex, Ipv4Addr addr) {
  NlSocket sock;
  NeighPtr n(rtnl_neigh_alloc());
  if (!n) throw std::bad_alloc();
  rtnl_neigh_set_ifindex(n.get(), ifindex);
  rtnl_neigh_set_dst(n.get(), make_nl_addr(addr).get());
  rtnl_neigh_set_family(n.get(), AF_INET);
  rtnl_neigh_set_flags(n.get(), NTF_USE);
  sock.check(rtnl_neigh_add(sock.get(), n.get(), NLM_F_REPLACE),
             "revalidate neighbour " + addr.to_string() + " on ifindex " + std::to_string(ifindex));
}

}  // namespace kohaku::netlink
