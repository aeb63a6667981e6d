#include "common/group_commit.h"

#include <algorithm>
#include <future>
#include <stdexcept>
#include <vector>

#include "common/log.h"

namespace kohaku {

GroupCommit::GroupCommit(std::function<void()> sync)
    : sync_(std::move(sync)), flusher_([this] { run(); }) {}

GroupCommit::~GroupCommit() {
  {
    std::lock_guard lock(mu_);
    stop_ = true;
  }
  cv_.notify_one();
  flusher_.join();
}

void GroupCommit::written(uint64_t ticket) {
  std::lock_guard lock(mu_);
  written_ = std::max(written_, ticket);
}

void GroupCommit::covered(uint64_t ticket) {
  bool waiting;
  {
    std::lock_guard lock(mu_);
    written_ = std::max(written_, ticket);
    durable_ = std::max(durable_, ticket);
    waiting = !pending_.empty();
  }
  // The flusher completes what this made durable without a flush.
  if (waiting) cv_.notify_one();
}

void GroupCommit::when_durable(uint64_t ticket, Done done) {
  std::unique_lock lock(mu_);
  if (!failed_ && durable_ < ticket) {
    bool idle = pending_.empty();
    pending_.emplace(ticket, std::move(done));
    lock.unlock();
    // With others pending the flusher is busy with them and looks again before it sleeps.
    if (idle) cv_.notify_one();
    return;
  }
  const std::optional<std::string> error = failed_;
  lock.unlock();
  done(error);
}

void GroupCommit::wait(uint64_t ticket) {
  std::promise<std::optional<std::string>> outcome;
  auto result = outcome.get_future();
  when_durable(ticket,
               [&outcome](const std::optional<std::string>& error) { outcome.set_value(error); });
  if (auto error = result.get()) throw std::runtime_error(*error);
}

void GroupCommit::run() {
  std::unique_lock lock(mu_);
  for (;;) {
    cv_.wait(lock, [this] { return stop_ || !pending_.empty(); });
    if (pending_.empty()) return;  // stopping with nothing left to complete
    // Flush only when some completion is not covered yet (covered() may have done it).
    if (!failed_ && pending_.rbegin()->first > durable_) {
      // Everything written so far, the record of every pending completion included.
      const uint64_t target = written_;
      lock.unlock();
      std::optional<std::string> error;
      try {
        sync_();
      } catch (const std::exception& e) {
        error = e.what();
      }
      lock.lock();
      ++flushes_;
      if (error)
        failed_ = *error;
      else
        durable_ = std::max(durable_, target);
    }
    // Completions run with the lock released: they may write the next records meanwhile.
    std::vector<Done> ready;
    auto end = failed_ ? pending_.end() : pending_.upper_bound(durable_);
    for (auto it = pending_.begin(); it != end; ++it) ready.push_back(std::move(it->second));
    pending_.erase(pending_.begin(), end);
    const std::optional<std::string> error = failed_;
    lock.unlock();
    for (auto& done : ready) {
      try {
        done(error);
      } catch (const std::exception& e) {  // completions do not throw; the flusher must live on
        log::error("journal", std::string("a group commit completion failed: ") + e.what());
      }
    }
    lock.lock();
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
