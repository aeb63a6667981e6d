// State survives a graceful restart and a kill -9; concurrent reservations never share an IP.
#include <gtest/gtest.h>

#include <mutex>
#include <set>
#include <thread>

#include "host_api_helpers.h"
#include "hostd_process.h"

namespace kohaku::test {
namespace {

json validate(const http::HttpClient& c, const std::string& token) {
  return c.post(http::with_query("/api/overlay/ip/validate", {{"token", token}})).json();
}

struct World {
  std::string pending_token;
  std::string used_token;
  json reservations;
};

// Two runners, one pending and one used reservation.
World build_state(const http::HttpClient& c) {
  register_runner(c, "gpu-1", "10.1.0.5");
  register_runner(c, "gpu-2", "10.1.0.6");
  World w;
  w.pending_token = reserve_ip(c, "gpu-2", "10.128.128.40", "1800")["token"];
  w.used_token = reserve_ip(c, "gpu-1")["token"];
  auto use = c.post(http::with_query("/api/overlay/ip/use",
                                     {{"token", w.used_token}, {"container_id", "ctr-1"}}));
  EXPECT_EQ(use.status, 200) << use.body;
  w.reservations = get_json(c, "/api/overlay/ip/reservations?include_used=true");
  return w;
}

void expect_state(const http::HttpClient& c, const World& w) {
  EXPECT_EQ(get_json(c, "/api/overlay/ip/reservations?include_used=true"), w.reservations);
  json pending = validate(c, w.pending_token);
  EXPECT_EQ(pending["valid"], true);
  EXPECT_EQ(pending["ip"], "10.128.128.40");
  EXPECT_EQ(pending["runner"], "gpu-2");
  json used = validate(c, w.used_token);
  EXPECT_EQ(used["valid"], true);
  EXPECT_EQ(used["is_used"], true);
  // Runner ids are kept, also on re-registration after the restart.
  json status = get_json(c, "/api/overlay/status");
  ASSERT_EQ(status["allocations"].size(), 2u);
  EXPECT_EQ(register_runner(c, "gpu-2", "10.1.0.6")["overlay"]["runner_id"], 2);
  EXPECT_EQ(register_runner(c, "gpu-1", "10.1.0.5")["overlay"]["runner_id"], 1);
  // Nothing is handed out twice: a new reservation skips the restored ones.
  json fresh = reserve_ip(c, "gpu-1");
  EXPECT_NE(fresh["ip"], used["ip"]);
}

TEST(HostdPersistence, SurvivesGracefulRestart) {
  Hostd hostd;
  hostd.start();
  World w = build_state(hostd.client());
  EXPECT_EQ(hostd.stop(), 0) << hostd.log();
  hostd.start();
  expect_state(hostd.client(), w);
}

TEST(HostdPersistence, SurvivesKill9) {
  Hostd hostd;
  hostd.start();
  auto c = hostd.client();
  World w = build_state(c);
  // The last write before the kill must be there afterwards: its 200 promised durability.
  json last = reserve_ip(c, "gpu-2", std::nullopt, "600");
  w.reservations = get_json(c, "/api/overlay/ip/reservations?include_used=true");
  hostd.kill9();
  hostd.start();
  expect_state(hostd.client(), w);
  json v = validate(hostd.client(), last["token"]);
  EXPECT_EQ(v["valid"], true);
  EXPECT_EQ(v["ip"], last["ip"]);
}

TEST(HostdPersistence, Kill9WhileReservationsAreBeingMade) {
  Hostd hostd;
  hostd.start();
  auto c = hostd.client();
  register_runner(c, "gpu-1", "10.1.0.5");
  // Reserve until killed; every reservation the daemon confirmed must survive.
  std::mutex mu;
  std::vector<json> confirmed;
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    while (!stop) {
      try {
        auto res = c.post("/api/overlay/ip/reserve?runner=gpu-1");
        if (res.status != 200) continue;
        std::lock_guard lock(mu);
        confirmed.push_back(res.json());
      } catch (const http::ClientError&) {
        return;  // the daemon is gone
      }
    }
  });
  auto d = deadline_in(std::chrono::seconds(10));
  while (!past(d)) {
    {
      std::lock_guard lock(mu);
      if (confirmed.size() >= 20) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  hostd.kill9();
  stop = true;
  writer.join();
  ASSERT_GE(confirmed.size(), 20u);
  hostd.start();
  json list = get_json(hostd.client(), "/api/overlay/ip/reservations");
  std::set<std::string> ips;
  for (const auto& r : list["reservations"]) ips.insert(r["ip"]);
  EXPECT_EQ(ips.size(), list["reservations"].size());  // no duplicates after replay
  for (const auto& r : confirmed) {
    EXPECT_TRUE(ips.count(r["ip"])) << "confirmed reservation of " << r["ip"] << " was lost";
    EXPECT_EQ(validate(hostd.client(), r["token"])["valid"], true);
  }
}

TEST(HostdConcurrency, ParallelReservationsNeverShareAnIp) {
  Hostd hostd;
  hostd.start();
  register_runner(hostd.client(), "gpu-1", "10.1.0.5");
  register_runner(hostd.client(), "gpu-2", "10.1.0.6");
  constexpr int kThreads = 8, kEach = 15;
  std::mutex mu;
  std::vector<std::string> ips, tokens;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto c = hostd.client();
      for (int i = 0; i < kEach; ++i) {
        // Half the threads fight over one runner's first address explicitly.
        std::string target = "/api/overlay/ip/reserve?runner=gpu-1";
        if (t % 2 == 1 && i == 0) target += "&ip=10.128.64.100";
        auto res = c.post(target);
        if (res.status != 200) {
          if (!(t % 2 == 1 && i == 0 && res.status == 409)) ++failures;
          continue;
        }
        std::lock_guard lock(mu);
        ips.push_back(res.json()["ip"]);
        tokens.push_back(res.json()["token"]);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures, 0);
  std::set<std::string> unique_ips(ips.begin(), ips.end());
  std::set<std::string> unique_tokens(tokens.begin(), tokens.end());
  EXPECT_EQ(unique_ips.size(), ips.size()) << "an IP was handed out twice";
  EXPECT_EQ(unique_tokens.size(), tokens.size());
  EXPECT_EQ(unique_ips.count("10.128.64.100"), 1u);  // exactly one thread won it
  // (kThreads*kEach) minus the (kThreads/2 - 1) explicit requests that lost.
  EXPECT_EQ(ips.size(), size_t{kThreads * kEach - (kThreads / 2 - 1)});
  json stats = get_json(hostd.client(), "/api/overlay/ip/stats");
  EXPECT_EQ(stats["total_reservations"], ips.size());
  json info = get_json(hostd.client(), "/api/overlay/ip/info/gpu-1");
  EXPECT_EQ(info["reserved"], ips.size());
  EXPECT_EQ(info["total_ips"].get<int64_t>(), info["available"].get<int64_t>() +
                                                  info["reserved"].get<int64_t>() +
                                                  info["used"].get<int64_t>());
}

}  // namespace
}  // namespace kohaku::test
