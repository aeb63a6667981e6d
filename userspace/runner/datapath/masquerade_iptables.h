#pragma once
// The runner's kernel datapath (OVERLAY_DATAPATH = "kernel", KohakuRiver's rules) in the runner's
// network namespace, for the overlay CIDR and for each named L2 network's subnet:
//   filter FORWARD     -s CIDR -j ACCEPT, -d CIDR -j ACCEPT
//   nat    POSTROUTING -s CIDR ! -d CIDR -j MASQUERADE   (named networks: only with outbound NAT)
// Isolation between networks is the BPF datapath's alone: these accepts do not separate them.
// Each rule carries the comment "kohaku-runner" (not the host's "kohaku-overlay": a machine that
// is host and runner at once must not have one daemon remove the other's rules), which is how
// they are found again, also when the overlay CIDR changed, and removed when the runner switches
// to the BPF datapath or the overlay is disabled.
// The iptables mechanics (-C before -A, pruning by comment) are common/iptables_rules.h.
#include <string>
#include <vector>

#include "common/iptables_rules.h"
#include "common/ipv4.h"

namespace kohaku::runner {

inline constexpr const char* kRunnerRuleComment = "kohaku-runner";

// A named L2 network as the kernel datapath sees it.
struct IptablesNetwork {
  Ipv4Cidr subnet;
  bool outbound_nat = true;
  bool operator==(const IptablesNetwork&) const = default;
};

class MasqueradeIptables {
 public:
  explicit MasqueradeIptables(std::string iptables = "iptables");

  // Our three rules for `overlay` and those of each named network present (-C before -A:
  // idempotent), any other rule of ours (an earlier CIDR, a network that left, NAT turned off)
  // removed. Throws std::runtime_error naming the command, its exit status and its stderr.
  void install(const Ipv4Cidr& overlay, const std::vector<IptablesNetwork>& named = {});
  // Removes every rule carrying our comment from both tables; returns how many (0 when there is
  // no iptables binary at all).
  size_t remove_all();
  // Our rules as `iptables -t TABLE -S CHAIN` prints them, FORWARD first.
  std::vector<std::string> rules();

 private:
  CommentedIptablesRules rules_;
};

}  // namespace kohaku::runner
