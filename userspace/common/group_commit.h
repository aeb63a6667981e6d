#pragma once
// Group commit: many writers share one fsync. A writer appends its record (to the page cache,
// under its own lock), notes the record's ticket with written(), lets go of its lock and then
// asks to be told once the record is durable: when_durable() registers a completion, wait()
// blocks. A flusher thread owned by the group syncs whenever someone is waiting; one sync covers
// every record written before it started, and its completions run right after it (records that
// came later are covered by the next). So with N concurrent writers the disk sees about one flush
// per batch instead of N, no thread has to be parked per writer, and still nobody is answered
// before the flush that covers their record succeeded (PostgreSQL's and InnoDB's group commit
// follow the same rule).
//
// A failed flush is sticky: once the kernel said it could not write back, it may have dropped
// the dirty pages, so nothing written since the last good flush can be promised any more, and
// every pending and later completion gets the error. Owners stop accepting changes then (see
// failed()); a restart reads what really is on disk.
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

namespace kohaku {

class GroupCommit {
 public:
  // Told how it went: no error once a flush covering the ticket succeeded, else the error of the
  // flush that failed (this one or an earlier one).
  using Done = std::function<void(const std::optional<std::string>& error)>;

  // sync: makes everything written so far durable; throws std::exception on failure. It runs on
  // the group's flusher thread, started here.
  explicit GroupCommit(std::function<void()> sync);
  // Completes what is still pending (one last flush), then joins the flusher.
  ~GroupCommit();
  GroupCommit(const GroupCommit&) = delete;
  GroupCommit& operator=(const GroupCommit&) = delete;

  // Everything up to and including `ticket` is written (tickets only grow).
  void written(uint64_t ticket);
  // Everything up to `ticket` became durable another way (a snapshot was fsynced).
  void covered(uint64_t ticket);
  // Calls done exactly once: right here when `ticket` is durable already or a flush failed,
  // otherwise on the flusher thread after the flush covering it. done must be quick (it delays
  // the next flush) and must not wait() on this group.
  void when_durable(uint64_t ticket, Done done);
  // Returns once a flush covering `ticket` succeeded. Throws std::runtime_error (naming the
  // error of the flush) when that flush, or an earlier one, failed.
  void wait(uint64_t ticket);
  // The error of a failed flush, if one failed.
  std::optional<std::string> failed() const;

  // How many flushes ran (for tests and the journal's statistics).
  uint64_t flushes() const;

 private:
  void run();

  std::function<void()> sync_;
  mutable std::mutex mu_;
  std::condition_variable cv_;  // the flusher waits on it for completions to serve or stop_
  uint64_t written_ = 0;
  uint64_t durable_ = 0;
  uint64_t flushes_ = 0;
  std::optional<std::string> failed_;
  std::multimap<uint64_t, Done> pending_;  // by ticket
  bool stop_ = false;
  std::thread flusher_;  // last: starts once everything above is initialised
};

}  // namespace kohaku
