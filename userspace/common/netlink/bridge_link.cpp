#include "common/netlink/bridge_link.h"

#include <net/if.h>
#include <netlink/route/link/bridge.h>

#include <cerrno>
#include <new>

#include "common/log.h"
#include "common/netlink/link.h"

namespace kohaku::netlink {
namespace {

constexpr std::string_view kLog = "netlink";

}  // namespace

void create_bridge(std::string_view name, unsigned mtu, bool up, std::optional<MacAddr> mac) {
  validate_link_name(name);
  std::string what = "create bridge " + std::string(name);
  if (mtu != 0) what += " (MTU " + std::to_string(mtu) + ")";
  NlSocket sock;
  LinkPtr link(rtnl_link_bridge_alloc());
  if (!link) throw std::bad_alloc();
  rtnl_link_set_name(link.get(), std::string(name).c_str());
  if (mtu != 0) rtnl_link_set_mtu(link.get(), mtu);
  if (up) rtnl_link_set_flags(link.get(), IFF_UP);
  if (mac) rtnl_link_set_addr(link.get(), make_mac_addr(*mac).get());
  sock.check(rtnl_link_add(sock.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL), what);
}

EnsureAction ensure_bridge(std::string_view name, unsigned mtu, bool up,
                           std::optional<MacAddr> mac) {
  validate_link_name(name);
  std::string n(name);
  NlSocket sock;
  LinkPtr link = fetch_link(sock, name);
  if (!link) {
    create_bridge(name, mtu, up, mac);
    log::info(kLog, "created bridge " + n + (mtu ? " MTU " + std::to_string(mtu) : ""));
    return EnsureAction::kCreated;
  }
  LinkInfo have = describe_link(link.get());
  if (have.kind != "bridge") {
    log::warn(kLog, "recreating bridge " + n + ": kind " +
                        (have.kind.empty() ? "none" : have.kind) + " -> bridge");
    delete_link(name);
    create_bridge(name, mtu, up, mac);
    return EnsureAction::kRecreated;
  }
  LinkPtr changes = alloc_link();
  std::string repaired;
  if (mtu != 0 && have.mtu != mtu) {
    rtnl_link_set_mtu(changes.get(), mtu);
    repaired = "MTU " + std::to_string(have.mtu) + " -> " + std::to_string(mtu);
  }
  if (mac && have.mac != *mac) {
    rtnl_link_set_addr(changes.get(), make_mac_addr(*mac).get());
    repaired += std::string(repaired.empty() ? "" : ", ") + "MAC " + have.mac.to_string() + " -> " +
                mac->to_string();
  }
  if (have.admin_up != up) {
    if (up) {
      rtnl_link_set_flags(changes.get(), IFF_UP);
    } else {
      rtnl_link_unset_flags(changes.get(), IFF_UP);
    }
    repaired += std::string(repaired.empty() ? "" : ", ") + (up ? "down -> up" : "up -> down");
  }
  if (repaired.empty()) return EnsureAction::kKept;
  change_link(sock, link.get(), changes.get(), "repair bridge " + n + " (" + repaired + ")");
  log::warn(kLog, "repaired bridge " + n + ": " + repaired);
  return EnsureAction::kRepaired;
}

EnsureAction ensure_bridge_port(std::string_view bridge, std::string_view port) {
  std::string what = "enslave link " + std::string(port) + " to bridge " + std::string(bridge);
  NlSocket sock;
  LinkPtr br = fetch_link(sock, bridge);
  LinkPtr p = fetch_link(sock, port);
  if (!br || !p) {
    throw NetlinkError(what, std::string(!br ? bridge : port) + ": No such device",
                       NLE_OBJ_NOTFOUND, ENODEV);
  }
  if (describe_link(br.get()).kind != "bridge") {
    throw NetlinkError(what, std::string(bridge) + " is not a bridge", NLE_INVAL, EINVAL);
  }
  int br_index = rtnl_link_get_ifindex(br.get());
  int current = rtnl_link_get_master(p.get());
  if (current == br_index) return EnsureAction::kKept;
  LinkPtr changes = alloc_link();
  rtnl_link_set_master(changes.get(), br_index);
  change_link(sock, p.get(), changes.get(), what);
  if (current != 0) {
    log::warn(kLog, "moved " + std::string(port) + " from master ifindex " +
                        std::to_string(current) + " to bridge " + std::string(bridge));
    return EnsureAction::kRepaired;
  }
  return EnsureAction::kCreated;
}

std::vector<std::string> bridge_ports(std::string_view bridge) {
  NlSocket sock;
  LinkPtr br = fetch_link(sock, bridge);
  if (!br) {
    throw NetlinkError("list ports of bridge " + std::string(bridge), "No such device",
                       NLE_OBJ_NOTFOUND, ENODEV);
  }
  int index = rtnl_link_get_ifindex(br.get());
  CachePtr cache = link_cache(sock, "list ports of bridge " + std::string(bridge));
  std::vector<std::string> out;
  for (rtnl_link* link : objects_of<rtnl_link>(cache.get())) {
    if (rtnl_link_get_master(link) == index) out.emplace_back(rtnl_link_get_name(link));
  }
  return out;
}

}  // namespace kohaku::netlink
