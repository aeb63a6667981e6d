#include "common/iptables_rules.h"

#include <algorithm>
#include <sstream>

#include "common/log.h"

namespace kohaku {

CommentedIptablesRules::CommentedIptablesRules(std::string comment, IptablesChains chains,
                                               std::string log_tag, std::string iptables)
    : comment_(std::move(comment)),
      chains_(std::move(chains)),
      log_tag_(std::move(log_tag)),
      iptables_(std::move(iptables)) {}

std::vector<std::string> CommentedIptablesRules::comment_match() const {
  return {"-m", "comment", "--comment", comment_};
}

ProgramResult CommentedIptablesRules::run(const std::vector<std::string>& args) {
  std::vector<std::string> argv{iptables_, "-w"};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn_program(argv);
}

ProgramResult CommentedIptablesRules::run_checked(const std::vector<std::string>& args) {
  ProgramResult r = run(args);
  if (r.status != 0) {
    std::vector<std::string> argv{iptables_, "-w"};
    argv.insert(argv.end(), args.begin(), args.end());
    if (r.status == 127)
      throw IptablesMissing("'" + join_args(argv) + "' could not be run: " + trim_trailing(r.err));
    throw std::runtime_error("'" + join_args(argv) + "' failed with status " +
                             std::to_string(r.status) + ": " + trim_trailing(r.err));
  }
  return r;
}

bool CommentedIptablesRules::is_ours(const std::vector<std::string>& w) const {
  for (size_t i = 0; i + 1 < w.size(); ++i)
    if (w[i] == "--comment" && w[i + 1] == comment_) return true;
  return false;
}

std::vector<std::string> CommentedIptablesRules::chain_rules(const std::string& table,
                                                             const std::string& chain) {
  std::vector<std::string> ours;
  std::istringstream in(run_checked({"-t", table, "-S", chain}).out);
  for (std::string line; std::getline(in, line);)
    if (is_ours(split_words(line))) ours.push_back(line);
  return ours;
}

std::vector<std::string> CommentedIptablesRules::rules() {
  std::vector<std::string> out;
  for (const auto& chain : chains_) {
    auto some = chain_rules(chain.first, chain.second);
    out.insert(out.end(), some.begin(), some.end());
  }
  return out;
}

int CommentedIptablesRules::position_of(const IptablesRule& rule) {
  // `-S CHAIN` prints the policy (or -N for a user chain) first, then rule 1, 2, ...
  std::istringstream in(run_checked({"-t", rule.table, "-S", rule.chain}).out);
  int number = 0;
  for (std::string line; std::getline(in, line);) {
    auto w = split_words(line);
    if (w.size() < 2 || w[0] != "-A") continue;
    ++number;
    if (w.size() == rule.spec.size() + 2 &&
        std::equal(rule.spec.begin(), rule.spec.end(), w.begin() + 2))
      return number;
  }
  return 0;
}

void CommentedIptablesRules::ensure_at_position(const IptablesRule& rule) {
  int now = position_of(rule);
  if (now == rule.position) return;
  if (now != 0) {
    // Something was inserted above it since (or it was appended by an older version): take it
    // out and put it back where a REJECT further down cannot shadow it.
    std::vector<std::string> del{"-t", rule.table, "-D", rule.chain};
    del.insert(del.end(), rule.spec.begin(), rule.spec.end());
    run_checked(del);
  }
  std::vector<std::string> insert{"-t", rule.table, "-I", rule.chain,
                                  std::to_string(rule.position)};
  insert.insert(insert.end(), rule.spec.begin(), rule.spec.end());
  run_checked(insert);
  log::info(log_tag_, std::string(now == 0 ? "inserted " : "moved back to the top ") + rule.table +
                          " " + rule.chain + " rule " + std::to_string(rule.position) + ": " +
                          join_args(rule.spec));
}

void CommentedIptablesRules::ensure(const std::vector<IptablesRule>& wanted) {
  for (const auto& rule : wanted) {
    if (rule.position > 0) {
      ensure_at_position(rule);
      continue;
    }
    std::vector<std::string> check{"-t", rule.table, "-C", rule.chain};
    check.insert(check.end(), rule.spec.begin(), rule.spec.end());
    ProgramResult r = run(check);
    if (r.status == 0) continue;
    if (r.status != 1) run_checked(check);  // 1: no such rule; anything else is a real error
    std::vector<std::string> add{"-t", rule.table, "-A", rule.chain};
    add.insert(add.end(), rule.spec.begin(), rule.spec.end());
    run_checked(add);
    log::info(log_tag_,
              "added " + rule.table + " " + rule.chain + " rule: " + join_args(rule.spec));
  }
  for (const auto& chain : chains_) {
    for (const auto& line : chain_rules(chain.first, chain.second)) {
      auto w = split_words(line);
      if (w.size() < 2 || w[0] != "-A") continue;
      bool current = std::any_of(wanted.begin(), wanted.end(), [&](const IptablesRule& r) {
        return r.table == chain.first && w.size() == r.spec.size() + 2 &&
               std::equal(r.spec.begin(), r.spec.end(), w.begin() + 2);
      });
      if (current) continue;
      w[0] = "-D";
      w.insert(w.begin(), {"-t", chain.first});
      run_checked(w);
      log::info(log_tag_, "removed stale " + chain.first + " rule: " + line);
    }
  }
}

size_t CommentedIptablesRules::remove_all() {
  size_t removed = 0;
  for (const auto& chain : chains_) {
    for (const auto& line : chain_rules(chain.first, chain.second)) {
      auto w = split_words(line);
      if (w.size() < 2 || w[0] != "-A") continue;
      w[0] = "-D";
      w.insert(w.begin(), {"-t", chain.first});
      run_checked(w);
      log::info(log_tag_, "removed " + chain.first + " rule: " + line);
      ++removed;
    }
  }
  return removed;
}

}  // namespace kohaku
