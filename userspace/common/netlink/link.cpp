#include "common/netlink/link.h"

#include <net/if.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <new>
#include <stdexcept>

namespace kohaku::netlink {
namespace {

// IFF_LOWER_UP lives in <linux/if.h>, which cannot be included next to <net/if.h>.
constexpr unsigned kIffLowerUp = 0x10000;

std::string op(std::string_view verb, std::string_view name) {
  std::string s(verb);
  s.append(" ").append(name);
  return s;
}

LinkPtr require_link(const NlSocket& sock, std::string_view name, std::string_view operation) {
  LinkPtr link = fetch_link(sock, name);
  if (!link) throw NetlinkError(std::string(operation), "No such device", NLE_OBJ_NOTFOUND, ENODEV);
  return link;
}

}  // namespace

MacAddr MacAddr::stable_for(Ipv4Addr owner) {
  uint32_t v = owner.value;
  return MacAddr{{0x0a, 0x6b, static_cast<uint8_t>(v >> 24), static_cast<uint8_t>(v >> 16),
                  static_cast<uint8_t>(v >> 8), static_cast<uint8_t>(v)}};
}

std::string MacAddr::to_string() const {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", bytes[0], bytes[1], bytes[2],
                bytes[3], bytes[4], bytes[5]);
  return buf;
}

AddrPtr make_mac_addr(const MacAddr& mac) {
  AddrPtr a(nl_addr_build(AF_LLC, mac.bytes.data(), mac.bytes.size()));
  if (!a) throw std::bad_alloc();
  return a;
}

void validate_link_name(std::string_view name) {
  bool bad = name.empty() || name.size() >= IFNAMSIZ || name == "." || name == "..";
  for (char c : name) {
    if (c == '/' || c == ':' || c == ' ' || c == '\t' || c == '\n' || c == '\0') bad = true;
  }
  if (bad) {
    throw std::invalid_argument("invalid interface name '" + std::string(name) +
                                "': want 1-15 characters without '/', ':' or spaces");
  }
}

LinkPtr alloc_link() {
  LinkPtr link(rtnl_link_alloc());
  if (!link) throw std::bad_alloc();
  return link;
}

LinkPtr fetch_link(const NlSocket& sock, std::string_view name) {
  validate_link_name(name);
  rtnl_link* raw = nullptr;
  std::string n(name);
  int rc = rtnl_link_get_kernel(sock.get(), 0, n.c_str(), &raw);
  if (rc == -NLE_OBJ_NOTFOUND || rc == -NLE_NODEV) {
    sock.clear_error();
    return nullptr;
  }
  sock.check(rc, op("look up link", name));
  return LinkPtr(raw);
}

CachePtr link_cache(const NlSocket& sock, std::string_view operation) {
  nl_cache* raw = nullptr;
  sock.check(rtnl_link_alloc_cache(sock.get(), AF_UNSPEC, &raw), operation);
  return CachePtr(raw);
}

LinkInfo describe_link(rtnl_link* link) {
  LinkInfo info;
  if (const char* n = rtnl_link_get_name(link)) info.name = n;
  info.ifindex = rtnl_link_get_ifindex(link);
  if (const char* k = rtnl_link_get_type(link)) info.kind = k;
  info.mtu = rtnl_link_get_mtu(link);
  unsigned flags = rtnl_link_get_flags(link);
  info.admin_up = (flags & IFF_UP) != 0;
  info.lower_up = (flags & kIffLowerUp) != 0;
  info.master_ifindex = rtnl_link_get_master(link);
  info.link_ifindex = rtnl_link_get_link(link);
  if (nl_addr* a = rtnl_link_get_addr(link); a != nullptr && nl_addr_get_len(a) == 6) {
    const auto* b = static_cast<const uint8_t*>(nl_addr_get_binary_addr(a));
    std::copy(b, b + 6, info.mac.bytes.begin());
  }
  return info;
}

void change_link(const NlSocket& sock, rtnl_link* orig, rtnl_link* changes,
                 std::string_view operation) {
  sock.check(rtnl_link_change(sock.get(), orig, changes, 0), operation);
}

std::optional<LinkInfo> find_link(std::string_view name) {
  NlSocket sock;
  LinkPtr link = fetch_link(sock, name);
  if (!link) return std::nullopt;
  return describe_link(link.get());
}

LinkInfo get_link(std::string_view name) {
  NlSocket sock;
  return describe_link(require_link(sock, name, op("look up link", name)).get());
}

