// kohakuctl against a running kohaku-hostd: human tables, --json, exit codes, errors.
#include <gtest/gtest.h>
#include <poll.h>
#include <pty.h>

#include "host_api_helpers.h"
#include "hostd_process.h"
#include "support/text.h"

namespace kohaku::test {
namespace {

using test_support::has;

class Kohakuctl : public ::testing::Test {
 protected:
  void SetUp() override {
    hostd_.start();
    register_runner(hostd_.client(), "gpu-1", "10.1.0.5");
  }

  // Runs kohakuctl with --host pointing at the daemon (unless `with_host` is false), with
  // KOHAKU_HOST/KOHAKU_TOKEN cleared unless `env` sets them. Like kohakuctl on the host, it
  // finds the daemon's generated token in its STATE_DIR (KOHAKU_TOKEN_FILE).
  ProcessResult ctl(std::vector<std::string> args, bool with_host = true,
                    std::map<std::string, std::string> env = {}) {
    std::vector<std::string> argv{bin_path("kohakuctl")};
    if (with_host) argv.insert(argv.end(), {"--host", hostd_.url()});
    argv.insert(argv.end(), args.begin(), args.end());
    env.try_emplace("KOHAKU_HOST", "");
    env.try_emplace("KOHAKU_TOKEN", "");
    env.try_emplace("KOHAKU_TOKEN_FILE", (hostd_.state_dir() / "api_token").string());
    return run_program(argv, env);
  }

