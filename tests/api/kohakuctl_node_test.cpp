// KohakuRiver's `kohakuriver node ...` commands typed as `kohakuctl node ...`, against a running
// kohaku-hostd: every form of issue 14's list, what it prints, --json, and the refusals.
#include <gtest/gtest.h>

#include <fstream>

#include "host_api_helpers.h"
#include "hostd_process.h"
#include "support/text.h"

namespace kohaku::test {
namespace {

using test_support::has;

class KohakuctlNode : public ::testing::Test {
 protected:
  void SetUp() override {
    hostd_.start();
    // As an upstream runner reports itself: cores, memory, GPUs, NUMA.
    register_runner(
        hostd_.client(), "gpu-01", "10.1.0.5",
        {{"total_cores", 32},
         {"total_ram_bytes", 68719476736},
         {"numa_topology", {{"0", json::array({0, 1, 2, 3})}}},
         {"gpu_info",
          json::array(
              {{{"name", "RTX 4090"}, {"memory_total", 25769803776}, {"utilization", 12}}})}});
    register_runner(hostd_.client(), "gpu-02", "10.1.0.6", {{"total_cores", 8}});
    // Memory in use comes with the heartbeat, as upstream's runners send it.
    auto hb = hostd_.client().put(
        "/api/heartbeat/gpu-01",
        json{{"memory_used_bytes", 17179869184}, {"memory_total_bytes", 68719476736}});
    ASSERT_EQ(hb.status, 200) << hb.body;
  }

  ProcessResult ctl(std::vector<std::string> args) {
    std::vector<std::string> argv{bin_path("kohakuctl"), "--host", hostd_.url()};
    argv.insert(argv.end(), args.begin(), args.end());
    return run_program(argv, {{"KOHAKU_HOST", ""},
                              {"KOHAKU_TOKEN", ""},
                              {"KOHAKU_TOKEN_FILE", (hostd_.state_dir() / "api_token").string()}});
  }

  // Runs and expects exit 0; returns stdout.
  std::string ok(std::vector<std::string> args) {
    auto r = ctl(args);
    EXPECT_EQ(r.exit_code, 0) << r.err << r.out;
    return r.out;
  }

