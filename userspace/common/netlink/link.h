#pragma once
// Generic link operations on the calling thread's network namespace: lookup, list, state, MTU,
// master, rename, move to another namespace, delete. Each call uses its own netlink socket.
#include <sys/types.h>

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/ipv4.h"
#include "common/netlink/nl_objects.h"
#include "common/netlink/nl_socket.h"

namespace kohaku::netlink {

// An Ethernet address.
struct MacAddr {
  std::array<uint8_t, 6> bytes{};

  // Locally administered unicast address 0a:6b:<a.b.c.d>: a stable MAC derived from an IPv4
  // address the device owns, so a device that is recreated keeps the address its neighbours
  // have cached (a new random MAC would black-hole traffic until their ARP entries expire).
  static MacAddr stable_for(Ipv4Addr owner);
  std::string to_string() const;
  auto operator<=>(const MacAddr&) const = default;
};

struct LinkInfo {
  std::string name;
  int ifindex = 0;
  std::string kind;  // IFLA_INFO_KIND ("vxlan", "bridge", "veth"...); empty for e.g. loopback
  unsigned mtu = 0;
  bool admin_up = false;  // IFF_UP
  bool lower_up = false;  // IFF_LOWER_UP: carrier
  int master_ifindex = 0;
  // IFLA_LINK: for a veth, its peer's ifindex in the peer's namespace (so from inside a
  // container, its host-side veth); 0 when none.
  int link_ifindex = 0;
  MacAddr mac;
};

// Throws std::invalid_argument unless `name` is a usable interface name (1..15 bytes, no '/',
// ':' or whitespace, not "." or "..").
void validate_link_name(std::string_view name);

std::optional<LinkInfo> find_link(std::string_view name);
LinkInfo get_link(std::string_view name);  // throws NetlinkError "look up link X: No such device"
bool link_exists(std::string_view name);
// Links whose name starts with `name_prefix` and, when `kind` is not empty, of that kind.
std::vector<LinkInfo> list_links(std::string_view name_prefix = {}, std::string_view kind = {});

void set_link_up(std::string_view name, bool up = true);
void set_link_mtu(std::string_view name, unsigned mtu);
void set_link_mac(std::string_view name, const MacAddr& mac);
// Enslaves `name` to `master` (a bridge); clear_link_master releases it.
void set_link_master(std::string_view name, std::string_view master);
void clear_link_master(std::string_view name);
void rename_link(std::string_view name, std::string_view new_name);
// Moves the link into the namespace `netns_fd` refers to, renamed there when new_name is given.
void move_link_to_netns(std::string_view name, int netns_fd, std::string_view new_name = {});

void delete_link(std::string_view name);  // throws when missing
bool delete_link_if_exists(std::string_view name);

// Building blocks for the typed link modules.
LinkPtr fetch_link(const NlSocket& sock, std::string_view name);        // null when missing
CachePtr link_cache(const NlSocket& sock, std::string_view operation);  // every link
LinkInfo describe_link(rtnl_link* link);
// Applies `changes` (only the attributes set on it) to `orig`; throws with `operation`.
void change_link(const NlSocket& sock, rtnl_link* orig, rtnl_link* changes,
                 std::string_view operation);
LinkPtr alloc_link();
AddrPtr make_mac_addr(const MacAddr& mac);

}  // namespace kohaku::netlink
