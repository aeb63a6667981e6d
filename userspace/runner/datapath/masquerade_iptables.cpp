#include "runner/datapath/masquerade_iptables.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "common/log.h"

namespace kohaku::runner {
namespace {

constexpr const char* kLog = "kernel-path";

struct Rule {
  std::string table, chain;
  std::vector<std::string> spec;  // after "-A CHAIN", exactly as `iptables -S` prints it
};

void add_rules(std::vector<Rule>& out, const Ipv4Cidr& net, bool masquerade) {
  const std::string cidr = net.to_string();
  const std::vector<std::string> comment{"-m", "comment", "--comment", kRunnerRuleComment};
  auto with = [&](std::vector<std::string> head, std::vector<std::string> tail) {
    head.insert(head.end(), comment.begin(), comment.end());
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  out.push_back({"filter", "FORWARD", with({"-s", cidr}, {"-j", "ACCEPT"})});
  out.push_back({"filter", "FORWARD", with({"-d", cidr}, {"-j", "ACCEPT"})});
  if (masquerade)
    out.push_back(
        {"nat", "POSTROUTING", with({"-s", cidr, "!", "-d", cidr}, {"-j", "MASQUERADE"})});
}

std::vector<Rule> rules_for(const Ipv4Cidr& overlay, const std::vector<IptablesNetwork>& named) {
  std::vector<Rule> out;
  add_rules(out, overlay, true);
  for (const auto& n : named) add_rules(out, n.subnet, n.outbound_nat);
  return out;
}

bool has_our_comment(const std::vector<std::string>& w) {
  for (size_t i = 0; i + 1 < w.size(); ++i)
    if (w[i] == "--comment" && w[i + 1] == kRunnerRuleComment) return true;
  return false;
}

}  // namespace

MasqueradeIptables::Result MasqueradeIptables::run(const std::vector<std::string>& args) {
  std::vector<std::string> argv{iptables_, "-w"};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn_program(argv);
}

MasqueradeIptables::Result MasqueradeIptables::run_checked(const std::vector<std::string>& args) {
  Result r = run(args);
  if (r.status != 0) {
    std::vector<std::string> argv{iptables_, "-w"};
    argv.insert(argv.end(), args.begin(), args.end());
    throw std::runtime_error("'" + join_args(argv) + "' failed with status " +
                             std::to_string(r.status) + ": " + trim_trailing(r.err));
  }
  return r;
}

std::vector<std::string> MasqueradeIptables::chain_rules(const std::string& table,
                                                         const std::string& chain) {
  std::vector<std::string> ours;
  std::istringstream in(run_checked({"-t", table, "-S", chain}).out);
  for (std::string line; std::getline(in, line);)
    if (has_our_comment(split_words(line))) ours.push_back(line);
  return ours;
}

std::vector<std::string> MasqueradeIptables::rules() {
  auto out = chain_rules("filter", "FORWARD");
  auto nat = chain_rules("nat", "POSTROUTING");
  out.insert(out.end(), nat.begin(), nat.end());
  return out;
}

void MasqueradeIptables::install(const Ipv4Cidr& overlay,
                                 const std::vector<IptablesNetwork>& named) {
  const auto wanted = rules_for(overlay, named);
  for (const auto& rule : wanted) {
    std::vector<std::string> check{"-t", rule.table, "-C", rule.chain};
    check.insert(check.end(), rule.spec.begin(), rule.spec.end());
    Result r = run(check);
    if (r.status == 0) continue;
    if (r.status != 1) run_checked(check);  // 1: no such rule; anything else is a real error
    std::vector<std::string> add{"-t", rule.table, "-A", rule.chain};
    add.insert(add.end(), rule.spec.begin(), rule.spec.end());
    run_checked(add);
    log::info(kLog, "added " + rule.table + " " + rule.chain + " rule: " + join_args(rule.spec));
  }
  // Rules for an earlier overlay CIDR, a network that left or one whose NAT was turned off go.
  for (const auto& [table, chain] :
       {std::pair<std::string, std::string>{"filter", "FORWARD"}, {"nat", "POSTROUTING"}}) {
    for (const auto& line : chain_rules(table, chain)) {
      auto w = split_words(line);
      if (w.size() < 2 || w[0] != "-A") continue;
      // A named copy: clang before 16 cannot capture a structured binding.
      const std::string& this_table = table;
      bool current = std::any_of(wanted.begin(), wanted.end(), [&](const Rule& r) {
        return r.table == this_table && w.size() == r.spec.size() + 2 &&
               std::equal(r.spec.begin(), r.spec.end(), w.begin() + 2);
      });
      if (current) continue;
      w[0] = "-D";
      w.insert(w.begin(), {"-t", table});
      run_checked(w);
      log::info(kLog, "removed stale " + table + " rule: " + line);
    }
  }
}

size_t MasqueradeIptables::remove_all() {
  // No iptables at all is normal on a BPF-only runner: then there is nothing of ours to remove.
  if (run({"--version"}).status == 127) return 0;
  size_t removed = 0;
  for (const auto& [table, chain] :
       {std::pair<std::string, std::string>{"filter", "FORWARD"}, {"nat", "POSTROUTING"}}) {
    for (const auto& line : chain_rules(table, chain)) {
      auto w = split_words(line);
      if (w.size() < 2 || w[0] != "-A") continue;
      w[0] = "-D";
      w.insert(w.begin(), {"-t", table});
      run_checked(w);
      log::info(kLog, "removed " + table + " rule: " + line);
      ++removed;
    }
  }
  return removed;
}

}  // namespace kohaku::runner
