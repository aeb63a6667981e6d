#pragma once
// veth pairs, optionally with the peer created directly inside another network namespace.
#include <sys/types.h>

#include <optional>
#include <string>

namespace kohaku::netlink {

struct VethSpec {
  std::string name;       // end that stays in the calling thread's namespace
  std::string peer_name;  // name of the peer (inside its namespace)
  // Where the peer lives; at most one. The fd is borrowed (e.g. Netns::fd()).
  std::optional<int> peer_netns_fd;
  std::optional<pid_t> peer_netns_pid;
  unsigned mtu = 0;  // 0 = kernel default, else both ends
  bool up = true;    // this end; the peer is configured where it lives
};

// One RTM_NEWLINK creates both ends, so the peer never appears in this namespace and its name
// only needs to be free in the target one.
void create_veth(const VethSpec& spec);

}  // namespace kohaku::netlink
