#include "common/group_commit.h"

#include <algorithm>
#include <stdexcept>

namespace kohaku {

void GroupCommit::written(uint64_t ticket) {
  std::lock_guard lock(mu_);
  written_ = std::max(written_, ticket);
}

void GroupCommit::covered(uint64_t ticket) {
  {
    std::lock_guard lock(mu_);
    written_ = std::max(written_, ticket);
    durable_ = std::max(durable_, ticket);
  }
  cv_.notify_all();
}

void GroupCommit::wait(uint64_t ticket) {
  std::unique_lock lock(mu_);
  for (;;) {
    if (failed_) throw std::runtime_error(*failed_);
    if (durable_ >= ticket) return;
    if (flushing_) {
      cv_.wait(lock);
      continue;
    }
    // Lead a flush for everything written so far, this waiter's record included.
    flushing_ = true;
    const uint64_t target = written_;
    lock.unlock();
    std::optional<std::string> error;
    try {
      sync_();
    } catch (const std::exception& e) {
      error = e.what();
    }
    lock.lock();
    flushing_ = false;
    ++flushes_;
    if (error)
      failed_ = *error;
    else
      durable_ = std::max(durable_, target);
    cv_.notify_all();
  }
}

std::optional<std::string> GroupCommit::failed() const {
  std::lock_guard lock(mu_);
  return failed_;
}

uint64_t GroupCommit::flushes() const {
  std::lock_guard lock(mu_);
  return flushes_;
}

}  // namespace kohaku