bool link_exists(std::string_view name) {
  return find_link(name).has_value();
}

std::vector<LinkInfo> list_links(std::string_view name_prefix, std::string_view kind) {
  NlSocket sock;
  CachePtr cache = link_cache(sock, "list links");
  std::vector<LinkInfo> out;
  for (rtnl_link* link : objects_of<rtnl_link>(cache.get())) {
    LinkInfo info = describe_link(link);
    if (!info.name.starts_with(name_prefix)) continue;
    if (!kind.empty() && info.kind != kind) continue;
    out.push_back(std::move(info));
  }
  return out;
}

void set_link_up(std::string_view name, bool up) {
  std::string what = op(up ? "set up link" : "set down link", name);
  NlSocket sock;
  LinkPtr link = require_link(sock, name, what);
  LinkPtr changes = alloc_link();
  if (up) {
    rtnl_link_set_flags(changes.get(), IFF_UP);
  } else {
    rtnl_link_unset_flags(changes.get(), IFF_UP);
  }
  change_link(sock, link.get(), changes.get(), what);
}

void set_link_mtu(std::string_view name, unsigned mtu) {
  std::string what = op("set MTU " + std::to_string(mtu) + " on link", name);
  NlSocket sock;
  LinkPtr link = require_link(sock, name, what);
  LinkPtr changes = alloc_link();
  rtnl_link_set_mtu(changes.get(), mtu);
  change_link(sock, link.get(), changes.get(), what);
}

void set_link_mac(std::string_view name, const MacAddr& mac) {
  std::string what = op("set MAC " + mac.to_string() + " on link", name);
  NlSocket sock;
  LinkPtr link = require_link(sock, name, what);
  LinkPtr changes = alloc_link();
  rtnl_link_set_addr(changes.get(), make_mac_addr(mac).get());
  change_link(sock, link.get(), changes.get(), what);
}

void set_link_master(std::string_view name, std::string_view master) {
  std::string what = op("enslave link", name) + " to " + std::string(master);
  NlSocket sock;
  LinkPtr link = require_link(sock, name, what);
  LinkPtr m = require_link(sock, master, what);
  LinkPtr changes = alloc_link();
  rtnl_link_set_master(changes.get(), rtnl_link_get_ifindex(m.get()));
  change_link(sock, link.get(), changes.get(), what);
}

void clear_link_master(std::string_view name) {
  std::string what = op("release link", name) + " from its master";
  NlSocket sock;
  LinkPtr link = require_link(sock, name, what);
  LinkPtr changes = alloc_link();
  rtnl_link_set_master(changes.get(), 0);
  change_link(sock, link.get(), changes.get(), what);
}

void rename_link(std::string_view name, std::string_view new_name) {
  validate_link_name(new_name);
  std::string what = op("rename link", name) + " to " + std::string(new_name);
  NlSocket sock;
  LinkPtr link = require_link(sock, name, what);
  LinkPtr changes = alloc_link();
  rtnl_link_set_name(changes.get(), std::string(new_name).c_str());
  change_link(sock, link.get(), changes.get(), what);
}

void move_link_to_netns(std::string_view name, int netns_fd, std::string_view new_name) {
  if (!new_name.empty()) validate_link_name(new_name);
  std::string what = op("move link", name) + " to another network namespace";
  if (!new_name.empty()) what += " as " + std::string(new_name);
  NlSocket sock;
  LinkPtr link = require_link(sock, name, what);
  LinkPtr changes = alloc_link();
  rtnl_link_set_ns_fd(changes.get(), netns_fd);
  // The kernel renames as part of the move, so a name taken here but free there still works.
  if (!new_name.empty()) rtnl_link_set_name(changes.get(), std::string(new_name).c_str());
  change_link(sock, link.get(), changes.get(), what);
}

void delete_link(std::string_view name) {
  validate_link_name(name);
  NlSocket sock;
  LinkPtr link = alloc_link();
  rtnl_link_set_name(link.get(), std::string(name).c_str());
  sock.check(rtnl_link_delete(sock.get(), link.get()), op("delete link", name));
}

bool delete_link_if_exists(std::string_view name) {
  try {
    delete_link(name);
    return true;
  } catch (const NetlinkError& e) {
    if (e.sys_errno() == ENODEV || e.nl_error() == NLE_OBJ_NOTFOUND) return false;
    throw;
  }
}

}  // namespace kohaku::netlink
