// Without --config the daemons read KohakuRiver's own file, ~/.kohakuriver/host_config.py or
// runner_config.py, when it exists; HOME points at a temp dir here.
#include <gtest/gtest.h>
#include <stdlib.h>

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "common/daemon_args.h"
#include "host/host_config.h"
#include "runner/runner_config.h"
#include "support/temp_dir.h"

namespace kohaku {
namespace {

// HOME set to a fresh directory for the test's lifetime.
class TempHome {
 public:
  TempHome() {
    if (const char* h = ::getenv("HOME")) old_ = h;
    ::setenv("HOME", dir_.path().c_str(), 1);
  }
  ~TempHome() {
    if (old_)
      ::setenv("HOME", old_->c_str(), 1);
    else
      ::unsetenv("HOME");
  }
  void write(const std::string& name, const std::string& text) const {
    std::filesystem::create_directories(dir_.path() / ".kohakuriver");
    std::ofstream(dir_.path() / ".kohakuriver" / name) << text;
  }
  std::string path() const { return dir_.path().string(); }

 private:
  test_support::TempDir dir_{"kohaku-home"};
  std::optional<std::string> old_;
};

TEST(DefaultConfigPath, IsUnderHomeDotKohakuriver) {
  TempHome home;
  EXPECT_EQ(default_config_path("host_config.py"), home.path() + "/.kohakuriver/host_config.py");
  EXPECT_FALSE(default_config_path(""));
}

TEST(DefaultConfigPath, HostReadsItWithoutConfig) {
  TempHome home;
  home.write("host_config.py", "HOST_PORT = 9123\nOVERLAY_HOST_IP = '10.128.0.9'\n");
  DaemonArgs args = parse_daemon_args({}, "kohaku-hostd", "host_config.py");
  std::vector<std::string> warnings;
  HostConfig c = load_host_config(args, &warnings);
  EXPECT_EQ(c.host_port, 9123);
  EXPECT_EQ(c.host_anchor_ip().to_string(), "10.128.0.9");
  EXPECT_TRUE(warnings.empty());
}

TEST(DefaultConfigPath, RunnerReadsItWithoutConfig) {
  TempHome home;
  home.write("runner_config.py", "RUNNER_PORT = 8123\nOVERLAY_BRIDGE_NAME = 'br-kr'\n");
  DaemonArgs args = parse_daemon_args({}, "kohaku-runnerd", "runner_config.py");
  RunnerConfig c = load_runner_config(args);
  EXPECT_EQ(c.runner_port, 8123);
  EXPECT_EQ(c.overlay_bridge_name, "br-kr");
}

TEST(DefaultConfigPath, ConfigFlagWinsAndOverridesStillApply) {
  TempHome home;
  home.write("host_config.py", "HOST_PORT = 9123\n");
  const std::string other = home.path() + "/other.py";
  std::ofstream(other) << "HOST_PORT = 9555\n";
  DaemonArgs args = parse_daemon_args({"--config", other}, "kohaku-hostd", "host_config.py");
  EXPECT_EQ(load_host_config(args).host_port, 9555);
  DaemonArgs set = parse_daemon_args({"--set", "HOST_PORT=9777"}, "kohaku-hostd", "host_config.py");
  EXPECT_EQ(load_host_config(set).host_port, 9777);  // the home file, then --set
}

TEST(DefaultConfigPath, MissingFileMeansDefaults) {
  TempHome home;
  DaemonArgs args = parse_daemon_args({}, "kohaku-hostd", "host_config.py");
  EXPECT_EQ(load_host_config(args).host_port, 8000);
}

TEST(DefaultConfigPath, ErrorsNameTheHomeFile) {
  TempHome home;
  home.write("host_config.py", "HOST_PORT = 'x'\n");
  DaemonArgs args = parse_daemon_args({}, "kohaku-hostd", "host_config.py");
  try {
    load_host_config(args);
    FAIL() << "a bad home config loaded";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(".kohakuriver/host_config.py:1"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kohaku
