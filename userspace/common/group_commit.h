#pragma once
// Group commit: many writers share one fsync. A writer appends its record (to the page cache,
// under its own lock), notes the record's ticket with written(), lets go of its lock and then
// wait()s: the first waiter to find no sync running starts one, which covers every record
// written before it started; waiters whose records came later start the next. So with N
// concurrent writers the disk sees about one flush per batch instead of N, and still nobody
// is answered before the flush that covers their record succeeded (PostgreSQL's and InnoDB's
// group commit follow the same rule).
//
// A failed flush is sticky: once the kernel said it could not write back, it may have dropped
// the dirty pages, so nothing written since the last good flush can be promised any more, and
// every later wait() throws. Owners stop accepting changes then (see failed()); a restart reads
// what really is on disk.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>

namespace kohaku {

class GroupCommit {
 public:
  // sync: makes everything written so far durable; throws std::exception on failure.
  explicit GroupCommit(std::function<void()> sync) : sync_(std::move(sync)) {}

  // Everything up to and including `ticket` is written (tickets only grow).
  void written(uint64_t ticket);
  // Everything up to `ticket` became durable another way (a snapshot was fsynced).
  void covered(uint64_t ticket);
  // Returns once a flush covering `ticket` succeeded. Throws std::runtime_error (naming the
  // error of the flush) when that flush, or an earlier one, failed.
  void wait(uint64_t ticket);
  // The error of a failed flush, if one failed.
  std::optional<std::string> failed() const;

  // How many flushes ran (for tests and the journal's statistics).
  uint64_t flushes() const;

 private:
  std::function<void()> sync_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  uint64_t written_ = 0;
  uint64_t durable_ = 0;
  bool flushing_ = false;
  uint64_t flushes_ = 0;
  std::optional<std::string> failed_;
};

}  // namespace kohaku