  Hostd hostd_;
};

TEST_F(Kohakuctl, NodeOverlayTableAndJson) {
  auto human = ctl({"node", "overlay"});
  EXPECT_EQ(human.exit_code, 0) << human.err;
  EXPECT_TRUE(has(human.out, "Runner")) << human.out;
  EXPECT_TRUE(has(human.out, "gpu-1")) << human.out;
  EXPECT_TRUE(has(human.out, "10.128.64.0/18")) << human.out;
  EXPECT_TRUE(has(human.out, "vxkr1")) << human.out;
  // Columns line up: the subnet starts at the same offset in the header row and the data row.
  auto lines_start =
      human.out.find("Runner  ID");  // the header, not the "Runner Allocations" title
  ASSERT_NE(lines_start, std::string::npos);
  std::string header =
      human.out.substr(lines_start, human.out.find('\n', lines_start) - lines_start);
  auto row_start = human.out.find("gpu-1");
  std::string row = human.out.substr(row_start, human.out.find('\n', row_start) - row_start);
  EXPECT_EQ(header.find("Subnet"), row.find("10.128.64.0/18")) << header << "\n" << row;

  auto js = ctl({"--json", "node", "overlay"});
  ASSERT_EQ(js.exit_code, 0) << js.err;
  json j = json::parse(js.out);
  EXPECT_EQ(j, get_json(hostd_.client(), "/api/overlay/status"));
}

TEST_F(Kohakuctl, ReserveValidateReleaseRoundTrip) {
  auto reserve = ctl({"--json", "ip-reserve", "gpu-1", "--ttl", "120", "--ip", "10.128.64.9"});
  ASSERT_EQ(reserve.exit_code, 0) << reserve.err;
  json r = json::parse(reserve.out);
  EXPECT_EQ(r["ip"], "10.128.64.9");
  EXPECT_EQ(r["ttl_seconds"], 120);
  std::string token = r["token"];

  auto validate = ctl({"ip-validate", token});
  EXPECT_EQ(validate.exit_code, 0) << validate.err;
  EXPECT_TRUE(has(validate.out, "yes")) << validate.out;
  EXPECT_TRUE(has(validate.out, "10.128.64.9")) << validate.out;

  auto list = ctl({"ip-list", "--runner", "gpu-1"});
  EXPECT_EQ(list.exit_code, 0) << list.err;
  EXPECT_TRUE(has(list.out, "10.128.64.9")) << list.out;
  EXPECT_FALSE(has(list.out, token)) << "full token printed in the list";

  auto info = ctl({"ip-info", "gpu-1"});
  EXPECT_EQ(info.exit_code, 0) << info.err;
  EXPECT_TRUE(has(info.out, "Reserved:")) << info.out;

  auto release = ctl({"ip-release", token});
  EXPECT_EQ(release.exit_code, 0) << release.err;
  auto invalid = ctl({"ip-validate", token});
  EXPECT_EQ(invalid.exit_code, 1);  // a gone token is "no", with a non-zero exit
  EXPECT_TRUE(has(invalid.out, "no")) << invalid.out;
}

TEST_F(Kohakuctl, AvailableAndStats) {
  auto avail = ctl({"ip-available", "--runner", "gpu-1", "--limit", "3"});
  EXPECT_EQ(avail.exit_code, 0) << avail.err;
  EXPECT_TRUE(has(avail.out, "10.128.64.2 10.128.64.3 10.128.64.4")) << avail.out;
  auto stats = ctl({"--json", "ip-stats"});
  ASSERT_EQ(stats.exit_code, 0) << stats.err;
  EXPECT_EQ(json::parse(stats.out)["total_reservations"], 0);
  auto nodes = ctl({"node", "list"});
  EXPECT_EQ(nodes.exit_code, 0) << nodes.err;
  EXPECT_TRUE(has(nodes.out, "gpu-1")) << nodes.out;
  auto summary = ctl({"node", "summary"});
  EXPECT_EQ(summary.exit_code, 0) << summary.err;
  EXPECT_TRUE(has(summary.out, "1 online / 0 offline")) << summary.out;
}

TEST_F(Kohakuctl, ApiErrorsGoToStderrWithNonZeroExit) {
  auto unknown = ctl({"ip-info", "ghost"});
  EXPECT_EQ(unknown.exit_code, 1);
  EXPECT_TRUE(has(unknown.err, "ghost")) << unknown.err;
  EXPECT_TRUE(has(unknown.err, "404")) << unknown.err;
  EXPECT_EQ(unknown.out, "");

  auto bad_ttl = ctl({"ip-reserve", "gpu-1", "--ttl", "5"});
  EXPECT_EQ(bad_ttl.exit_code, 1);
  EXPECT_TRUE(has(bad_ttl.err, "ttl")) << bad_ttl.err;
}

TEST_F(Kohakuctl, UsageErrorsExit2) {
  EXPECT_EQ(ctl({"frobnicate"}).exit_code, 2);
  EXPECT_EQ(ctl({"ip-info"}).exit_code, 2);                  // missing RUNNER
  EXPECT_EQ(ctl({"ip-stats", "--ttl", "60"}).exit_code, 2);  // option of another verb
  EXPECT_EQ(ctl({"node"}).exit_code, 2);
  auto help = ctl({"--help"});
  EXPECT_EQ(help.exit_code, 0);
  EXPECT_TRUE(has(help.out, "ip-reserve")) << help.out;
}

TEST_F(Kohakuctl, DestructiveVerbsNeedForceWithoutATerminal) {
  auto refused = ctl({"overlay-cleanup"});  // stdin is /dev/null
  EXPECT_NE(refused.exit_code, 0);
  EXPECT_TRUE(has(refused.err, "-f")) << refused.err;
  auto release = ctl({"overlay-release", "gpu-1"});
  EXPECT_NE(release.exit_code, 0);
  EXPECT_EQ(get_json(hostd_.client(), "/api/overlay/status")["allocations"].size(), 1u);

  auto forced = ctl({"overlay-cleanup", "-f"});
  EXPECT_EQ(forced.exit_code, 0) << forced.err;
  EXPECT_TRUE(has(forced.out, "Cleaned up 0")) << forced.out;  // the runner is active
}

// Runs kohakuctl on a pseudo-terminal, answers its question with `answer`, returns exit status
// and everything it wrote to the terminal.
ProcessResult ctl_on_tty(const std::vector<std::string>& args, const std::string& answer) {
  std::vector<std::string> argv{bin_path("kohakuctl")};
  argv.insert(argv.end(), args.begin(), args.end());
  int master = -1;
  pid_t pid = ::forkpty(&master, nullptr, nullptr, nullptr);
  if (pid == 0) {
    ::unsetenv("KOHAKU_HOST");
    ::unsetenv("KOHAKU_TOKEN");
    exec_or_exit(argv);
  }
  ProcessResult r;
  auto deadline = deadline_in(std::chrono::seconds(10));
  bool answered = false;
  char buf[512];
  while (!past(deadline)) {
    pollfd p{master, POLLIN, 0};
    if (::poll(&p, 1, 50) > 0) {
      ssize_t n = ::read(master, buf, sizeof buf);
      if (n <= 0) break;  // EIO once the child is gone
      r.out.append(buf, static_cast<size_t>(n));
    }
    if (!answered && r.out.find("[y/N]") != std::string::npos) {
      std::string line = answer + "\n";
      (void)!::write(master, line.data(), line.size());
      answered = true;
    }
  }
  r.exit_code = wait_exit(pid, deadline_in(std::chrono::seconds(5)));
  ::close(master);
  return r;
}

TEST_F(Kohakuctl, AsksOnATerminal) {
  auto no =
      ctl_on_tty({"--host", hostd_.url(), "--token", hostd_.api_token(), "overlay-cleanup"}, "n");
  EXPECT_EQ(no.exit_code, 1) << no.out;
  EXPECT_TRUE(has(no.out, "Continue? [y/N]")) << no.out;
  EXPECT_TRUE(has(no.out, "aborted")) << no.out;
  auto yes =
      ctl_on_tty({"--host", hostd_.url(), "--token", hostd_.api_token(), "overlay-cleanup"}, "y");
  EXPECT_EQ(yes.exit_code, 0) << yes.out;
  EXPECT_TRUE(has(yes.out, "Cleaned up 0")) << yes.out;
}

TEST_F(Kohakuctl, HostAndTokenFromEnvironment) {
  auto via_env = ctl({"--json", "ip-stats"}, false, {{"KOHAKU_HOST", hostd_.url()}});
  EXPECT_EQ(via_env.exit_code, 0) << via_env.err;
}

TEST(KohakuctlAuth, TokenFlagAndEnvironment) {
  Hostd hostd({"OVERLAY_API_TOKEN=tok-123"});
  hostd.start();
  register_runner(hostd.client("tok-123"), "gpu-1", "10.1.0.5");
  std::map<std::string, std::string> clean{
      {"KOHAKU_HOST", ""}, {"KOHAKU_TOKEN", ""}, {"KOHAKU_TOKEN_FILE", "/nonexistent"}};
  auto no_token =
      run_program({bin_path("kohakuctl"), "--host", hostd.url(), "ip-reserve", "gpu-1"}, clean);
  EXPECT_EQ(no_token.exit_code, 1);
  EXPECT_TRUE(has(no_token.err, "401")) << no_token.err;
  auto with_flag = run_program(
      {bin_path("kohakuctl"), "--host", hostd.url(), "--token", "tok-123", "ip-reserve", "gpu-1"},
      clean);
  EXPECT_EQ(with_flag.exit_code, 0) << with_flag.err;
  auto with_env = run_program({bin_path("kohakuctl"), "--host", hostd.url(), "ip-reserve", "gpu-1"},
                              {{"KOHAKU_HOST", ""}, {"KOHAKU_TOKEN", "tok-123"}});
  EXPECT_EQ(with_env.exit_code, 0) << with_env.err;
}

// On the host, kohakuctl reads the token kohaku-hostd generated, for a host on this machine
// only: the local secret is never sent to another address.
TEST(KohakuctlAuth, UsesTheGeneratedTokenForAHostOnThisMachineOnly) {
  // An address of this (test) namespace that is not loopback, as a remote host's would be.
  run_program({"/usr/sbin/ip", "addr", "add", "192.0.2.31/32", "dev", "lo"});
  Hostd hostd({"HOST_BIND_IP=0.0.0.0"});
  hostd.start();
  register_runner(hostd.client(), "gpu-1", "10.1.0.5");
  const std::string port = std::to_string(hostd.port());
  auto reserve_via = [&](const std::string& url, const std::string& file) {
    return run_program({bin_path("kohakuctl"), "--host", url, "ip-reserve", "gpu-1"},
                       {{"KOHAKU_HOST", ""}, {"KOHAKU_TOKEN", ""}, {"KOHAKU_TOKEN_FILE", file}});
  };
  const std::string file = (hostd.state_dir() / "api_token").string();
  auto local = reserve_via("http://127.0.0.1:" + port, file);
  EXPECT_EQ(local.exit_code, 0) << local.err;
  auto by_name = reserve_via("http://localhost:" + port, file);
  EXPECT_EQ(by_name.exit_code, 0) << by_name.err;
  auto remote = reserve_via("http://192.0.2.31:" + port, file);
  EXPECT_EQ(remote.exit_code, 1) << remote.out;
  EXPECT_TRUE(has(remote.err, "401")) << remote.err;
  auto no_file = reserve_via("http://127.0.0.1:" + port, "/nonexistent");
  EXPECT_EQ(no_file.exit_code, 1);
  EXPECT_TRUE(has(no_file.err, "api_token")) << no_file.err;
}

TEST(KohakuctlConnection, RefusedNamesTheUrl) {
  uint16_t port = pick_free_port();
  std::string url = "http://127.0.0.1:" + std::to_string(port);
  auto r = run_program({bin_path("kohakuctl"), "--host", url, "ip-stats"},
                       {{"KOHAKU_HOST", ""}, {"KOHAKU_TOKEN", ""}});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_TRUE(has(r.err, url)) << r.err;
  auto bad_url = run_program({bin_path("kohakuctl"), "--host", "ftp://x", "ip-stats"},
                             {{"KOHAKU_HOST", ""}, {"KOHAKU_TOKEN", ""}});
  EXPECT_NE(bad_url.exit_code, 0);
  EXPECT_TRUE(has(bad_url.err, "ftp://x")) << bad_url.err;
}

}  // namespace
}  // namespace kohaku::test
