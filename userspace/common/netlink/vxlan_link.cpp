#include "common/netlink/vxlan_link.h"

#include <net/if.h>
#include <netlink/route/link/vxlan.h>

#include <filesystem>
#include <stdexcept>

#include "common/log.h"
#include "common/netlink/sysctl.h"

namespace kohaku::netlink {
namespace {

constexpr std::string_view kLog = "netlink";

std::string describe(const VxlanSpec& s) {
  std::string d = s.name + " (VNI " + std::to_string(s.vni) + ", remote " +
                  (s.fdb_only ? std::string("from FDB") : s.remote.to_string());
  if (s.local) d += ", local " + s.local->to_string();
  d += ", port " + std::to_string(s.port);
  if (!s.underlay_dev.empty()) d += ", dev " + s.underlay_dev;
  return d + ")";
}

std::string opt_to_string(const std::optional<Ipv4Addr>& a) {
  return a ? a->to_string() : std::string("none");
}

VxlanInfo read_vxlan(rtnl_link* link) {
  VxlanInfo v;
  v.link = describe_link(link);
  uint32_t u = 0;
  if (rtnl_link_vxlan_get_id(link, &u) == 0) v.vni = u;
  nl_addr* a = nullptr;
  if (rtnl_link_vxlan_get_local(link, &a) == 0) {
    v.local = to_ipv4(a);
    nl_addr_put(a);
  }
  a = nullptr;
  if (rtnl_link_vxlan_get_group(link, &a) == 0) {
    v.remote = to_ipv4(a);
    nl_addr_put(a);
  }
  if (rtnl_link_vxlan_get_port(link, &u) == 0) v.port = static_cast<uint16_t>(u);
  int learning = rtnl_link_vxlan_get_learning(link);
  v.learning = learning > 0;
  if (rtnl_link_vxlan_get_link(link, &u) == 0) v.underlay_ifindex = static_cast<int>(u);
  return v;
}

// What differs between the device and the spec in attributes that need a new device.
std::string identity_drift(const VxlanInfo& have, const VxlanSpec& want, int want_underlay) {
  std::string d;
  auto add = [&d](const std::string& what) { d += (d.empty() ? "" : ", ") + what; };
  if (have.vni != want.vni) {
    add("VNI " + std::to_string(have.vni) + " -> " + std::to_string(want.vni));
  }
  const auto want_remote = want.fdb_only ? std::nullopt : std::optional<Ipv4Addr>(want.remote);
  if (have.remote != want_remote) {
    add("remote " + opt_to_string(have.remote) + " -> " + opt_to_string(want_remote));
  }
  if (have.local != want.local) {
    add("local " + opt_to_string(have.local) + " -> " + opt_to_string(want.local));
  }
  if (have.port != want.port) {
    add("port " + std::to_string(have.port) + " -> " + std::to_string(want.port));
  }
  if (have.learning != want.learning) {
    add(std::string("learning ") + (have.learning ? "on" : "off") + " -> " +
        (want.learning ? "on" : "off"));
  }
  if (have.underlay_ifindex != want_underlay) {
    add("underlay ifindex " + std::to_string(have.underlay_ifindex) + " -> " +
        std::to_string(want_underlay));
  }
  return d;
}

// IPv6 off on the device (VxlanSpec::ipv6); true when the setting changed.
bool disable_ipv6(const std::string& dev) {
  const std::string path = "net/ipv6/conf/" + dev + "/disable_ipv6";
  try {
    return ensure_sysctl(path, "1");
  } catch (const std::exception&) {
    if (std::filesystem::exists("/proc/sys/net/ipv6")) throw;
    return false;
  }
}

}  // namespace

void validate_vxlan_spec(const VxlanSpec& spec) {
  validate_link_name(spec.name);
  auto bad = [&spec](const std::string& why) {
    throw std::invalid_argument("invalid vxlan spec for " + spec.name + ": " + why);
  };
  if (spec.vni > VXLAN_ID_MAX) bad("VNI " + std::to_string(spec.vni) + " exceeds 16777215");
  if (spec.port == 0) bad("UDP port 0");
  if (spec.mtu < 68 || spec.mtu > 65535) bad("MTU " + std::to_string(spec.mtu));
  uint32_t r = spec.remote.value;
  if (spec.fdb_only) {
    if (r != 0) bad("remote " + spec.remote.to_string() + " given for an FDB-only device");
  } else if (r == 0 || (r >> 28) == 0xe || spec.remote.is_loopback() || r == 0xffffffffu) {
    bad("remote " + spec.remote.to_string() + " is not a unicast address");
  }
  if (spec.local && (spec.local->is_unspecified() || (spec.local->value >> 28) == 0xe)) {
    bad("local " + spec.local->to_string() + " is not a unicast address");
  }
  if (!spec.underlay_dev.empty()) validate_link_name(spec.underlay_dev);
}

void create_vxlan(const VxlanSpec& spec) {
  validate_vxlan_spec(spec);
  std::string what = "create vxlan " + describe(spec);
  NlSocket sock;
  LinkPtr link(rtnl_link_vxlan_alloc());
  if (!link) throw std::bad_alloc();
  rtnl_link_set_name(link.get(), spec.name.c_str());
  rtnl_link_set_mtu(link.get(), spec.mtu);
  // Without IPv6 the device comes up only after the sysctl is set (see VxlanSpec::ipv6).
  bool up_now = spec.up && spec.ipv6;
  if (up_now) rtnl_link_set_flags(link.get(), IFF_UP);
  if (spec.mac) rtnl_link_set_addr(link.get(), make_mac_addr(*spec.mac).get());
  sock.check(rtnl_link_vxlan_set_id(link.get(), spec.vni), what);
  if (!spec.fdb_only) {
    AddrPtr remote = make_nl_addr(spec.remote);
    sock.check(rtnl_link_vxlan_set_group(link.get(), remote.get()), what);
  }
  if (spec.local) {
    AddrPtr local = make_nl_addr(*spec.local);
    sock.check(rtnl_link_vxlan_set_local(link.get(), local.get()), what);
  }
  sock.check(rtnl_link_vxlan_set_port(link.get(), spec.port), what);
  sock.check(rtnl_link_vxlan_set_learning(link.get(), spec.learning ? 1 : 0), what);
  if (!spec.underlay_dev.empty()) {
    LinkPtr under = fetch_link(sock, spec.underlay_dev);
    if (!under) {
      throw NetlinkError(what, "underlay device " + spec.underlay_dev + " does not exist",
                         NLE_OBJ_NOTFOUND, ENODEV);
    }
    sock.check(rtnl_link_vxlan_set_link(link.get(), rtnl_link_get_ifindex(under.get())), what);
  }
  sock.check(rtnl_link_add(sock.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL), what);
  if (!spec.ipv6) {
    disable_ipv6(spec.name);
    if (spec.up) {
      LinkPtr created = fetch_link(sock, spec.name);
      if (!created)
        throw NetlinkError(what, "device vanished right after its creation", NLE_OBJ_NOTFOUND,
                           ENODEV);
      LinkPtr changes = alloc_link();
      rtnl_link_set_flags(changes.get(), IFF_UP);
      change_link(sock, created.get(), changes.get(), "bring up vxlan " + spec.name);
    }
  }
}

std::optional<VxlanInfo> find_vxlan(std::string_view name) {
  NlSocket sock;
  LinkPtr link = fetch_link(sock, name);
  if (!link || !rtnl_link_is_vxlan(link.get())) return std::nullopt;
  return read_vxlan(link.get());
}

std::vector<VxlanInfo> list_vxlans(std::string_view name_prefix) {
  NlSocket sock;
  CachePtr cache = link_cache(sock, "list vxlan links");
  std::vector<VxlanInfo> out;
  for (rtnl_link* link : objects_of<rtnl_link>(cache.get())) {
    const char* name = rtnl_link_get_name(link);
    if (name == nullptr || !std::string_view(name).starts_with(name_prefix)) continue;
    if (!rtnl_link_is_vxlan(link)) continue;
    out.push_back(read_vxlan(link));
  }
  return out;
}

EnsureAction ensure_vxlan(const VxlanSpec& spec) {
  validate_vxlan_spec(spec);
  NlSocket sock;
  LinkPtr link = fetch_link(sock, spec.name);
  if (!link) {
    create_vxlan(spec);
    log::info(kLog, "created vxlan " + describe(spec));
    return EnsureAction::kCreated;
  }
  int want_underlay = 0;
  if (!spec.underlay_dev.empty()) {
    LinkPtr under = fetch_link(sock, spec.underlay_dev);
    if (!under) {
      throw NetlinkError("ensure vxlan " + describe(spec),
                         "underlay device " + spec.underlay_dev + " does not exist",
                         NLE_OBJ_NOTFOUND, ENODEV);
    }
    want_underlay = rtnl_link_get_ifindex(under.get());
  }
  std::string drift;
  if (!rtnl_link_is_vxlan(link.get())) {
    const char* kind = rtnl_link_get_type(link.get());
    drift = std::string("kind ") + (kind ? kind : "none") + " -> vxlan";
  } else {
    drift = identity_drift(read_vxlan(link.get()), spec, want_underlay);
  }
  if (!drift.empty()) {
    log::warn(kLog, "recreating vxlan " + spec.name + ": " + drift);
    delete_link_if_exists(spec.name);
    create_vxlan(spec);
    return EnsureAction::kRecreated;
  }
  // A device from before IPv6 was switched off (or switched on by hand) loses it now.
  if (!spec.ipv6) disable_ipv6(spec.name);
  LinkInfo have = describe_link(link.get());
  LinkPtr changes = alloc_link();
  std::string repaired;
  if (have.mtu != spec.mtu) {
    rtnl_link_set_mtu(changes.get(), spec.mtu);
    repaired = "MTU " + std::to_string(have.mtu) + " -> " + std::to_string(spec.mtu);
  }
  if (spec.mac && have.mac != *spec.mac) {
    rtnl_link_set_addr(changes.get(), make_mac_addr(*spec.mac).get());
    repaired += std::string(repaired.empty() ? "" : ", ") + "MAC " + have.mac.to_string() + " -> " +
                spec.mac->to_string();
  }
  if (have.admin_up != spec.up) {
    if (spec.up) {
      rtnl_link_set_flags(changes.get(), IFF_UP);
    } else {
      rtnl_link_unset_flags(changes.get(), IFF_UP);
    }
    repaired += std::string(repaired.empty() ? "" : ", ") + (spec.up ? "down -> up" : "up -> down");
  }
  if (repaired.empty()) return EnsureAction::kKept;
  change_link(sock, link.get(), changes.get(), "repair vxlan " + spec.name + " (" + repaired + ")");
  log::warn(kLog, "repaired vxlan " + spec.name + ": " + repaired);
  return EnsureAction::kRepaired;
}

EnsureAction ensure_vxlan(const VxlanSpec& spec, const VxlanInfo& seen) {
  validate_vxlan_spec(spec);
  bool matches = seen.link.name == spec.name && seen.link.kind == "vxlan" &&
                 spec.underlay_dev.empty() && identity_drift(seen, spec, 0).empty() &&
                 seen.link.mtu == spec.mtu && (!spec.mac || seen.link.mac == *spec.mac) &&
                 seen.link.admin_up == spec.up;
  if (!matches) return ensure_vxlan(spec);
  if (!spec.ipv6) disable_ipv6(spec.name);
  return EnsureAction::kKept;
}

}  // namespace kohaku::netlink
