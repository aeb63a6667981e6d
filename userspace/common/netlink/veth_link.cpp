#include "common/netlink/veth_link.h"

#include <net/if.h>
#include <netlink/route/link/veth.h>

#include <new>
#include <stdexcept>

#include "common/netlink/link.h"

namespace kohaku::netlink {

void create_veth(const VethSpec& spec) {
  validate_link_name(spec.name);
  validate_link_name(spec.peer_name);
  if (spec.peer_netns_fd && spec.peer_netns_pid) {
    throw std::invalid_argument("veth " + spec.name + ": give the peer namespace by fd or pid");
  }
  std::string what = "create veth " + spec.name + " peer " + spec.peer_name;
  if (spec.peer_netns_fd) what += " (peer in netns fd " + std::to_string(*spec.peer_netns_fd) + ")";
  if (spec.peer_netns_pid)
    what += " (peer in netns of pid " + std::to_string(*spec.peer_netns_pid) + ")";
  NlSocket sock;
  LinkPtr link(rtnl_link_veth_alloc());
  if (!link) throw std::bad_alloc();
  // get_peer takes a reference; LinkPtr drops it.
  LinkPtr peer(rtnl_link_veth_get_peer(link.get()));
  rtnl_link_set_name(link.get(), spec.name.c_str());
  rtnl_link_set_name(peer.get(), spec.peer_name.c_str());
  if (spec.mtu != 0) {
    rtnl_link_set_mtu(link.get(), spec.mtu);
    rtnl_link_set_mtu(peer.get(), spec.mtu);
  }
  if (spec.up) rtnl_link_set_flags(link.get(), IFF_UP);
  if (spec.peer_netns_fd) rtnl_link_set_ns_fd(peer.get(), *spec.peer_netns_fd);
  if (spec.peer_netns_pid) rtnl_link_set_ns_pid(peer.get(), *spec.peer_netns_pid);
  sock.check(rtnl_link_add(sock.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL), what);
}

}  // namespace kohaku::netlink
