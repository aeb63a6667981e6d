// OverlayService: runner registration, heartbeats, eviction, release and cleanup, the
// observer and the runner credential.
#include <gtest/gtest.h>

#include <chrono>
#include <future>
#include <string>
#include <thread>
#include <vector>

#include "support/default_overlay.h"
#include "unit/overlay_service_fixture.h"

namespace kohaku::test {
namespace {

TEST_F(OverlayServiceTest, RegisterAnswersTheOverlayPlan) {
  auto r = register_runner({{"hostname", "gpu1"},
                            {"url", "http://192.168.1.21:8001"},
                            {"vxlan_id", 100},
                            {"vxlan_port", 4789},
                            {"mtu", 1450},
                            {"total_cores", 64}});
  EXPECT_TRUE(r["created"].get<bool>());
  const auto& o = r["overlay"];
  test_support::expect_default_runner1_overlay(o, "192.168.1.10");
  EXPECT_EQ(o["vxlan_id"], 101);
  EXPECT_EQ(o["vxlan_port"], 4789);
  EXPECT_EQ(o["mtu"], 1450);

  credentials["gpu1"] = r["runner_credential"];
  auto again = reg("gpu1", "192.168.1.99");
  EXPECT_FALSE(again["created"].get<bool>());
  EXPECT_EQ(again["overlay"]["runner_id"], 1);
  auto nodes = svc->nodes();
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0]["hostname"], "gpu1");
  EXPECT_EQ(nodes[0]["status"], "online");
  EXPECT_EQ(nodes[0]["physical_ip"], "192.168.1.99");
  EXPECT_EQ(nodes[0]["runner_id"], 1);
  EXPECT_EQ(nodes[0]["last_heartbeat"], "2027-01-15T08:00:00Z");
}

TEST_F(OverlayServiceTest, RegisterRejectsBadInputAndChangesNothing) {
  std::string msg;
  for (const json& body :
       {json::array(), json{{"url", "http://192.168.1.2:1"}},
        json{{"hostname", ""}, {"url", "http://192.168.1.2:1"}},
        json{{"hostname", 5}, {"url", "http://192.168.1.2:1"}},
        json{{"hostname", "a b"}, {"url", "http://192.168.1.2:1"}},
        json{{"hostname", "runner_3"}, {"url", "http://192.168.1.2:1"}}, json{{"hostname", "h"}},
        json{{"hostname", "h"}, {"url", "ftp://192.168.1.2:1"}},
        json{{"hostname", "h"}, {"url", "http://gpu1.local:8001"}},
        json{{"hostname", "h"}, {"url", "http://127.0.0.1:8001"}},
        json{{"hostname", "h"}, {"url", "http://0.0.0.0:8001"}},
        json{{"hostname", "h"}, {"url", "http://192.168.1.2:99999"}},
        json{{"hostname", "h"}, {"url", "http://192.168.1.2:1"}, {"mtu", "1450"}}})
    EXPECT_EQ(status_of([&] { register_runner(body); }, &msg), 422) << body.dump();

  EXPECT_EQ(status_of(
                [&] {
                  register_runner(
                      {{"hostname", "h"}, {"url", "http://192.168.1.2:1"}, {"vxlan_id", 200}});
                },
                &msg),
            409);
  EXPECT_EQ(msg, "VXLAN id base mismatch: runner has 200, host has 100");
  EXPECT_EQ(status_of(
                [&] {
                  register_runner(
                      {{"hostname", "h"}, {"url", "http://192.168.1.2:1"}, {"vxlan_port", 8472}});
                },
                &msg),
            409);
  EXPECT_EQ(msg, "VXLAN port mismatch: runner has 8472, host has 4789");
  EXPECT_EQ(
      status_of(
          [&] {
            register_runner({{"hostname", "h"}, {"url", "http://192.168.1.2:1"}, {"mtu", 1400}});
          },
          &msg),
      409);
  EXPECT_EQ(msg, "MTU mismatch: runner has 1400, host has 1450");
  EXPECT_TRUE(svc->nodes().empty());
}

