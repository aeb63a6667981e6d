// Calls from the host to a runner (GET /api/nodes/{h}/overlay) against a runner that accepts
// connections and never answers: they run off the I/O threads and are bounded, so clients
// looping on the dead runner do not slow the rest of the API (they pushed every other request
// to 2-2.5 s before), and concurrent asks for one runner share one connection to it.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "hostd_process.h"
#include "loopback_server.h"

namespace kohaku::test {
namespace {

using Clock = std::chrono::steady_clock;

// Accepts connections on loopback, counts them and never sends a byte.
class SilentRunner {
 public:
  ~SilentRunner() {
    server_.stop();
    for (int c : held_) ::close(c);
  }
  uint16_t port() const { return server_.port(); }
  size_t accepted() {
    std::lock_guard lock(mu_);
    return held_.size();
  }

 private:
  std::mutex mu_;
  std::vector<int> held_;
  LoopbackServer server_{128, "silent runner", [this](int c) {
                           std::lock_guard lock(mu_);
                           held_.push_back(c);
                         }};
};

TEST(HostdRunnerCalls, ADeadRunnerNeitherSlowsTheApiNorTakesAConnectionPerRequest) {
  SilentRunner dead;
  // Overlay off: a loopback runner url is accepted then, and nothing here needs tunnels.
  Hostd hostd({"OVERLAY_ENABLED=False"});
  hostd.start();
  nlohmann::json body = {{"hostname", "dead-1"},
                         {"url", "http://127.0.0.1:" + std::to_string(dead.port())}};
  ASSERT_EQ(hostd.client().post("/api/register", body).status, 200);

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::map<int, int> statuses;
  std::vector<std::thread> loopers;
  for (int i = 0; i < 8; ++i)
    loopers.emplace_back([&] {
      http::ClientOptions o;
      o.timeout = std::chrono::seconds(10);
      http::HttpClient c(hostd.url(), o);
      while (!stop) {
        int status = c.get("/api/nodes/dead-1/overlay").status;
        std::lock_guard lock(mu);
        ++statuses[status];
      }
    });

  // Meanwhile, other requests: every one answers fast.
  std::vector<double> ms;
  auto until = Clock::now() + std::chrono::milliseconds(4500);
  while (Clock::now() < until) {
    auto t0 = Clock::now();
    auto r = hostd.client().get("/api/nodes");
    ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    EXPECT_EQ(r.status, 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  stop = true;
  for (auto& t : loopers) t.join();

  ASSERT_GT(ms.size(), 50u);
  double slowest = *std::max_element(ms.begin(), ms.end());
  EXPECT_LT(slowest, 500.0) << "an unrelated request waited " << slowest
                            << " ms behind calls to a dead runner";
  // Everything the loopers got is an error naming the dead runner (502) or the bound (503).
  for (const auto& [status, n] : statuses)
    EXPECT_TRUE(status == 502 || status == 503) << n << " answers with HTTP " << status;
  EXPECT_GT(statuses[502], 0);
  // One call per timeout (3 s) at a time, not one per request: 8 loopers for ~4.5 s.
  EXPECT_LE(dead.accepted(), 3u) << "each request opened its own connection to the runner";
}

}  // namespace
}  // namespace kohaku::test
