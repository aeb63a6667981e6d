#include "common/netlink/fdb.h"

#include <linux/neighbour.h>
#include <netlink/route/neighbour.h>
#include <sys/socket.h>

#include <algorithm>
#include <memory>

#include "common/log.h"
#include "common/netlink/link.h"

namespace kohaku::netlink {
namespace {

constexpr std::string_view kLog = "netlink";

std::string what(std::string_view verb, std::string_view dev, Ipv4Addr dst) {
  return std::string(verb) + " FDB entry 00:00:00:00:00:00 dev " + std::string(dev) + " dst " +
         dst.to_string();
}

int require_ifindex(const NlSocket& sock, std::string_view dev, const std::string& operation) {
  LinkPtr link = fetch_link(sock, dev);
  if (!link) throw NetlinkError(operation, "No such device", NLE_OBJ_NOTFOUND, ENODEV);
  return rtnl_link_get_ifindex(link.get());
}

NeighPtr flood_entry(int ifindex, Ipv4Addr dst) {
  NeighPtr n(rtnl_neigh_alloc());
  if (!n) throw std::bad_alloc();
  rtnl_neigh_set_ifindex(n.get(), ifindex);
  // libnl silently drops a dst whose family differs from a family already set: dst first.
  rtnl_neigh_set_dst(n.get(), make_nl_addr(dst).get());
  rtnl_neigh_set_family(n.get(), AF_BRIDGE);
  // NTF_SELF: the entry belongs to the vxlan device's own table, not its master bridge's.
  rtnl_neigh_set_flags(n.get(), NTF_SELF);
  rtnl_neigh_set_state(n.get(), NUD_PERMANENT | NUD_NOARP);
  MacAddr zero{};
  rtnl_neigh_set_lladdr(n.get(), make_mac_addr(zero).get());
  return n;
}

bool is_zero_mac(nl_addr* a) {
  if (a == nullptr || nl_addr_get_len(a) != 6) return false;
  const auto* b = static_cast<const uint8_t*>(nl_addr_get_binary_addr(a));
  return std::all_of(b, b + 6, [](uint8_t x) { return x == 0; });
}

}  // namespace

std::vector<Ipv4Addr> list_flood_destinations(std::string_view dev) {
  const std::string operation = "list FDB entries of " + std::string(dev);
  NlSocket sock;
  int ifindex = require_ifindex(sock, dev, operation);
  nl_cache* raw = nullptr;
  // AF_ITER dumps every family the neighbour cache knows, AF_BRIDGE (the FDB) among them.
  sock.check(rtnl_neigh_alloc_cache_flags(sock.get(), &raw, NL_CACHE_AF_ITER), operation);
  CachePtr cache(raw);
  std::vector<Ipv4Addr> out;
  for (rtnl_neigh* n : objects_of<rtnl_neigh>(cache.get())) {
    if (rtnl_neigh_get_family(n) != AF_BRIDGE || rtnl_neigh_get_ifindex(n) != ifindex ||
        !is_zero_mac(rtnl_neigh_get_lladdr(n)))
      continue;
    if (auto dst = to_ipv4(rtnl_neigh_get_dst(n))) out.push_back(*dst);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

void add_flood_destination(std::string_view dev, Ipv4Addr dst) {
  const std::string operation = what("add", dev, dst);
  NlSocket sock;
  NeighPtr n = flood_entry(require_ifindex(sock, dev, operation), dst);
  // APPEND: several all-zero entries with different destinations coexist (plain CREATE would
  // replace the one there).
  sock.check(rtnl_neigh_add(sock.get(), n.get(), NLM_F_CREATE | NLM_F_APPEND), operation);
}

bool delete_flood_destination(std::string_view dev, Ipv4Addr dst) {
  const std::string operation = what("delete", dev, dst);
  // The kernel answers success for a missing destination while other ones exist: look first.
  auto have = list_flood_destinations(dev);
  if (std::find(have.begin(), have.end(), dst) == have.end()) return false;
  NlSocket sock;
  NeighPtr n = flood_entry(require_ifindex(sock, dev, operation), dst);
  int rc = rtnl_neigh_delete(sock.get(), n.get(), 0);
  if (rc == -NLE_OBJ_NOTFOUND || sock.last_errno() == ENOENT) {
    sock.clear_error();
    return false;
  }
  sock.check(rc, operation);
  return true;
}

FloodDestinationChanges ensure_flood_destinations(std::string_view dev,
                                                  const std::set<Ipv4Addr>& want) {
  FloodDestinationChanges c;
  auto have_list = list_flood_destinations(dev);
  std::set<Ipv4Addr> have(have_list.begin(), have_list.end());
  for (auto dst : want) {
    if (have.count(dst)) continue;
    add_flood_destination(dev, dst);
    c.added.push_back(dst);
  }
  for (auto dst : have) {
    if (want.count(dst)) continue;
    delete_flood_destination(dev, dst);
    c.removed.push_back(dst);
  }
  if (c.changed()) {
    std::string msg = "FDB of " + std::string(dev) + ":";
    for (auto a : c.added) msg += " +" + a.to_string();
    for (auto r : c.removed) msg += " -" + r.to_string();
    log::info(kLog, msg);
  }
  return c;
}

}  // namespace kohaku::netlink
