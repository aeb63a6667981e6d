#include "host/overlay/overlay_service.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <set>
#include <thread>

#include "common/crash_safe_file.h"
#include "host/overlay/runner_registry.h"
#include "host/state/state_store.h"
#include "support/temp_dir.h"

namespace kohaku {
namespace {

using test_support::TempDir;

namespace fs = std::filesystem;
using nlohmann::json;

int status_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const ApiError& e) {
    if (message) *message = e.what();
    return e.status();
  }
  return 200;
}

struct Recorder : AllocationObserver {
  std::vector<std::string> events;
  std::function<void()> during_call;
  void on_allocated(const RunnerAllocation& a) override {
    events.push_back("allocated " + a.hostname + " " + std::to_string(a.id) + " " +
                     a.physical_ip.to_string());
    if (during_call) during_call();
  }
  void on_released(const RunnerAllocation& a) override {
    events.push_back("released " + a.hostname + " " + std::to_string(a.id));
    if (during_call) during_call();
  }
};

class OverlayServiceTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::atomic<int64_t> now{1'800'000'000'000};  // 2027-01-15T08:00:00Z
  HostConfig config;
  std::unique_ptr<OverlayService> svc;

  OverlayServiceTest() {
    config.state_dir = (dir.path() / "state").string();
    config.overlay_enabled = true;
    config.overlay_subnet = SubnetScheme::parse("10.128.0.0/12/6/14");
    config.host_reachable_address = Ipv4Addr::parse("192.168.1.10");
    start();
  }

  void start() {
    svc = std::make_unique<OverlayService>(config, [this] { return now.load(); });
  }
  void restart() {
    svc.reset();
    start();
  }
  void advance_ms(int64_t ms) { now += ms; }

  // Registers as the real runner does: presenting the credential it was issued, if any.
  json reg(const std::string& host, const std::string& ip) {
    json answer = svc->register_runner({{"hostname", host}, {"url", "http://" + ip + ":8001"}},
                                       credentials[host]);
    if (answer.contains("runner_credential")) credentials[host] = answer["runner_credential"];
    return answer;
  }
  std::map<std::string, std::string> credentials;
};

