// The host's push of L2 network views (host/l2/l2_network_push.h) against real HTTP servers
// standing in for runners: a runner that refuses connections or answers errors gets the change
// once it is back, and what it gets is the newest view, not the one current when the push
// first failed.
#include "host/l2/l2_network_push.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <optional>
#include <thread>

#include "common/api_error.h"
#include "common/http_router.h"
#include "common/http_server.h"
#include "host/api/l2_network_request.h"
#include "support/temp_dir.h"

namespace kohaku {
namespace {

using test_support::TempDir;

namespace fs = std::filesystem;
using nlohmann::json;
using std::chrono::seconds;

// A runner's L2 route: records every PUT, answers 503 to the first `failures` of them.
class FakeRunner {
 public:
  explicit FakeRunner(int failures = 0) : failures_(failures) {
    router_.put("/api/l2/networks/{name}", [this](const http::Request& r) -> json {
      std::lock_guard lock(mu_);
      ++attempts_;
      if (failures_ > 0) {
        --failures_;
        throw ApiError(503, "busy");
      }
      delivered_.push_back(r.json());
      cv_.notify_all();
      return {{"applied", true}};
    });
  }

  void listen(uint16_t port = 0) {
    http::ServerOptions o;
    o.address = "127.0.0.1";
    o.port = port;
    o.threads = 1;
    server_.emplace(router_, o);
    server_->start();
  }
  void go_down() { server_.reset(); }
  uint16_t port() const { return server_->port(); }

  // The first delivered view satisfying `pred`, waiting up to `deadline`.
  std::optional<json> wait_for(const std::function<bool(const json&)>& pred, seconds deadline) {
    std::unique_lock lock(mu_);
    std::optional<json> found;
    cv_.wait_for(lock, deadline, [&] {
      for (const auto& v : delivered_)
        if (pred(v)) return found = v, true;
      return false;
    });
    return found;
  }
  std::vector<json> delivered() {
    std::lock_guard lock(mu_);
    return delivered_;
  }
  int attempts() {
    std::lock_guard lock(mu_);
    return attempts_;
  }

 private:
  http::Router router_;
  std::optional<http::HttpServer> server_;
  std::mutex mu_;
  std::condition_variable cv_;
  int failures_;
  int attempts_ = 0;
  std::vector<json> delivered_;
};

class L2PushTest : public ::testing::Test {
 protected:
  void open(uint16_t r1_port) {
    runners_["r1"] = {"r1", Ipv4Addr::parse("192.168.50.11"),
                      "http://127.0.0.1:" + std::to_string(r1_port), false};
    // r2 and r3 are registered but never answer: only r1's deliveries are checked, and their
    // failures must not hold r1's up.
    runners_["r2"] = {"r2", Ipv4Addr::parse("192.168.50.12"), "http://127.0.0.1:9", false};
    runners_["r3"] = {"r3", Ipv4Addr::parse("192.168.50.13"), "http://127.0.0.1:9", false};
    L2NetworkRegistry::Options o;
    o.state_dir = dir_.path();
    auto lookup = [this](const std::string& n) -> std::optional<L2RunnerInfo> {
      auto it = runners_.find(n);
      if (it == runners_.end()) return std::nullopt;
      return it->second;
    };
    registry_ = std::make_unique<L2NetworkRegistry>(o, lookup, [] { return int64_t{1}; });
    push_ = std::make_unique<L2NetworkPush>(*registry_, lookup, "");
    registry_->set_listener([this](const L2Change& c) { push_->on_change(c); });
  }

  static bool has_peers(const json& view, size_t n) {
    return view.value("peers", json::array()).size() == n;
  }

  TempDir dir_;
  std::map<std::string, L2RunnerInfo> runners_;
  std::unique_ptr<L2NetworkRegistry> registry_;
  std::unique_ptr<L2NetworkPush> push_;
};

TEST_F(L2PushTest, RunnerAnsweringErrorsGetsTheViewOnRetry) {
  FakeRunner r1(/*failures=*/3);
  r1.listen();
  open(r1.port());
  registry_->create(parse_l2_network_create(
      {{"name", "train"}, {"subnet", "172.20.0.0/24"}, {"runners", {"r1"}}}));

  auto view =
      r1.wait_for([](const json& v) { return v.value("name", "") == "train"; }, seconds(10));
  ASSERT_TRUE(view) << "no view delivered after " << r1.attempts() << " attempts";
  EXPECT_EQ(r1.attempts(), 4);  // three 503s, then the delivery
  EXPECT_EQ((*view)["subnet"], "172.20.0.0/24");
  EXPECT_EQ((*view)["vni"], default_l2_vni("train"));
}

TEST_F(L2PushTest, RunnerThatWasDownGetsTheNewestView) {
  FakeRunner r1;
  r1.listen();
  const uint16_t port = r1.port();
  open(port);
  registry_->create(parse_l2_network_create(
      {{"name", "train"}, {"subnet", "172.20.0.0/24"}, {"runners", {"r1"}}}));
  ASSERT_TRUE(r1.wait_for([](const json& v) { return has_peers(v, 0); }, seconds(10)));

  // r1 goes down (connection refused); two membership changes happen meanwhile.
  r1.go_down();
  registry_->join("train", "r2");
  registry_->join("train", "r3");
  const uint64_t newest = registry_->revision();
  // The outage: long enough for several failed attempts (200 ms, 400 ms, 800 ms backoff).
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));
  r1.listen(port);

  // Backoff is capped at 5 s, so the next retry comes well within 10 s, long before the
  // runner's own poll would matter; and it carries the view after both joins.
  auto view = r1.wait_for([](const json& v) { return has_peers(v, 2); }, seconds(10));
  ASSERT_TRUE(view) << "r1 never got the view with both new peers";
  EXPECT_EQ((*view)["revision"], newest);
  // Level-triggered: nothing older than what was current at send time, and no intermediate
  // view with one peer, was delivered after the outage.
  for (const auto& v : r1.delivered()) EXPECT_FALSE(has_peers(v, 1)) << v.dump();
}

TEST_F(L2PushTest, RunnerThatLeftWhileDownGetsTheDelete) {
  FakeRunner r1;
  http::Router deletes;
  std::mutex mu;
  std::condition_variable cv;
  std::optional<std::string> deleted_target;
  deletes.del("/api/l2/networks/{name}", [&](const http::Request& r) -> json {
    std::lock_guard lock(mu);
    deleted_target = r.target;
    cv.notify_all();
    return {{"removed", true}};
  });
  r1.listen();
  const uint16_t port = r1.port();
  open(port);
  registry_->create(parse_l2_network_create(
      {{"name", "train"}, {"subnet", "172.20.0.0/24"}, {"runners", {"r1", "r2"}}}));
  ASSERT_TRUE(r1.wait_for([](const json& v) { return has_peers(v, 1); }, seconds(10)));
  r1.go_down();
  registry_->leave("train", "r1", false);
  std::this_thread::sleep_for(std::chrono::milliseconds(1000));  // the outage

  http::ServerOptions o;
  o.address = "127.0.0.1";
  o.port = port;
  o.threads = 1;
  http::HttpServer back(deletes, o);
  back.start();
  std::unique_lock lock(mu);
  ASSERT_TRUE(cv.wait_for(lock, seconds(10), [&] { return deleted_target.has_value(); }))
      << "the DELETE never arrived";
  EXPECT_EQ(*deleted_target,
            "/api/l2/networks/train?revision=" + std::to_string(registry_->revision()));
}

}  // namespace
}  // namespace kohaku
