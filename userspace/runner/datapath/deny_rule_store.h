#pragma once
// The operator's deny rules on disk: STATE_DIR/deny-rules.json, {"rules": [<rule JSON>...]}
// (deny_rule_json.h), replaced atomically on every change. The pinned BPF map survives a daemon
// restart but not a reboot (bpffs is in memory) nor a switch to the kernel datapath and back;
// this file does, and the runner writes the map from it whenever it loads the BPF datapath.
#include <filesystem>
#include <optional>
#include <vector>

#include "runner/bpf/deny_rule.h"

namespace kohaku::runner {

class DenyRuleStore {
 public:
  explicit DenyRuleStore(std::filesystem::path file) : file_(std::move(file)) {}

  // The stored rules; nullopt when there is no file yet (a runner that never stored any, or an
  // older runner's state). Throws std::runtime_error naming the file and the bad rule when it
  // cannot be read or parsed.
  std::optional<std::vector<DenyRule>> load() const;
  // Replaces the file (write, fsync, rename). Throws std::runtime_error naming the file.
  void save(const std::vector<DenyRule>& rules) const;

  const std::filesystem::path& file() const { return file_; }

 private:
  std::filesystem::path file_;
};

}  // namespace kohaku::runner
