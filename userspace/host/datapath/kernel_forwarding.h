#pragma once
// The kernel datapath (OVERLAY_DATAPATH = "kernel", KohakuRiver's path): IP forwarding on and
// FORWARD accept rules for the overlay CIDR, so the kernel routes between vxkr devices even
// where the FORWARD policy is DROP (Docker hosts). Rules carry the comment "kohaku-overlay", which
// is how they are found again (also when the overlay CIDR changed between runs) and removed when
// the host switches to the BPF datapath.
//
#include <string>
#include <vector>

#include "common/iptables_rules.h"
#include "common/ipv4.h"

namespace kohaku {

inline constexpr const char* kForwardRuleComment = "kohaku-overlay";

class KernelForwarding {
 public:
  explicit KernelForwarding(std::string iptables = "iptables");

  // "-s CIDR" and "-d CIDR" ACCEPT rules present as rules 1 and 2 of FORWARD (inserted, or
  // moved back there), our rules for any other CIDR removed, then ip_forward on. Throws
  // std::runtime_error naming the command, its exit status and its stderr.
  void install(const Ipv4Cidr& overlay);
  // Removes every FORWARD rule carrying our comment; returns how many were removed (0 without an
  // iptables binary). Leaves ip_forward alone: other software on the host may depend on it.
  size_t remove_all();
  // Our rules as `iptables -S FORWARD` prints them.
  std::vector<std::string> rules();

 private:
  CommentedIptablesRules rules_;
};

}  // namespace kohaku
