// kohaku-hostd refuses to start on bad configuration, saying why.
#include <gtest/gtest.h>

#include <filesystem>

#include "host_api_helpers.h"
#include "hostd_process.h"

namespace kohaku::test {
namespace {

TEST(HostdStartup, LoopbackReachableAddressWithOverlayRefusesToStart) {
  Hostd hostd({"HOST_REACHABLE_ADDRESS=127.0.0.1"});
  int code = hostd.run_expecting_exit();
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1) << "daemon kept running";
  std::string log = hostd.log();
  EXPECT_NE(log.find("HOST_REACHABLE_ADDRESS"), std::string::npos) << log;
  EXPECT_NE(log.find("loopback"), std::string::npos) << log;
}

// The tunnels send from it: an address of another machine (or a typo) is refused at start.
TEST(HostdStartup, ReachableAddressNotOnThisMachineRefusesToStart) {
  Hostd hostd({"HOST_REACHABLE_ADDRESS=192.0.2.77"});
  EXPECT_EQ(hostd.run_expecting_exit(), 2);
  std::string log = hostd.log();
  EXPECT_NE(log.find("HOST_REACHABLE_ADDRESS = '192.0.2.77' is not an address of this machine"),
            std::string::npos)
      << log;
  EXPECT_FALSE(std::filesystem::exists(hostd.state_dir())) << "refused before touching state";
}

TEST(HostdStartup, LoopbackIsFineWithOverlayDisabled) {
  Hostd hostd({"HOST_REACHABLE_ADDRESS=127.0.0.1", "OVERLAY_ENABLED=False"});
  hostd.start();
  EXPECT_EQ(hostd.client().get("/healthz").status, 200);
}

TEST(HostdStartup, MalformedConfigFileExitsWithFileAndLine) {
  Hostd hostd;
  auto config = hostd.dir() / "host_config.py";
  write_file(config,
             "# host config\n"
             "HOST_PORT: int = 8000\n"
             "OVERLAY_MTU: int = 'big'\n");
  hostd.set_config_file(config);
  int code = hostd.run_expecting_exit();
  EXPECT_EQ(code, 2);
  std::string log = hostd.log();
  EXPECT_NE(log.find(config.string() + ":3:"), std::string::npos) << log;
}

TEST(HostdStartup, SyntaxErrorInConfigFile) {
  Hostd hostd;
  auto config = hostd.dir() / "host_config.py";
  write_file(config, "OVERLAY_ENABLED = True\nthis is not python\n");
  hostd.set_config_file(config);
  EXPECT_EQ(hostd.run_expecting_exit(), 2);
  EXPECT_NE(hostd.log().find(config.string() + ":2:"), std::string::npos) << hostd.log();
}

TEST(HostdStartup, ConfigFileValuesAreUsed) {
  Hostd hostd;
  auto config = hostd.dir() / "host_config.py";
  write_file(config,
             "OVERLAY_SUBNET: str = \"10.0.0.0/8/8/16\"\n"
             "OVERLAY_VXLAN_ID = 500\n");
  hostd.set_config_file(config);
  hostd.start();
  json s = get_json(hostd.client(), "/api/overlay/status");
  EXPECT_EQ(s["subnet_config"], "10.0.0.0/8/8/16");
  EXPECT_EQ(s["stats"]["base_vxlan_id"], 500);
}

TEST(HostdStartup, BadOverrideAndUnknownFlag) {
  auto bad_value = run_program({bin_path("kohaku-hostd"), "--set", "HOST_PORT=http"});
  EXPECT_EQ(bad_value.exit_code, 2);
  EXPECT_NE(bad_value.err.find("HOST_PORT"), std::string::npos) << bad_value.err;
  auto bad_flag = run_program({bin_path("kohaku-hostd"), "--frobnicate"});
  EXPECT_EQ(bad_flag.exit_code, 2);
  EXPECT_NE(bad_flag.err.find("--frobnicate"), std::string::npos) << bad_flag.err;
  auto help = run_program({bin_path("kohaku-hostd"), "--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_NE(help.out.find("--config"), std::string::npos) << help.out;
}

TEST(HostdStartup, PortInUseIsReportedWithTheAddress) {
  Hostd first;
  first.start();
  Hostd second({"HOST_PORT=" + std::to_string(first.port())});
  int code = second.run_expecting_exit();
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1);
  EXPECT_NE(second.log().find("127.0.0.1:" + std::to_string(first.port())), std::string::npos)
      << second.log();
}

TEST(HostdStartup, UnusableStateDirIsReported) {
  TempDir tmp;
  auto blocker = tmp.path() / "not-a-dir";  // a file where a directory is needed
  write_file(blocker, "x");
  Hostd bad({"STATE_DIR=" + (blocker / "state").string()});
  int code = bad.run_expecting_exit();
  EXPECT_NE(code, 0);
  EXPECT_NE(code, -1);
  EXPECT_NE(bad.log().find(blocker.string()), std::string::npos) << bad.log();
}

TEST(HostdStartup, SigintAlsoStopsCleanly) {
  Hostd hostd;
  hostd.start();
  EXPECT_EQ(hostd.stop(SIGINT), 0);
  EXPECT_NE(hostd.log().find("SIGINT"), std::string::npos) << hostd.log();
}

}  // namespace
}  // namespace kohaku::test
