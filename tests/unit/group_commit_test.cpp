// Group commit: concurrent writers share flushes, nobody returns (no completion runs) before a
// flush that started after their record was written, and a failed flush fails every later wait.
#include "common/group_commit.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "host/state/state_store.h"
#include "support/gated_sync.h"
#include "support/temp_dir.h"

namespace kohaku {
namespace {

// A "disk" whose flush takes a while and remembers how far each flush reached.
struct SlowDisk {
  std::mutex mu;
  uint64_t written = 0;  // highest ticket in the "page cache"
  uint64_t flushed = 0;  // highest ticket a finished flush covered
  std::atomic<int> flushes{0};
  void flush() {
    uint64_t target;
    {
      std::lock_guard lock(mu);
      target = written;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
    std::lock_guard lock(mu);
    flushed = std::max(flushed, target);
    ++flushes;
  }
};

TEST(GroupCommitTest, ConcurrentWritersShareFlushesAndNeverReturnEarly) {
  SlowDisk disk;
  GroupCommit group([&] { disk.flush(); });
  std::mutex writer_mu;  // the owner's lock: tickets are written in order under it
  uint64_t next = 0;
  std::atomic<int> early{0};
  constexpr int kThreads = 16, kEach = 40;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < kEach; ++i) {
        uint64_t ticket;
        {
          std::lock_guard lock(writer_mu);
          ticket = ++next;
          {
            std::lock_guard d(disk.mu);
            disk.written = ticket;
          }
          group.written(ticket);
        }
        group.wait(ticket);
        std::lock_guard d(disk.mu);
        if (disk.flushed < ticket) ++early;
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(early.load(), 0) << "a wait returned before a flush covered its record";
  // 640 records; one flush each would take 1.3 s. Sharing makes it a small fraction.
  EXPECT_LT(disk.flushes.load(), kThreads * kEach / 3) << "flushes were not shared";
  EXPECT_EQ(group.flushes(), static_cast<uint64_t>(disk.flushes.load()));
}

TEST(GroupCommitTest, CoveredTicketsNeedNoFlush) {
  int flushes = 0;
  GroupCommit group([&] { ++flushes; });
  group.written(5);
  group.covered(5);
  group.wait(3);
  group.wait(5);
  EXPECT_EQ(flushes, 0);
  group.written(6);
  group.wait(6);
  EXPECT_EQ(flushes, 1);
}

TEST(GroupCommitTest, AFailedFlushFailsThisAndEveryLaterWait) {
  bool fail = true;
  GroupCommit group([&] {
    if (fail) throw std::runtime_error("cannot fdatasync /x: Input/output error");
  });
  group.written(1);
  EXPECT_THROW(
      {
        try {
          group.wait(1);
        } catch (const std::runtime_error& e) {
          EXPECT_STREQ(e.what(), "cannot fdatasync /x: Input/output error");
          throw;
        }
      },
      std::runtime_error);
  fail = false;  // the disk "recovers": what it dropped is still lost, so the failure sticks
  group.written(2);
  EXPECT_THROW(group.wait(2), std::runtime_error);
  ASSERT_TRUE(group.failed().has_value());
}

TEST(GroupCommitTest, StateStoreSharesJournalFlushesAcrossWriters) {
  test_support::TempDir dir;
  constexpr int kThreads = 8, kEach = 50;
  {
    StateStore store(dir.path());
    std::mutex mu;
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          uint64_t seq;
          {
            std::lock_guard lock(mu);
            seq = store.write({{"op", "batch"}, {"changes", nlohmann::json::array()}, {"t", t}});
          }
          store.wait_durable(seq);
        }
      });
    for (auto& th : threads) th.join();
    EXPECT_GE(store.flushes(), 1u);
    EXPECT_LE(store.flushes(), static_cast<uint64_t>(kThreads * kEach));
  }
  // Everything written is there for the next process, in order.
  StateStore again(dir.path());
  auto records = again.take_records();
  ASSERT_EQ(records.size(), static_cast<size_t>(kThreads * kEach));
  for (size_t i = 0; i < records.size(); ++i) EXPECT_EQ(records[i]["seq"], i + 1);
}

using test_support::GatedSync;

// Completions that were called, with their errors ("" for none).
struct Outcomes {
  std::mutex mu;
  std::condition_variable cv;
  std::vector<std::string> got;
  GroupCommit::Done add() {
    return [this](const std::optional<std::string>& error) {
      std::lock_guard lock(mu);
      got.push_back(error.value_or(""));
      cv.notify_all();
    };
  }
  size_t count() {
    std::lock_guard lock(mu);
    return got.size();
  }
  bool wait_for(size_t n) {
    std::unique_lock lock(mu);
    return cv.wait_for(lock, std::chrono::seconds(5), [&] { return got.size() >= n; });
  }
  // Records tickets first..last as an owner would: written, then a completion for each.
  void write(GroupCommit& group, uint64_t first, uint64_t last) {
    for (uint64_t t = first; t <= last; ++t) {
      group.written(t);
      group.when_durable(t, add());
    }
  }
};

// A group whose flushes block until the test releases them.
class GatedGroupCommitTest : public ::testing::Test {
 protected:
  GatedSync disk;
  Outcomes outcomes;
  GroupCommit group{[this] { disk(); }};  // last: joins its flusher before the others go
};

TEST_F(GatedGroupCommitTest, ACompletionRunsOnlyAfterTheFlushCoveringItSucceeded) {
  outcomes.write(group, 1, 1);
  ASSERT_TRUE(disk.wait_started(1)) << "no flush started for a pending completion";
  EXPECT_EQ(outcomes.count(), 0u) << "completed while its flush was still running";
  disk.release();
  ASSERT_TRUE(outcomes.wait_for(1));
  EXPECT_EQ(outcomes.got, std::vector<std::string>{""});
  // Durable now: a later completion for it runs at once, on the caller's thread.
  group.when_durable(1, outcomes.add());
  EXPECT_EQ(outcomes.count(), 2u);
  EXPECT_EQ(group.flushes(), 1u);
}

TEST_F(GatedGroupCommitTest, CompletionsWaitingMeanwhileShareTheNextFlush) {
  outcomes.write(group, 1, 1);
  ASSERT_TRUE(disk.wait_started(1));
  // 63 more records while the first flush runs: it does not cover them, one more flush does.
  outcomes.write(group, 2, 64);
  disk.release();
  ASSERT_TRUE(outcomes.wait_for(64));
  EXPECT_EQ(group.flushes(), 2u);
  for (const auto& error : outcomes.got) EXPECT_EQ(error, "");
}

TEST_F(GatedGroupCommitTest, AFailedFlushFailsEveryPendingAndEveryLaterCompletion) {
  outcomes.write(group, 1, 3);
  ASSERT_TRUE(disk.wait_started(1));
  disk.release(true);
  ASSERT_TRUE(outcomes.wait_for(3));
  for (const auto& error : outcomes.got) EXPECT_EQ(error, GatedSync::kError);
  outcomes.write(group, 4, 4);  // refused at once: the failure sticks
  ASSERT_EQ(outcomes.count(), 4u);
  EXPECT_EQ(outcomes.got.back(), GatedSync::kError);
}

TEST(GroupCommitTest, DestroyingItCompletesWhatIsPendingAndReturns) {
  Outcomes outcomes;
  std::atomic<int> flushes{0};
  {
    GroupCommit group([&] { ++flushes; });
    outcomes.write(group, 1, 10);
  }  // joins the flusher
  EXPECT_EQ(outcomes.count(), 10u);
  EXPECT_GE(flushes.load(), 1);
}

}  // namespace
}  // namespace kohaku
