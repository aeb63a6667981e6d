#pragma once
// Undo actions for a multi-step set-up: each step that succeeded adds how to take it back; the
// destructor runs them newest first unless commit() was called. An action that throws is logged
// and the others still run (a destructor must not throw).
#include <exception>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "common/log.h"

namespace kohaku {

class Rollback {
 public:
  explicit Rollback(std::string log_component) : log_(std::move(log_component)) {}
  ~Rollback() {
    if (committed_) return;
    for (auto it = undo_.rbegin(); it != undo_.rend(); ++it) {
      try {
        (*it)();
      } catch (const std::exception& e) {
        log::warn(log_, std::string("rollback step failed: ") + e.what());
      }
    }
  }
  Rollback(const Rollback&) = delete;
  Rollback& operator=(const Rollback&) = delete;

  void add(std::function<void()> undo) { undo_.push_back(std::move(undo)); }
  // Everything stays: the set-up is complete.
  void commit() { committed_ = true; }

 private:
  std::string log_;
  std::vector<std::function<void()>> undo_;
  bool committed_ = false;
};

}  // namespace kohaku
