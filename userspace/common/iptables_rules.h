#pragma once
// The rules one kohaku daemon owns in iptables, found again by their `-m comment --comment
// OWNER`: made present (-C before -A, so idempotent; or inserted at a fixed position, -I CHAIN N,
// and moved back there when something was inserted above it), pruned to the wanted set (a rule
// of an earlier overlay CIDR or of a network that left goes), listed and removed. The kernel
// datapaths of the host (host/datapath/kernel_forwarding.h) and the runner
// (runner/datapath/masquerade_iptables.h) both use it.
//
// The rules are changed with the iptables binary (fork/exec with an argv, no shell): there is no
// library interface to the nf_tables-backed iptables this distribution ships.
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/spawn_program.h"

namespace kohaku {

// The iptables binary cannot be run at all (not installed): there can be no rules of ours.
class IptablesMissing : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct IptablesRule {
  std::string table, chain;
  std::vector<std::string> spec;  // after "-A CHAIN", exactly as `iptables -S` prints it
  // 0: appended (-A) where absent. N >= 1: the chain's rule number N (-I CHAIN N), so a DROP or
  // REJECT rule of someone else further down cannot shadow it; the wanted rules with positions
  // are listed in increasing position order.
  int position = 0;
};

// `table`/`chain` pairs, e.g. {"filter", "FORWARD"}.
using IptablesChains = std::vector<std::pair<std::string, std::string>>;

class CommentedIptablesRules {
 public:
  // `log_tag` names the daemon part in the log lines of added and removed rules.
  CommentedIptablesRules(std::string comment, IptablesChains chains, std::string log_tag,
                         std::string iptables = "iptables");

  // `-m comment --comment OWNER`, to put into a rule's spec.
  std::vector<std::string> comment_match() const;

  // Every rule of `wanted` present, then every other rule of ours in our chains removed.
  // Throws IptablesMissing when there is no binary, std::runtime_error naming the command, its
  // exit status and its stderr for any other failure.
  void ensure(const std::vector<IptablesRule>& wanted);
  // Removes every rule of ours; returns how many. IptablesMissing without a binary.
  size_t remove_all();
  // Ours as `iptables -t TABLE -S CHAIN` prints them, chains in the order given.
  std::vector<std::string> rules();

 private:
  ProgramResult run(const std::vector<std::string>& args);
  ProgramResult run_checked(const std::vector<std::string>& args);
  std::vector<std::string> chain_rules(const std::string& table, const std::string& chain);
  // Rule number (1-based, as -I counts) of `rule` in its chain; 0 when absent.
  int position_of(const IptablesRule& rule);
  void ensure_at_position(const IptablesRule& rule);
  bool is_ours(const std::vector<std::string>& words) const;

  std::string comment_;
  IptablesChains chains_;
  std::string log_tag_;
  std::string iptables_;
};

}  // namespace kohaku
