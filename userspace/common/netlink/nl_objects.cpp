#include "common/netlink/nl_objects.h"

#include <sys/socket.h>

#include <cstring>
#include <new>

namespace kohaku::netlink {

AddrPtr make_nl_addr(Ipv4Addr addr, unsigned prefix) {
  uint32_t be = addr.network_order();
  AddrPtr a(nl_addr_build(AF_INET, &be, sizeof be));
  if (!a) throw std::bad_alloc();
  nl_addr_set_prefixlen(a.get(), static_cast<int>(prefix));
  return a;
}

std::optional<Ipv4Addr> to_ipv4(const nl_addr* a) {
  if (a == nullptr || nl_addr_get_family(a) != AF_INET || nl_addr_get_len(a) != 4) {
    return std::nullopt;
  }
  uint32_t be = 0;
  std::memcpy(&be, nl_addr_get_binary_addr(a), 4);
  if (be == 0) return std::nullopt;
  return Ipv4Addr::from_network_order(be);
}

}  // namespace kohaku::netlink