  Hostd hostd_;
};

// The docs' "Overlay Network Status" panel: host IP with prefix, bridge, totals, active and
// inactive, available ids; then the allocations table with Active/Inactive.
TEST_F(KohakuctlNode, OverlayShowsTheStatusPanelAndAllocations) {
  const std::string out = ok({"node", "overlay"});
  EXPECT_TRUE(has(out, "Host IP:")) << out;
  EXPECT_TRUE(has(out, "10.128.0.1/12")) << out;
  EXPECT_TRUE(has(out, "Bridge:")) << out;
  EXPECT_TRUE(has(out, "kohaku-overlay")) << out;
  EXPECT_TRUE(has(out, "Total allocations:  2")) << out;
  EXPECT_TRUE(has(out, "Active:             2")) << out;
  EXPECT_TRUE(has(out, "Inactive:           0")) << out;
  EXPECT_TRUE(has(out, "Available IDs:      61/63")) << out;
  EXPECT_TRUE(has(out, "Runner Allocations")) << out;
  EXPECT_TRUE(has(out, "Status")) << out;
  EXPECT_TRUE(has(out, "gpu-02")) << out;
  EXPECT_TRUE(has(out, "Active ")) << out;
  json j = json::parse(ok({"node", "overlay", "--json"}));
  EXPECT_EQ(j, get_json(hostd_.client(), "/api/overlay/status"));
}

TEST_F(KohakuctlNode, OverlayOfAnUnknownHostIsTheHostsError) {
  auto unknown = ctl({"node", "overlay", "ghost"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_TRUE(has(unknown.err, "404")) << unknown.err;
}

TEST_F(KohakuctlNode, SummaryListStatusHealth) {
  const std::string summary = ok({"node", "summary"});
  EXPECT_TRUE(has(summary, "Nodes:   2 online / 0 offline")) << summary;
  EXPECT_TRUE(has(summary, "Cores:   40 available / 40 total")) << summary;
  EXPECT_TRUE(has(summary, "16.0GB used / 64.0GB total")) << summary;
  EXPECT_TRUE(has(summary, "GPUs:    1 total")) << summary;
  json s = json::parse(ok({"node", "summary", "--json"}));
  EXPECT_EQ(s["total_cores"], 40);

  const std::string list = ok({"node", "list"});
  EXPECT_TRUE(has(list, "Hostname")) << list;
  EXPECT_TRUE(has(list, "gpu-01")) << list;
  EXPECT_TRUE(has(list, "16.0GB/64.0GB")) << list;
  EXPECT_TRUE(has(list, "10.128.64.0/18")) << list;
  EXPECT_TRUE(has(ok({"node", "list", "-s", "offline"}), "No nodes found.")) << "filter";
  EXPECT_EQ(json::parse(ok({"node", "list", "--status", "online", "--json"})).size(), 2u);

  const std::string status = ok({"node", "status", "gpu-01"});
  EXPECT_TRUE(has(status, "Hostname:")) << status;
  EXPECT_TRUE(has(status, "Total cores:      32")) << status;
  EXPECT_TRUE(has(status, "RTX 4090")) << status;
  EXPECT_TRUE(has(status, "NUMA node")) << status;
  EXPECT_EQ(json::parse(ok({"--json", "node", "status", "gpu-02"}))["total_cores"], 8);
  auto missing = ctl({"node", "status", "ghost"});
  EXPECT_EQ(missing.exit_code, 1);
  EXPECT_TRUE(has(missing.err, "node 'ghost' not found")) << missing.err;

  const std::string health = ok({"node", "health"});
  EXPECT_TRUE(has(health, "2 online")) << health;
  EXPECT_TRUE(has(health, "gpu-02")) << health;
  EXPECT_TRUE(has(ok({"node", "health", "gpu-02"}), "Hostname:")) << "one node";
}

TEST_F(KohakuctlNode, IpReserveListInfoReleaseInTheDocsForms) {
  // kohakuctl node ip-reserve gpu-01 --ttl 300, then with the short options.
  json r = json::parse(ok({"node", "ip-reserve", "gpu-01", "--ttl", "300", "--json"}));
  EXPECT_EQ(r["ttl_seconds"], 300);
  json s = json::parse(
      ok({"node", "ip-reserve", "gpu-01", "-i", "10.128.64.40", "-t", "120", "--json"}));
  EXPECT_EQ(s["ip"], "10.128.64.40");
  EXPECT_EQ(s["ttl_seconds"], 120);
  const std::string token = s["token"];
  // Defaults as upstream: ttl 300 when not given.
  EXPECT_EQ(json::parse(ok({"node", "ip-reserve", "gpu-02", "--json"}))["ttl_seconds"], 300);

  const std::string list = ok({"node", "ip-list", "gpu-01"});
  EXPECT_TRUE(has(list, "10.128.64.40")) << list;
  EXPECT_TRUE(has(list, "Pending")) << list;
  EXPECT_TRUE(has(list, "Token (truncated)")) << list;
  EXPECT_FALSE(has(list, "gpu-02")) << list;
  EXPECT_FALSE(has(list, token)) << "full token in the list";
  EXPECT_TRUE(has(ok({"node", "ip-list", "-r", "gpu-02"}), "gpu-02"));
  EXPECT_TRUE(has(ok({"node", "ip-list"}), "gpu-02"));

  const std::string info = ok({"node", "ip-info", "gpu-01", "--token", token});
  EXPECT_TRUE(has(info, "Reserved:")) << info;
  EXPECT_TRUE(has(info, "Reservation valid:  yes")) << info;
  EXPECT_TRUE(has(info, "10.128.64.40")) << info;
  const std::string elsewhere = ok({"node", "ip-info", "gpu-02", "--token", token});
  EXPECT_TRUE(has(elsewhere, "Reservation valid:  no")) << elsewhere;

  // ip-release HOST --token T checks T is on HOST: nothing changes otherwise.
  auto wrong = ctl({"node", "ip-release", "gpu-02", "--token", token});
  EXPECT_EQ(wrong.exit_code, 1);
  EXPECT_TRUE(has(wrong.err, "nothing changed")) << wrong.err;
  EXPECT_TRUE(has(ok({"node", "ip-list", "gpu-01"}), "10.128.64.40"));
  ok({"node", "ip-release", "gpu-01", "--token", token});
  EXPECT_FALSE(has(ok({"node", "ip-list", "gpu-01"}), "10.128.64.40"));
  // ip-release TOKEN.
  ok({"node", "ip-release", r["token"].get<std::string>()});
  EXPECT_EQ(json::parse(ok({"node", "ip-stats", "--json"}))["total_reservations"], 1);
}

TEST_F(KohakuctlNode, IpAvailableLimitsToTwentyPerRunnerByDefault) {
  json all = json::parse(ok({"node", "ip-available", "--json"}));
  EXPECT_EQ(all["available_ips"]["gpu-01"].size(), 20u);
  EXPECT_EQ(all["available_ips"]["gpu-02"].size(), 20u);
  json one = json::parse(ok({"node", "ip-available", "gpu-01", "-l", "3", "--json"}));
  EXPECT_EQ(one["available_ips"].size(), 1u);
  EXPECT_EQ(one["available_ips"]["gpu-01"].size(), 3u);
  const std::string table = ok({"node", "ip-available", "--runner", "gpu-02", "--limit", "2"});
  EXPECT_TRUE(has(table, "10.128.128.2 10.128.128.3")) << table;
}

TEST_F(KohakuctlNode, OverlayReleaseAndCleanupInNodeForm) {
  auto active = ctl({"node", "overlay-release", "gpu-01", "-f"});
  EXPECT_EQ(active.exit_code, 1);  // active runners are not released (docs/api.md)
  EXPECT_TRUE(has(active.err, "active")) << active.err;
  EXPECT_TRUE(has(ok({"node", "overlay-cleanup", "--force"}), "Cleaned up 0"));
  auto refused = ctl({"node", "overlay-cleanup"});  // stdin is not a terminal
  EXPECT_EQ(refused.exit_code, 1);
  EXPECT_TRUE(has(refused.err, "-f")) << refused.err;
}

TEST_F(KohakuctlNode, AliasesGiveTheSameAnswers) {
  EXPECT_EQ(json::parse(ok({"ip-available", "--json"})),
            json::parse(ok({"node", "ip-available", "--json"})));
  EXPECT_EQ(json::parse(ok({"ip-stats", "--json"})),
            json::parse(ok({"node", "ip-stats", "--json"})));
}

TEST_F(KohakuctlNode, UsageErrorsExit2WithTheCommandsHelp) {
  auto r = ctl({"node", "ip-reserve"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_TRUE(has(r.err, "Usage: kohakuctl node ip-reserve")) << r.err;
  EXPECT_EQ(ctl({"node", "ip-available", "-l", "lots"}).exit_code, 2);
  EXPECT_EQ(ctl({"node", "ip-list", "gpu-01", "-r", "gpu-02"}).exit_code, 2);
  auto help = ctl({"node", "ip-release", "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(has(help.out, "--token")) << help.out;
}

// Without --config, kohaku-hostd reads ~/.kohakuriver/host_config.py and says so in its log.
TEST(HostdDefaultConfig, ReadsTheHomeFileAndLogsIt) {
  TempDir home("kohaku-home");
  std::filesystem::create_directories(home.path() / ".kohakuriver");
  std::ofstream(home.path() / ".kohakuriver" / "host_config.py")
      << "OVERLAY_HOST_IP: str = \"10.128.0.7\"\nOVERLAY_BRIDGE_NAME: str = \"br-kr\"\n";
  Hostd hostd;
  hostd.set_home(home.path());
  hostd.start();
  json status = get_json(hostd.client(), "/api/overlay/status");
  EXPECT_TRUE(status["host_ip"].get<std::string>().starts_with("10.128.0.7")) << status.dump();
  EXPECT_EQ(status["bridge_name"], "br-kr");
  const std::string path = (home.path() / ".kohakuriver" / "host_config.py").string();
  EXPECT_TRUE(has(hostd.log(), "reading " + path + " (no --config given)")) << hostd.log();
  EXPECT_FALSE(has(hostd.log(), "unknown key")) << hostd.log();
}

}  // namespace
}  // namespace kohaku::test
