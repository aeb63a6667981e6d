// OverlayService: container IP reservations (/api/overlay/ip/...), their parameters and
// concurrency.
#include <gtest/gtest.h>

#include <set>
#include <string>
#include <thread>
#include <vector>

#include "unit/overlay_service_fixture.h"

namespace kohaku::test {
namespace {

TEST_F(OverlayServiceTest, ReservationLifecycleThroughTheApi) {
  reg("gpu1", "192.168.1.21");
  auto r = ip_reserve({{"runner", "gpu1"}, {"ttl", "120"}});
  EXPECT_EQ(r["ip"], "10.128.64.2");
  EXPECT_EQ(r["runner"], "gpu1");
  EXPECT_EQ(r["ttl_seconds"], 120);
  EXPECT_EQ(r["expires_at"], "2027-01-15T08:02:00Z");
  std::string token = r["token"];
  EXPECT_EQ(token.size(), 64u);  // 256 bits: the list shows 20 digits and hides 176 bits
  EXPECT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(ip_reserve({{"runner", "gpu1"}})["token"], token);

  auto v = ip_validate({{"token", token}});
  EXPECT_TRUE(v["valid"].get<bool>());
  EXPECT_EQ(v["ip"], "10.128.64.2");
  EXPECT_FALSE(v["is_used"].get<bool>());
  EXPECT_FALSE(ip_validate({{"token", "0123456789abcdef0123456789abcdef"}})["valid"]);

  auto list = ip_reservations({{"runner", "gpu1"}});
  ASSERT_EQ(list["reservations"].size(), 2u);
  // As KohakuRiver lists them: the first 20 characters; 176 of the 256 bits stay hidden.
  ASSERT_EQ(token.size(), 64u);
  EXPECT_EQ(list["reservations"][0]["token"], token.substr(0, 20) + "...");

  auto used = ip_use({{"token", token}, {"container_id", "c1"}});
  EXPECT_EQ(used["ip"], "10.128.64.2");
  EXPECT_EQ(status_of([&] { ip_release({{"token", token}}); }), 409);
  ip_use({{"runner", "gpu1"}, {"ip", "10.128.64.40"}, {"container_id", "c1"}}, credentials["gpu1"]);
  auto info = svc->ip_info("gpu1");
  EXPECT_EQ(info["total_ips"], 16380);  // /18 minus network, gateway, .254, broadcast
  EXPECT_EQ(info["used"], 2);
  EXPECT_EQ(info["reserved"], 1);
  EXPECT_EQ(info["available"], 16377);
  EXPECT_EQ(info["ip_range"], (json{{"first", "10.128.64.2"}, {"last", "10.128.127.254"}}));
  auto stats = svc->ip_stats();
  EXPECT_EQ(stats["total_used_ips"], 2);
  EXPECT_EQ(stats["in_use_reservations"], 1);
  EXPECT_EQ(stats["pending_reservations"], 1);
  // include_used defaults to true, as in KohakuRiver.
  EXPECT_EQ(ip_reservations({{"include_used", "false"}})["reservations"].size(), 1u);
  EXPECT_EQ(ip_reservations({})["reservations"].size(), 3u);
  EXPECT_EQ(ip_reservations({{"include_used", "off"}})["reservations"].size(), 1u);

  auto freed = ip_release({{"container_id", "c1"}, {"runner", "gpu1"}}, credentials["gpu1"]);
  EXPECT_EQ(freed["released_count"], 2);
  EXPECT_EQ(svc->ip_info("gpu1")["used"], 0);
  auto avail = ip_available({{"runner", "gpu1"}, {"limit", "3"}});
  EXPECT_EQ(avail["available_ips"]["gpu1"], (json{"10.128.64.2", "10.128.64.4", "10.128.64.5"}));

  // The pending one expires.
  advance_ms(300'000);
  svc->tick();
  EXPECT_EQ(svc->ip_info("gpu1")["reserved"], 0);
  EXPECT_EQ(svc->ip_stats()["total_reservations"], 0);
}

TEST_F(OverlayServiceTest, ReservationParametersAreValidated) {
  reg("gpu1", "192.168.1.21");
  for (const char* ttl : {"59", "1801", "abc", "300.5", "-1", "3e2"})
    EXPECT_EQ(status_of([&] { ip_reserve({{"runner", "gpu1"}, {"ttl", ttl}}); }), 422) << ttl;
  // Well-formed but not a container address of the runner: refused by the state, 400.
  for (const char* ip :
       {"10.128.64.0", "10.128.64.1", "10.128.64.254", "10.128.127.255", "10.128.128.5"})
    EXPECT_EQ(status_of([&] { ip_reserve({{"runner", "gpu1"}, {"ip", ip}}); }), 400) << ip;
  EXPECT_EQ(status_of([&] { ip_reserve({{"runner", "gpu1"}, {"ip", "nope"}}); }), 422);
  EXPECT_EQ(status_of([&] { ip_reserve({}); }), 422);
  EXPECT_EQ(status_of([&] { ip_reserve({{"runner", "ghost"}}); }), 404);
  EXPECT_EQ(ip_reserve({{"runner", "runner_1"}, {"ip", "10.128.64.9"}})["ip"], "10.128.64.9");
  EXPECT_EQ(status_of([&] { ip_reserve({{"runner", "gpu1"}, {"ip", "10.128.64.9"}}); }), 409);
  EXPECT_EQ(status_of([&] { ip_available({{"limit", "0"}}); }), 422);
  EXPECT_EQ(status_of([&] { ip_available({{"limit", "1001"}}); }), 422);
  EXPECT_EQ(status_of([&] { ip_reservations({{"include_used", "maybe"}}); }), 422);
  EXPECT_EQ(status_of([&] { ip_use({{"token", "x"}}); }), 422) << "container_id missing";
  EXPECT_EQ(status_of([&] { ip_use({{"token", "x"}, {"container_id", "c"}}); }), 404);
  EXPECT_EQ(status_of([&] { ip_release({{"token", "x"}}); }), 404);
  EXPECT_EQ(status_of([&] { ip_release({}); }), 422);
  EXPECT_EQ(status_of([&] { svc->ip_info("ghost"); }), 404);
  EXPECT_EQ(svc->ip_info("gpu1")["reserved"], 1) << "refused requests changed nothing";
}

TEST_F(OverlayServiceTest, ConcurrentReservationsNeverShareAnIp) {
  reg("gpu1", "192.168.1.21");
  constexpr int kThreads = 8, kEach = 25;
  std::vector<std::vector<std::string>> got(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i)
        got[t].push_back(ip_reserve({{"runner", "gpu1"}})["ip"].get<std::string>());
    });
  for (auto& th : threads) th.join();
  std::set<std::string> unique;
  for (const auto& v : got) unique.insert(v.begin(), v.end());
  EXPECT_EQ(unique.size(), size_t{kThreads * kEach});
  auto info = svc->ip_info("gpu1");
  EXPECT_EQ(info["reserved"], kThreads * kEach);
  EXPECT_EQ(info["total_ips"].get<int>(),
            info["available"].get<int>() + info["reserved"].get<int>() + info["used"].get<int>());
  restart();
  EXPECT_EQ(svc->ip_info("gpu1")["reserved"], kThreads * kEach);
}

}  // namespace
}  // namespace kohaku::test