TEST_F(OverlayServiceTest, DisabledOverlayStillRegistersNodesButRefusesOverlayRoutes) {
  svc.reset();
  config.overlay_enabled = false;
  start();
  auto r = register_runner({{"hostname", "solo"}, {"url", "http://127.0.0.1:8001"}});
  EXPECT_TRUE(r["created"].get<bool>());
  EXPECT_FALSE(r.contains("overlay"));
  EXPECT_EQ(svc->nodes().size(), 1u);
  EXPECT_FALSE(svc->overlay_status()["enabled"].get<bool>());
  std::string msg;
  EXPECT_EQ(status_of([&] { ip_reserve({{"runner", "solo"}}); }, &msg), 400);
  EXPECT_EQ(msg, "overlay network is disabled");
  EXPECT_EQ(status_of([&] { svc->ip_stats(); }), 400);
  EXPECT_EQ(status_of([&] { svc->cleanup(); }), 400);
  EXPECT_EQ(status_of([&] { svc->release_runner("solo"); }), 400);
  EXPECT_EQ(status_of([&] { svc->ip_info("solo"); }), 400);
}

TEST_F(OverlayServiceTest, HeartbeatTimeoutMarksRunnersOffline) {
  reg("gpu1", "192.168.1.21");
  EXPECT_EQ(status_of([&] { svc->heartbeat("nobody"); }), 404);
  advance_ms(30'000);  // HEARTBEAT_INTERVAL_SECONDS 5 x HEARTBEAT_TIMEOUT_FACTOR 6
  svc->tick();
  EXPECT_TRUE(svc->allocations().at(0).is_active);
  advance_ms(1);
  svc->tick();
  EXPECT_FALSE(svc->allocations().at(0).is_active);
  EXPECT_EQ(svc->nodes()[0]["status"], "offline");
  EXPECT_FALSE(svc->overlay_status()["allocations"][0]["is_active"].get<bool>());
  svc->heartbeat("gpu1");
  EXPECT_EQ(svc->nodes()[0]["status"], "online");
  EXPECT_EQ(svc->allocations().at(0).last_used_ms, now.load());
}

TEST_F(OverlayServiceTest, EvictionExhaustionAndObserverOrder) {
  svc.reset();
  config.overlay_subnet = SubnetScheme::parse("10.0.0.0/22/2/8");  // 3 runner ids
  start();
  Recorder rec;
  // Calling back into the service from the observer proves no service lock is held.
  rec.during_call = [&] {
    auto f = std::async(std::launch::async, [&] { return svc->allocations().size(); });
    EXPECT_EQ(f.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  };
  svc->set_observer(&rec);
  reg("a", "192.168.1.1");
  advance_ms(1000);
  reg("b", "192.168.1.2");
  advance_ms(1000);
  reg("c", "192.168.1.3");
  // A full pool of active runners: registered all the same, without an overlay (KohakuRiver
  // answers `overlay: null`), and told why; heartbeats keep it so until an id is free.
  json full = reg("d", "192.168.1.4");
  EXPECT_TRUE(full["overlay"].is_null()) << full;
  const std::string msg = full["overlay_reason"];
  EXPECT_NE(msg.find("pool of 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("all of them are active"), std::string::npos) << msg;
  json hb = svc->heartbeat("d");
  EXPECT_TRUE(hb["overlay"].is_null()) << hb;
  EXPECT_EQ(svc->overlay_status()["without_overlay"][0]["hostname"], "d");

  ip_reserve({{"runner", "a"}});
  advance_ms(29'500);
  svc->heartbeat("c");
  advance_ms(1000);
  svc->tick();  // a and b are now inactive; a is the least recently used
  auto d = reg("d", "192.168.1.4");
  EXPECT_EQ(d["overlay"]["runner_id"], 1);
  EXPECT_EQ(status_of([&] { svc->ip_info("a"); }), 404);
  EXPECT_EQ(svc->ip_info("d")["reserved"], 0) << "the evicted runner's reservations are gone";
  EXPECT_EQ(rec.events,
            (std::vector<std::string>{"allocated a 1 192.168.1.1", "allocated b 2 192.168.1.2",
                                      "allocated c 3 192.168.1.3", "released a 1",
                                      "allocated d 1 192.168.1.4"}));

  // Reconnect from a new address: same id, observer told about the new address.
  reg("c", "192.168.7.7");
  EXPECT_EQ(rec.events.back(), "allocated c 3 192.168.7.7");
}

TEST_F(OverlayServiceTest, StatusReleaseAndCleanup) {
  reg("a", "192.168.1.1");
  reg("b", "192.168.1.2");
  reg("c", "192.168.1.3");
  auto st = svc->overlay_status();
  EXPECT_TRUE(st["enabled"].get<bool>());
  EXPECT_EQ(st["subnet_config"], "10.128.0.0/12/6/14");
  EXPECT_EQ(st["host_ip"], "10.128.0.1/12");
  ASSERT_EQ(st["allocations"].size(), 3u);
  const auto& a0 = st["allocations"][0];
  EXPECT_EQ(a0["runner_name"], "a");
  EXPECT_EQ(a0["subnet"], "10.128.64.0/18");
  EXPECT_EQ(a0["gateway"], "10.128.64.1");
  EXPECT_EQ(a0["physical_ip"], "192.168.1.1");
  EXPECT_EQ(a0["vxlan_device"], "vxkr1");
  EXPECT_EQ(a0["last_used"], "2027-01-15T08:00:00Z");
  const auto& s = st["stats"];
  EXPECT_EQ(s["total_allocations"], 3);
  EXPECT_EQ(s["active_allocations"], 3);
  EXPECT_EQ(s["inactive_allocations"], 0);
  EXPECT_EQ(s["available_ids"], 60);
  EXPECT_EQ(s["max_runners"], 63);
  EXPECT_EQ(s["overlay_network"], "10.128.0.0/12");
  EXPECT_EQ(s["base_vxlan_id"], 100);
  EXPECT_EQ(s["vxlan_port"], 4789);
  EXPECT_EQ(s["mtu"], 1450);

  EXPECT_EQ(status_of([&] { svc->release_runner("a"); }), 409) << "active";
  // Nothing to release is an answer, as in KohakuRiver (its CLI prints the reason).
  EXPECT_EQ(svc->release_runner("zzz"),
            (json{{"released", false}, {"reason", "No allocation found for zzz"}}));
  advance_ms(20'000);
  svc->heartbeat("c");
  advance_ms(20'000);
  svc->tick();
  auto rel = svc->release_runner("runner_1");
  EXPECT_EQ(rel, (json{{"released", true}, {"runner_name", "a"}}));
  EXPECT_EQ(svc->cleanup(), (json{{"cleaned_count", 1}}));
  EXPECT_EQ(svc->allocations().size(), 1u);
  EXPECT_EQ(svc->allocations()[0].hostname, "c");
  // A released runner heartbeating again is told to register again.
  EXPECT_EQ(status_of([&] { svc->heartbeat("a"); }), 404);
  EXPECT_EQ(reg("a", "192.168.1.1")["overlay"]["runner_id"], 1);
}

TEST_F(OverlayServiceTest, ObserverMayCallBackIntoTheService) {
  Recorder rec;
  svc->set_observer(&rec);
  reg("a", "192.168.1.1");
  reg("b", "192.168.1.2");
  advance_ms(40'000);
  svc->tick();
  bool nested = false;
  // Releasing "a" makes the observer clean up the rest from inside its callback.
  rec.during_call = [&] {
    if (nested) return;
    nested = true;
    svc->cleanup();
  };
  auto done = std::make_shared<std::promise<void>>();
  auto finished = done->get_future();
  std::thread([this, done] {
    svc->release_runner("a");
    done->set_value();
  }).detach();
  if (finished.wait_for(std::chrono::seconds(10)) != std::future_status::ready) {
    std::fprintf(stderr, "release_runner deadlocked in a re-entrant observer call\n");
    std::_Exit(1);  // the stuck thread still uses the service; tearing it down would crash
  }
  EXPECT_EQ(rec.events,
            (std::vector<std::string>{"allocated a 1 192.168.1.1", "allocated b 2 192.168.1.2",
                                      "released a 1", "released b 2"}));
  EXPECT_TRUE(svc->allocations().empty());
}

TEST_F(OverlayServiceTest, CredentialGuardsMovesAndReleaseForgetsIt) {
  json first = register_runner({{"hostname", "gpu1"}, {"url", "http://192.168.1.21:8001"}});
  const std::string credential = first.at("runner_credential");
  auto move = [&](const std::string& presented) {
    return status_of([&] {
      register_runner({{"hostname", "gpu1"}, {"url", "http://192.168.1.99:8001"}}, presented);
    });
  };
  EXPECT_EQ(move(""), 403);
  EXPECT_EQ(move("nope"), 403);
  EXPECT_EQ(svc->allocations().at(0).physical_ip.to_string(), "192.168.1.21");
  // An operator re-homes a runner that lost its credential by releasing it once inactive.
  advance_ms(31'000);
  svc->tick();
  svc->release_runner("gpu1");
  json again = register_runner({{"hostname", "gpu1"}, {"url", "http://192.168.1.99:8001"}});
  ASSERT_TRUE(again.contains("runner_credential"));
  EXPECT_NE(again["runner_credential"], credential);
  EXPECT_EQ(svc->allocations().at(0).physical_ip.to_string(), "192.168.1.99");
}

}  // namespace
}  // namespace kohaku::test