TEST_F(OverlayServiceTest, RegisterAnswersTheOverlayPlan) {
  auto r = svc->register_runner({{"hostname", "gpu1"},
                                 {"url", "http://192.168.1.21:8001"},
                                 {"vxlan_id", 100},
                                 {"vxlan_port", 4789},
                                 {"mtu", 1450},
                                 {"total_cores", 64}});
  EXPECT_TRUE(r["created"].get<bool>());
  const auto& o = r["overlay"];
  EXPECT_EQ(o["runner_id"], 1);
  EXPECT_EQ(o["overlay_subnet"], "10.128.64.0/18");
  EXPECT_EQ(o["overlay_gateway"], "10.128.64.1");
  EXPECT_EQ(o["host_overlay_ip"], "10.128.0.1");
  EXPECT_EQ(o["host_physical_ip"], "192.168.1.10");
  EXPECT_EQ(o["overlay_network_cidr"], "10.128.0.0/12");
  EXPECT_EQ(o["host_ip_on_runner_subnet"], "10.128.64.254");
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
    EXPECT_EQ(status_of([&] { svc->register_runner(body); }, &msg), 400) << body.dump();

  EXPECT_EQ(status_of(
                [&] {
                  svc->register_runner(
                      {{"hostname", "h"}, {"url", "http://192.168.1.2:1"}, {"vxlan_id", 200}});
                },
                &msg),
            409);
  EXPECT_EQ(msg, "VXLAN id base mismatch: runner has 200, host has 100");
  EXPECT_EQ(status_of(
                [&] {
                  svc->register_runner(
                      {{"hostname", "h"}, {"url", "http://192.168.1.2:1"}, {"vxlan_port", 8472}});
                },
                &msg),
            409);
  EXPECT_EQ(msg, "VXLAN port mismatch: runner has 8472, host has 4789");
  EXPECT_EQ(status_of(
                [&] {
                  svc->register_runner(
                      {{"hostname", "h"}, {"url", "http://192.168.1.2:1"}, {"mtu", 1400}});
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
  auto r = svc->register_runner({{"hostname", "solo"}, {"url", "http://127.0.0.1:8001"}});
  EXPECT_TRUE(r["created"].get<bool>());
  EXPECT_FALSE(r.contains("overlay"));
  EXPECT_EQ(svc->nodes().size(), 1u);
  EXPECT_FALSE(svc->overlay_status()["enabled"].get<bool>());
  std::string msg;
  EXPECT_EQ(status_of([&] { svc->ip_reserve({{"runner", "solo"}}); }, &msg), 400);
  EXPECT_EQ(msg, "overlay network is disabled");
  EXPECT_EQ(status_of([&] { svc->ip_stats(); }), 400);
  EXPECT_EQ(status_of([&] { svc->cleanup(); }), 400);
  EXPECT_EQ(status_of([&] { svc->release_runner("solo"); }), 400);
  EXPECT_EQ(status_of([&] { svc->ip_info("solo"); }), 400);
}

TEST_F(OverlayServiceTest, HeartbeatTimeoutMarksRunnersOffline) {
  reg("gpu1", "192.168.1.21");
  EXPECT_EQ(status_of([&] { svc->heartbeat("nobody", json::object()); }), 404);
  advance_ms(30'000);  // HEARTBEAT_INTERVAL_SECONDS 5 x HEARTBEAT_TIMEOUT_FACTOR 6
  svc->tick();
  EXPECT_TRUE(svc->allocations().at(0).is_active);
  advance_ms(1);
  svc->tick();
  EXPECT_FALSE(svc->allocations().at(0).is_active);
  EXPECT_EQ(svc->nodes()[0]["status"], "offline");
  EXPECT_FALSE(svc->overlay_status()["allocations"][0]["is_active"].get<bool>());
  svc->heartbeat("gpu1", json::object());
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
  std::string msg;
  EXPECT_EQ(status_of([&] { reg("d", "192.168.1.4"); }, &msg), 503);
  EXPECT_NE(msg.find("pool of 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("all of them are active"), std::string::npos) << msg;

  svc->ip_reserve({{"runner", "a"}});
  advance_ms(29'500);
  svc->heartbeat("c", json::object());
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
  EXPECT_EQ(st["host_ip"], "10.128.0.1");
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
  EXPECT_EQ(status_of([&] { svc->release_runner("zzz"); }), 404);
  advance_ms(20'000);
  svc->heartbeat("c", json::object());
  advance_ms(20'000);
  svc->tick();
  auto rel = svc->release_runner("runner_1");
  EXPECT_EQ(rel, (json{{"released", true}, {"runner_name", "a"}}));
  EXPECT_EQ(svc->cleanup(), (json{{"cleaned_count", 1}}));
  EXPECT_EQ(svc->allocations().size(), 1u);
  EXPECT_EQ(svc->allocations()[0].hostname, "c");
  // A released runner heartbeating again is told to register again.
  EXPECT_EQ(status_of([&] { svc->heartbeat("a", json::object()); }), 404);
  EXPECT_EQ(reg("a", "192.168.1.1")["overlay"]["runner_id"], 1);
}

TEST_F(OverlayServiceTest, ReservationLifecycleThroughTheApi) {
  reg("gpu1", "192.168.1.21");
  auto r = svc->ip_reserve({{"runner", "gpu1"}, {"ttl", "120"}});
  EXPECT_EQ(r["ip"], "10.128.64.2");
  EXPECT_EQ(r["runner"], "gpu1");
  EXPECT_EQ(r["ttl_seconds"], 120);
  EXPECT_EQ(r["expires_at"], "2027-01-15T08:02:00Z");
  std::string token = r["token"];
  EXPECT_EQ(token.size(), 32u);
  EXPECT_EQ(token.find_first_not_of("0123456789abcdef"), std::string::npos);
  EXPECT_NE(svc->ip_reserve({{"runner", "gpu1"}})["token"], token);

  auto v = svc->ip_validate({{"token", token}});
  EXPECT_TRUE(v["valid"].get<bool>());
  EXPECT_EQ(v["ip"], "10.128.64.2");
  EXPECT_FALSE(v["is_used"].get<bool>());
  EXPECT_FALSE(svc->ip_validate({{"token", "0123456789abcdef0123456789abcdef"}})["valid"]);

  auto list = svc->ip_reservations({{"runner", "gpu1"}});
  ASSERT_EQ(list["reservations"].size(), 2u);
  EXPECT_EQ(list["reservations"][0]["token"], token.substr(0, 8) + "...");

  auto used = svc->ip_use({{"token", token}, {"container_id", "c1"}});
  EXPECT_EQ(used["ip"], "10.128.64.2");
  EXPECT_EQ(status_of([&] { svc->ip_release({{"token", token}}); }), 409);
  svc->ip_use({{"runner", "gpu1"}, {"ip", "10.128.64.40"}, {"container_id", "c1"}},
              credentials["gpu1"]);
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
  EXPECT_EQ(svc->ip_reservations({})["reservations"].size(), 1u);
  EXPECT_EQ(svc->ip_reservations({{"include_used", "true"}})["reservations"].size(), 3u);

  auto freed = svc->ip_release({{"container_id", "c1"}, {"runner", "gpu1"}}, credentials["gpu1"]);
  EXPECT_EQ(freed["released_count"], 2);
  EXPECT_EQ(svc->ip_info("gpu1")["used"], 0);
  auto avail = svc->ip_available({{"runner", "gpu1"}, {"limit", "3"}});
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
    EXPECT_EQ(status_of([&] { svc->ip_reserve({{"runner", "gpu1"}, {"ttl", ttl}}); }), 400) << ttl;
  for (const char* ip :
       {"10.128.64.0", "10.128.64.1", "10.128.64.254", "10.128.127.255", "10.128.128.5", "nope"})
    EXPECT_EQ(status_of([&] { svc->ip_reserve({{"runner", "gpu1"}, {"ip", ip}}); }), 400) << ip;
  EXPECT_EQ(status_of([&] { svc->ip_reserve({}); }), 400);
  EXPECT_EQ(status_of([&] { svc->ip_reserve({{"runner", "ghost"}}); }), 404);
  EXPECT_EQ(svc->ip_reserve({{"runner", "runner_1"}, {"ip", "10.128.64.9"}})["ip"], "10.128.64.9");
  EXPECT_EQ(status_of([&] { svc->ip_reserve({{"runner", "gpu1"}, {"ip", "10.128.64.9"}}); }), 409);
  EXPECT_EQ(status_of([&] { svc->ip_available({{"limit", "0"}}); }), 400);
  EXPECT_EQ(status_of([&] { svc->ip_available({{"limit", "1001"}}); }), 400);
  EXPECT_EQ(status_of([&] { svc->ip_reservations({{"include_used", "maybe"}}); }), 400);
  EXPECT_EQ(status_of([&] { svc->ip_use({{"token", "x"}}); }), 400) << "container_id missing";
  EXPECT_EQ(status_of([&] { svc->ip_use({{"token", "x"}, {"container_id", "c"}}); }), 404);
  EXPECT_EQ(status_of([&] { svc->ip_release({{"token", "x"}}); }), 404);
  EXPECT_EQ(status_of([&] { svc->ip_release({}); }), 400);
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
        got[t].push_back(svc->ip_reserve({{"runner", "gpu1"}})["ip"].get<std::string>());
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

TEST_F(OverlayServiceTest, RestartKeepsRunnersTokensAndUsedIps) {
  reg("gpu1", "192.168.1.21");
  reg("gpu2", "192.168.1.22");
  std::string token = svc->ip_reserve({{"runner", "gpu2"}})["token"];
  std::string used = svc->ip_reserve({{"runner", "gpu2"}})["token"];
  svc->ip_use({{"token", used}, {"container_id", "c9"}});
  svc->ip_use({{"runner", "gpu1"}, {"ip", "10.128.64.77"}, {"container_id", "docker-own"}},
              credentials["gpu1"]);
  restart();
  auto v = svc->ip_validate({{"token", token}, {"runner", "gpu2"}});
  EXPECT_TRUE(v["valid"].get<bool>());
  EXPECT_EQ(v["ip"], "10.128.128.2");
  EXPECT_TRUE(svc->ip_validate({{"token", used}})["is_used"].get<bool>());
  EXPECT_EQ(svc->ip_info("gpu1")["used"], 1);
  EXPECT_EQ(reg("gpu2", "192.168.1.22")["overlay"]["runner_id"], 2);
  EXPECT_EQ(reg("gpu3", "192.168.1.23")["overlay"]["runner_id"], 3);
  EXPECT_EQ(svc->ip_reserve({{"runner", "gpu2"}})["ip"], "10.128.128.4")
      << "no IP handed out twice";
  // Restarted runners get a grace period instead of an instant timeout.
  advance_ms(3'600'000);
  restart();
  svc->tick();
  EXPECT_TRUE(svc->allocations().at(0).is_active);
  for (const char* f : {StateStore::kSnapshotName, StateStore::kJournalName}) {
    struct stat st {};
    ASSERT_EQ(::stat((fs::path(config.state_dir) / f).c_str(), &st), 0);
    EXPECT_EQ(st.st_mode & 0777, 0600u) << f;
  }
}

TEST_F(OverlayServiceTest, TornJournalTailIsIgnoredOnRestart) {
  reg("gpu1", "192.168.1.21");
  std::string token = svc->ip_reserve({{"runner", "gpu1"}})["token"];
  svc.reset();  // no compaction at shutdown: the reservation lives in the journal only
  auto journal = fs::path(config.state_dir) / StateStore::kJournalName;
  ASSERT_GT(fs::file_size(journal), 0u);
  std::string torn = AppendJournal::encode(R"({"op":"batch","changes":[],"seq":99})");
  {
    std::ofstream out(journal, std::ios::binary | std::ios::app);
    out << torn.substr(0, torn.size() / 2);
  }
  start();
  EXPECT_TRUE(svc->ip_validate({{"token", token}})["valid"].get<bool>());
  EXPECT_EQ(svc->ip_info("gpu1")["reserved"], 1);
}

TEST_F(OverlayServiceTest, CorruptedJournalStopsStartupNamingTheFile) {
  reg("gpu1", "192.168.1.21");
  svc->ip_reserve({{"runner", "gpu1"}});
  svc->ip_reserve({{"runner", "gpu1"}});
  svc.reset();
  auto journal = fs::path(config.state_dir) / StateStore::kJournalName;
  std::string data = read_whole_file(journal);
  data[30] ^= 1;  // inside the first record, with intact ones after it
  write_file_atomically(journal, data);
  try {
    start();
    FAIL() << "expected a startup error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(journal.string()), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("offset 0"), std::string::npos) << e.what();
  }
}

TEST_F(OverlayServiceTest, ReopenAfterCompactionKeepsEverything) {
  reg("gpu1", "192.168.1.21");
  std::string before = svc->ip_reserve({{"runner", "gpu1"}})["token"];
  svc->compact();
  std::string after = svc->ip_reserve({{"runner", "gpu1"}})["token"];
  svc->ip_release({{"token", before}});
  restart();
  EXPECT_FALSE(svc->ip_validate({{"token", before}})["valid"].get<bool>());
  EXPECT_TRUE(svc->ip_validate({{"token", after}})["valid"].get<bool>());
  EXPECT_EQ(svc->ip_info("gpu1")["reserved"], 1);
}

TEST_F(OverlayServiceTest, PlaceholderFromRecoveryIsTakenOverBySamePhysicalIp) {
  EXPECT_TRUE(svc->adopt_placeholder(5, Ipv4Addr::parse("192.168.1.55")));
  EXPECT_FALSE(svc->adopt_placeholder(5, Ipv4Addr::parse("192.168.1.56")));
  restart();
  EXPECT_EQ(svc->overlay_status()["allocations"][0]["runner_name"], "runner_5");
  EXPECT_TRUE(svc->nodes().empty()) << "a placeholder is not a node";
  EXPECT_EQ(reg("other", "192.168.1.1")["overlay"]["runner_id"], 1);
  EXPECT_EQ(reg("gpu5", "192.168.1.55")["overlay"]["runner_id"], 5);
  EXPECT_EQ(svc->allocations().size(), 2u);
}

// The journal record of one registration lists every host it touched; replaying it must give
// the evicted id to the new holder whatever order the hosts appear in.
TEST_F(OverlayServiceTest, EvictionSurvivesRestartWhateverTheRecordOrder) {
  svc.reset();
  config.overlay_subnet = SubnetScheme::parse("10.0.0.0/22/2/8");  // 3 runner ids
  config.overlay_enabled = false;
  start();
  reg("a-node", "192.168.1.1");  // known node without an id, sorts first
  svc.reset();
  config.overlay_enabled = true;
  start();
  reg("b", "192.168.1.2");
  reg("c", "192.168.1.3");
  reg("d", "192.168.1.4");
  advance_ms(60'000);  // everyone inactive; b is the least recently used
  EXPECT_EQ(reg("a-node", "192.168.1.1")["overlay"]["runner_id"], 1);
  restart();
  auto all = svc->allocations();
  ASSERT_EQ(all.size(), 3u);
  EXPECT_EQ(all[0].hostname, "a-node");
  EXPECT_EQ(all[0].id, 1u);
  EXPECT_EQ(all[1].hostname, "c");
  EXPECT_EQ(all[2].hostname, "d");
}

// A real kill -9 at arbitrary moments while reservations are being made: everything the
// service answered before the kill is there after a restart, nothing appears twice.
TEST_F(OverlayServiceTest, KillNineWhileReservingLosesNothingAnsweredAndDuplicatesNothing) {
  reg("gpu1", "192.168.1.21");
  std::set<std::string> answered_tokens;
  for (int round = 0; round < 3; ++round) {
    svc.reset();  // the child owns the state directory while it runs
    int fds[2];
    ASSERT_EQ(::pipe(fds), 0);
    pid_t child = ::fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      ::close(fds[0]);
      try {
        OverlayService s(config, [this] { return now.load(); });
        while (true) {
          std::string token = s.ip_reserve({{"runner", "gpu1"}, {"ttl", "1800"}})["token"];
          token.push_back('\n');
          if (::write(fds[1], token.data(), token.size()) != static_cast<ssize_t>(token.size()))
            ::_exit(2);
        }
      } catch (...) {
        ::_exit(3);
      }
    }
    ::close(fds[1]);
    // Kill after a different number of answers each round, while the child keeps writing.
    size_t want = 5 + static_cast<size_t>(round) * 17;
    std::string buffer;
    size_t seen = 0;
    char chunk[512];
    while (seen < want) {
      ssize_t n = ::read(fds[0], chunk, sizeof chunk);
      ASSERT_GT(n, 0) << "child died on its own";
      buffer.append(chunk, static_cast<size_t>(n));
      seen = static_cast<size_t>(std::count(buffer.begin(), buffer.end(), '\n'));
    }
    ::kill(child, SIGKILL);
    int wstatus = 0;
    ASSERT_EQ(::waitpid(child, &wstatus, 0), child);
    ASSERT_TRUE(WIFSIGNALED(wstatus));
    ssize_t n;
    while ((n = ::read(fds[0], chunk, sizeof chunk)) > 0) buffer.append(chunk, size_t(n));
    ::close(fds[0]);
    for (size_t pos = 0, nl; (nl = buffer.find('\n', pos)) != std::string::npos; pos = nl + 1)
      answered_tokens.insert(buffer.substr(pos, nl - pos));

    start();
    for (const auto& token : answered_tokens)
      EXPECT_TRUE(svc->ip_validate({{"token", token}})["valid"].get<bool>()) << token;
    auto info = svc->ip_info("gpu1");
    // At most one reservation was stored but not yet answered when the kill landed.
    EXPECT_GE(info["reserved"].get<size_t>(), answered_tokens.size());
    EXPECT_LE(info["reserved"].get<size_t>(), answered_tokens.size() + round + 1);
    auto list = svc->ip_reservations({});
    std::set<std::string> ips;
    for (const auto& r : list["reservations"]) ips.insert(r["ip"].get<std::string>());
    EXPECT_EQ(ips.size(), list["reservations"].size()) << "an IP was handed out twice";
  }
}

TEST_F(OverlayServiceTest, RoutineHeartbeatsReachTheJournalOncePerMinute) {
  reg("gpu1", "192.168.1.21");
  auto journal = fs::path(config.state_dir) / StateStore::kJournalName;
  auto size = fs::file_size(journal);
  for (int i = 0; i < 10; ++i) {
    advance_ms(5'000);
    svc->heartbeat("gpu1", json::object());
  }
  EXPECT_EQ(fs::file_size(journal), size) << "50 s of heartbeats wrote nothing";
  advance_ms(10'000);
  svc->heartbeat("gpu1", json::object());
  EXPECT_GT(fs::file_size(journal), size);
  int64_t recorded = now.load();
  advance_ms(5'000);
  svc->heartbeat("gpu1", json::object());
  restart();
  EXPECT_EQ(svc->allocations().at(0).last_used_ms, recorded);
  EXPECT_TRUE(svc->allocations().at(0).is_active);
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

TEST_F(OverlayServiceTest, SnapshotWithABadRecordStopsStartupNamingTheFile) {
  svc.reset();
  auto snapshot = fs::path(config.state_dir) / StateStore::kSnapshotName;
  json doc = {{"format", 1},
              {"seq", 0},
              {"state",
               {{"subnet_config", "10.128.0.0/12/6/14"},
                {"nodes", json::array({{{"id", 1}}})},
                {"ips", json::array()}}}};
  write_file_atomically(snapshot, doc.dump());
  try {
    start();
    FAIL() << "expected a startup error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(snapshot.string()), std::string::npos) << e.what();
  }
}

TEST_F(OverlayServiceTest, CredentialGuardsMovesAndReleaseForgetsIt) {
  json first = svc->register_runner({{"hostname", "gpu1"}, {"url", "http://192.168.1.21:8001"}});
  const std::string credential = first.at("runner_credential");
  auto move = [&](const std::string& presented) {
    return status_of([&] {
      svc->register_runner({{"hostname", "gpu1"}, {"url", "http://192.168.1.99:8001"}}, presented);
    });
  };
  EXPECT_EQ(move(""), 403);
  EXPECT_EQ(move("nope"), 403);
  EXPECT_EQ(svc->allocations().at(0).physical_ip.to_string(), "192.168.1.21");
  // An operator re-homes a runner that lost its credential by releasing it once inactive.
  advance_ms(31'000);
  svc->tick();
  svc->release_runner("gpu1");
  json again = svc->register_runner({{"hostname", "gpu1"}, {"url", "http://192.168.1.99:8001"}});
  ASSERT_TRUE(again.contains("runner_credential"));
  EXPECT_NE(again["runner_credential"], credential);
  EXPECT_EQ(svc->allocations().at(0).physical_ip.to_string(), "192.168.1.99");
}

}  // namespace
}  // namespace kohaku
