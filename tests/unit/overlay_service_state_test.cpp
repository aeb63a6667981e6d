// OverlayService state across restarts: the journal (host/overlay/overlay_journal.h), its
// replay, compaction, torn and corrupted files, kill -9, placeholders.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <string>

#include "common/crash_safe_file.h"
#include "host/state/state_store.h"
#include "unit/overlay_service_fixture.h"

namespace kohaku::test {
namespace {

TEST_F(OverlayServiceTest, RestartKeepsRunnersTokensAndUsedIps) {
  reg("gpu1", "192.168.1.21");
  reg("gpu2", "192.168.1.22");
  std::string token = ip_reserve({{"runner", "gpu2"}})["token"];
  std::string used = ip_reserve({{"runner", "gpu2"}})["token"];
  ip_use({{"token", used}, {"container_id", "c9"}});
  ip_use({{"runner", "gpu1"}, {"ip", "10.128.64.77"}, {"container_id", "docker-own"}},
         credentials["gpu1"]);
  restart();
  auto v = ip_validate({{"token", token}, {"runner", "gpu2"}});
  EXPECT_TRUE(v["valid"].get<bool>());
  EXPECT_EQ(v["ip"], "10.128.128.2");
  EXPECT_TRUE(ip_validate({{"token", used}})["is_used"].get<bool>());
  EXPECT_EQ(svc->ip_info("gpu1")["used"], 1);
  EXPECT_EQ(reg("gpu2", "192.168.1.22")["overlay"]["runner_id"], 2);
  EXPECT_EQ(reg("gpu3", "192.168.1.23")["overlay"]["runner_id"], 3);
  EXPECT_EQ(ip_reserve({{"runner", "gpu2"}})["ip"], "10.128.128.4") << "no IP handed out twice";
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
  std::string token = ip_reserve({{"runner", "gpu1"}})["token"];
  svc.reset();  // no compaction at shutdown: the reservation lives in the journal only
  auto journal = fs::path(config.state_dir) / StateStore::kJournalName;
  ASSERT_GT(fs::file_size(journal), 0u);
  std::string torn = AppendJournal::encode(R"({"op":"batch","changes":[],"seq":99})");
  {
    std::ofstream out(journal, std::ios::binary | std::ios::app);
    out << torn.substr(0, torn.size() / 2);
  }
  start();
  EXPECT_TRUE(ip_validate({{"token", token}})["valid"].get<bool>());
  EXPECT_EQ(svc->ip_info("gpu1")["reserved"], 1);
}

TEST_F(OverlayServiceTest, CorruptedJournalStopsStartupNamingTheFile) {
  reg("gpu1", "192.168.1.21");
  ip_reserve({{"runner", "gpu1"}});
  ip_reserve({{"runner", "gpu1"}});
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
  std::string before = ip_reserve({{"runner", "gpu1"}})["token"];
  svc->compact();
  std::string after = ip_reserve({{"runner", "gpu1"}})["token"];
  ip_release({{"token", before}});
  restart();
  EXPECT_FALSE(ip_validate({{"token", before}})["valid"].get<bool>());
  EXPECT_TRUE(ip_validate({{"token", after}})["valid"].get<bool>());
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
          std::string token =
              s.ip_reserve(parse_ip_reserve({{"runner", "gpu1"}, {"ttl", "1800"}}))["token"];
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
      EXPECT_TRUE(ip_validate({{"token", token}})["valid"].get<bool>()) << token;
    auto info = svc->ip_info("gpu1");
    // At most one reservation was stored but not yet answered when the kill landed.
    EXPECT_GE(info["reserved"].get<size_t>(), answered_tokens.size());
    EXPECT_LE(info["reserved"].get<size_t>(), answered_tokens.size() + round + 1);
    auto list = ip_reservations({});
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
    svc->heartbeat("gpu1");
  }
  EXPECT_EQ(fs::file_size(journal), size) << "50 s of heartbeats wrote nothing";
  advance_ms(10'000);
  svc->heartbeat("gpu1");
  EXPECT_GT(fs::file_size(journal), size);
  int64_t recorded = now.load();
  advance_ms(5'000);
  svc->heartbeat("gpu1");
  restart();
  EXPECT_EQ(svc->allocations().at(0).last_used_ms, recorded);
  EXPECT_TRUE(svc->allocations().at(0).is_active);
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

}  // namespace
}  // namespace kohaku::test
