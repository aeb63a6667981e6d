// Deferred answers over real loopback HTTP, wired the way kohaku-hostd's busy routes are: the
// handler "commits" a change and asks GroupCommit to answer once a flush covers it. The flush is
// a test-controlled sync that blocks until released, so the tests can see that no client has
// its answer before its record is durable, that concurrent requests share flushes, that a
// failed flush is a 500 followed by refusals, and that stopping with answers pending neither
// hangs nor crashes.
#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/domain_error.h"
#include "common/group_commit.h"
#include "common/http_client.h"
#include "common/http_server.h"
#include "support/gated_sync.h"

namespace kohaku::http {
namespace {

using nlohmann::json;
using std::chrono::seconds;

using test_support::GatedSync;

class DeferredCommitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // POST /commit: written under the owner's lock, answered once durable, refused once a flush
    // failed, as the host's journal does.
    router_.post_deferred("/commit", [this](const Request&, Reply reply) {
      uint64_t ticket;
      {
        std::lock_guard lock(mu_);
        if (auto error = group_->failed())
          throw DomainError(ErrorKind::kInternal, "refusing changes: " + *error);
        ticket = ++written_;
        group_->written(ticket);
      }
      {
        std::lock_guard lock(mu_);
        ++handled_;
      }
      handled_cv_.notify_all();
      group_->when_durable(ticket, [ticket, reply](const std::optional<std::string>& error) {
        if (error)
          return reply(std::make_exception_ptr(DomainError(ErrorKind::kInternal, *error)), nullptr);
        reply(nullptr, json{{"ticket", ticket}});
      });
    });
    ServerOptions o;
    o.address = "127.0.0.1";
    o.threads = 2;
    server_ = std::make_unique<HttpServer>(router_, o);
    server_->start();
  }
  void TearDown() override {
    sync_.release();
    server_->stop();
  }

  // Status 0: the connection broke without an answer.
  ClientResponse commit() {
    ClientOptions o;
    o.timeout = seconds(10);
    try {
      return HttpClient(server_->url(), o).post("/commit");
    } catch (const ClientError&) {
      return {};
    }
  }
  std::future<ClientResponse> commit_async() {
    return std::async(std::launch::async, [this] { return commit(); });
  }
  bool wait_handled(int n) {
    std::unique_lock lock(mu_);
    return handled_cv_.wait_for(lock, seconds(5), [&] { return handled_ >= n; });
  }

  GatedSync sync_;
  // Destroyed after the server (declared before it): pending completions outlive stop().
  std::unique_ptr<GroupCommit> group_ = std::make_unique<GroupCommit>([this] { sync_(); });
  std::mutex mu_;
  std::condition_variable handled_cv_;
  uint64_t written_ = 0;
  int handled_ = 0;
  Router router_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(DeferredCommitTest, TheAnswerComesOnlyAfterTheFlushCoveringIt) {
  auto answer = commit_async();
  ASSERT_TRUE(wait_handled(1));
  ASSERT_TRUE(sync_.wait_started(1));
  // The record is written and its flush is running, but not done: no answer yet.
  EXPECT_EQ(answer.wait_for(std::chrono::milliseconds(200)), std::future_status::timeout);
  sync_.release();
  ASSERT_EQ(answer.wait_for(seconds(10)), std::future_status::ready);
  auto res = answer.get();
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.json()["ticket"], 1);
}

TEST_F(DeferredCommitTest, ConcurrentRequestsShareFlushesWithoutAThreadEach) {
  // More requests at once than the server has handler threads (32): nobody holds one while
  // waiting for the disk, so all of them wait for the same flushes.
  constexpr int kClients = 64;
  std::vector<std::future<ClientResponse>> answers;
  for (int i = 0; i < kClients; ++i) answers.push_back(commit_async());
  ASSERT_TRUE(wait_handled(kClients)) << "requests were not all taken while the disk was busy";
  for (auto& a : answers)
    EXPECT_EQ(a.wait_for(std::chrono::milliseconds(0)), std::future_status::timeout);
  sync_.release();
  for (auto& a : answers) {
    ASSERT_EQ(a.wait_for(seconds(10)), std::future_status::ready);
    EXPECT_EQ(a.get().status, 200);
  }
  // The first flush covered what was written when it began; one more covers the rest.
  EXPECT_LE(group_->flushes(), 2u);
}

TEST_F(DeferredCommitTest, AFailedFlushIsA500AndLaterChangesAreRefused) {
  auto answer = commit_async();
  ASSERT_TRUE(sync_.wait_started(1));
  sync_.release(true);
  auto res = answer.get();
  EXPECT_EQ(res.status, 500);
  EXPECT_NE(res.error_message().find("Input/output error"), std::string::npos) << res.body;
  auto later = commit();
  EXPECT_EQ(later.status, 500);
  EXPECT_NE(later.error_message().find("refusing changes"), std::string::npos) << later.body;
}

TEST_F(DeferredCommitTest, StoppingWithAnswersPendingJoinsAndDropsThem) {
  std::vector<std::future<ClientResponse>> answers;
  for (int i = 0; i < 8; ++i) answers.push_back(commit_async());
  ASSERT_TRUE(wait_handled(8));
  auto stopped = std::async(std::launch::async, [this] { server_->stop(); });
  ASSERT_EQ(stopped.wait_for(seconds(10)), std::future_status::ready) << "stop() hung";
  // The flushes finish after the server is gone: their answers go nowhere, and nothing crashes.
  sync_.release();
  group_.reset();  // joins the flusher once every completion ran
  for (auto& a : answers) {
    ASSERT_EQ(a.wait_for(seconds(15)), std::future_status::ready);
    EXPECT_NE(a.get().status, 200) << "answered by a stopped server";
  }
}

}  // namespace
}  // namespace kohaku::http
