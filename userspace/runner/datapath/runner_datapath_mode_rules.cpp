// RunnerDatapathMode's deny rules (BPF datapath only): the map and STATE_DIR/deny-rules.json kept
// in step. Apart from runner_datapath_mode.cpp so the datapath choice reads on its own.
#include <algorithm>

#include "common/domain_error.h"
#include "common/log.h"
#include "runner/bpf/runner_datapath.h"
#include "runner/datapath/deny_rule_json.h"
#include "runner/datapath/runner_datapath_mode.h"

namespace kohaku::runner {

using nlohmann::json;

namespace {

constexpr const char* kLog = "datapath";

}  // namespace

RunnerDatapath& RunnerDatapathMode::bpf_for_rules() const {
  if (!active_)
    throw DomainError(ErrorKind::kUnavailable,
                      "the datapath is not chosen yet: the overlay is not up");
  if (*active_ != Datapath::kBpf || !bpf_)
    throw DomainError(ErrorKind::kConflict,
                      "deny rules need the BPF datapath; the active datapath is " +
                          std::string(datapath_name(*active_)));
  return *bpf_;
}

void RunnerDatapathMode::restore_deny_rules() {
  // Never fatal: the datapath works without the operator's rules, and the error says why.
  try {
    auto stored = rule_store_.load();
    std::vector<DenyRule> in_map;
    for (const auto& r : bpf_->deny_rules()) in_map.push_back(r.rule);
    if (!stored) {
      // First start with a rules file (or an older runner's pins): the map is what we have.
      rule_store_.save(in_map);
      return;
    }
    size_t added = 0, removed = 0;
    for (const auto& r : *stored) added += bpf_->add_deny_rule(r) ? 1 : 0;
    for (const auto& r : in_map)
      if (std::find(stored->begin(), stored->end(), r) == stored->end())
        removed += bpf_->remove_deny_rule(r) ? 1 : 0;
    if (added || removed)
      log::info(kLog, "deny rules from " + rule_store_.file().string() + ": " +
                          std::to_string(added) + " restored, " + std::to_string(removed) +
                          " not stored removed (" + std::to_string(stored->size()) + " in all)");
  } catch (const std::exception& e) {
    note_error(std::string("cannot restore deny rules: ") + e.what());
  }
}

void RunnerDatapathMode::persist_deny_rules(const std::function<void()>& undo) {
  std::vector<DenyRule> rules;
  for (const auto& r : bpf_->deny_rules()) rules.push_back(r.rule);
  try {
    rule_store_.save(rules);
  } catch (const std::exception& e) {
    undo();  // a rule that would vanish at the next reboot is not answered as added
    throw DomainError(ErrorKind::kInternal,
                      std::string("cannot store the deny rules: ") + e.what());
  }
}

bool RunnerDatapathMode::add_deny_rule(const DenyRule& rule) {
  std::lock_guard lock(mu_);
  bool added = bpf_for_rules().add_deny_rule(rule);
  if (added) {
    persist_deny_rules([&] { bpf_->remove_deny_rule(rule); });
    log::info(kLog, "deny rule added: " + rule.to_string());
  }
  return added;
}

bool RunnerDatapathMode::remove_deny_rule(const DenyRule& rule) {
  std::lock_guard lock(mu_);
  bool removed = bpf_for_rules().remove_deny_rule(rule);
  if (removed) {
    persist_deny_rules([&] { bpf_->add_deny_rule(rule); });
    log::info(kLog, "deny rule removed: " + rule.to_string());
  }
  return removed;
}

json RunnerDatapathMode::deny_rules() const {
  std::lock_guard lock(mu_);
  json rules = json::array();
  for (const auto& r : bpf_for_rules().deny_rules()) rules.push_back(deny_rule_status_to_json(r));
  return json{{"rules", rules}};
}

}  // namespace kohaku::runner
