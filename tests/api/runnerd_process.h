#pragma once
// A real kohaku-runnerd (fork/exec) in the test's private network namespace, and a process in a
// namespace of its own to attach as a workload, for the runner API tests.
#include <sched.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <functional>
#include <thread>

#include "host_api_helpers.h"
#include "hostd_process.h"

namespace kohaku::test {

using nlohmann::json;

// Address on lo that the runner registers with: the host refuses loopback URLs.
inline constexpr const char* kRunnerIp = "192.0.2.11";

// Every test runs in a fresh namespace (isolated_test_main.cpp): the address goes on each time.
inline void ensure_runner_ip() {
  // Fails harmlessly when the address is already there.
  run_program({"/usr/sbin/ip", "addr", "add", std::string(kRunnerIp) + "/32", "dev", "lo"});
}

class Runnerd {
 public:
  // Without OVERLAY_API_TOKEN in `sets`, the runner is given kTestToken as the host's token
  // (as every runner joining a host with the default generated token is), and client() sends
  // it.
  explicit Runnerd(std::vector<std::string> sets, bool default_token = true)
      : sets_(std::move(sets)) {
    bool given = false;
    for (const auto& s : sets_)
      if (s.rfind("OVERLAY_API_TOKEN=", 0) == 0) {
        token_ = s.substr(s.find('=') + 1);
        given = true;
      }
    if (!given && default_token) {
      token_ = kTestToken;
      sets_.push_back("OVERLAY_API_TOKEN=" + token_);
    }
  }
  static constexpr const char* kTestToken = "runner-api-test-token";
  ~Runnerd() {
    if (pid_ > 0) stop(SIGKILL);
  }

  void start() {
    ensure_runner_ip();
    if (port_ == 0) port_ = pick_free_port();
    std::vector<std::string> argv{bin_path("kohaku-runnerd")};
    if (bind_explicitly_)
      argv.insert(argv.end(), {"--set", std::string("RUNNER_BIND_IP=") + kRunnerIp});
    for (const std::string& s :
         {"STATE_DIR=" + (dir_.path() / "state").string(), "RUNNER_PORT=" + std::to_string(port_),
          std::string("RUNNER_HOSTNAME=api-runner"), std::string("HEARTBEAT_INTERVAL_SECONDS=1"),
          "DOCKER_SOCKET=" + (dir_.path() / "no-docker.sock").string()})
      argv.insert(argv.end(), {"--set", s});
    for (const auto& s : sets_) argv.insert(argv.end(), {"--set", s});
    // HOME in the temp dir: never the machine's ~/.kohakuriver/runner_config.py.
    pid_ = spawn(argv, dir_.path() / "out", log_path(), {{"HOME", dir_.path().string()}});
    const auto deadline = deadline_in(std::chrono::seconds(15));
    while (!past(deadline)) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        throw std::runtime_error("kohaku-runnerd exited; log:\n" + log());
      }
      try {
        if (client().get("/healthz").status == 200) return;
      } catch (const http::ClientError&) {
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    throw std::runtime_error("kohaku-runnerd did not answer; log:\n" + log());
  }

  int stop(int signo = SIGTERM) {
    ::kill(pid_, signo);
    int code = wait_exit(pid_, deadline_in(std::chrono::seconds(10)));
    if (code == -1) {
      ::kill(pid_, SIGKILL);
      wait_exit(pid_, deadline_in(std::chrono::seconds(5)));
    }
    pid_ = -1;
    return code;
  }

  // Sends `token`; by default the one the runner was given. client("") sends none.
  http::HttpClient client(std::optional<std::string> token = std::nullopt) const {
    http::ClientOptions o;
    o.bearer_token = token ? std::move(*token) : token_;
    o.timeout = std::chrono::seconds(10);
    return http::HttpClient("http://" + std::string(kRunnerIp) + ":" + std::to_string(port_), o);
  }
  std::filesystem::path log_path() const { return dir_.path() / "runnerd.log"; }
  std::filesystem::path state_dir() const { return dir_.path() / "state"; }
  std::string log() const { return read_file(log_path()); }

  // Polls the status until pred holds (10 s).
  json wait_status(const std::function<bool(const json&)>& pred) const {
    const auto deadline = deadline_in(std::chrono::seconds(10));
    json s;
    while (!past(deadline)) {
      s = client().get("/api/overlay/status").json();
      if (pred(s)) return s;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    ADD_FAILURE() << "status never matched; last: " << s.dump() << "\nlog:\n" << log();
    return s;
  }

 private:
  TempDir dir_;
  std::vector<std::string> sets_;
  std::string token_;
  uint16_t port_ = 0;

 public:
  // Leave RUNNER_BIND_IP unset (the default binding) instead of kRunnerIp.
  void bind_by_default() { bind_explicitly_ = false; }
  uint16_t port() const { return port_; }

 private:
  bool bind_explicitly_ = true;
  pid_t pid_ = -1;
};

// A process alone in a fresh network namespace: a workload to attach by pid.
class NamespacedProcess {
 public:
  NamespacedProcess() {
    int fds[2];
    if (::pipe(fds) != 0) throw std::runtime_error("pipe");
    pid_ = ::fork();
    if (pid_ == 0) {
      ::close(fds[0]);
      const char ok = ::unshare(CLONE_NEWNET) == 0 ? '1' : '0';
      (void)!::write(fds[1], &ok, 1);
      ::pause();
      ::_exit(0);
    }
    ::close(fds[1]);
    char ok = 0;
    (void)!::read(fds[0], &ok, 1);
    ::close(fds[0]);
    if (ok != '1') throw std::runtime_error("unshare(CLONE_NEWNET) failed in the child");
  }
  ~NamespacedProcess() { kill(); }
  void kill() {
    if (pid_ <= 0) return;
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, nullptr, 0);
    pid_ = -1;
  }
  pid_t pid() const { return pid_; }
  // Runs a command inside the process's namespace.
  ProcessResult run(const std::vector<std::string>& cmd) const {
    std::vector<std::string> argv{"/usr/bin/nsenter",
                                  "--net=/proc/" + std::to_string(pid_) + "/ns/net"};
    argv.insert(argv.end(), cmd.begin(), cmd.end());
    return run_program(argv);
  }

 private:
  pid_t pid_ = -1;
};

// /healthz answers before the control loop has built the default network.
inline bool default_network_up(const json& s) {
  return s.contains("default_network");
}

inline json post_workload(const Runnerd& r, const json& body, int expect,
                          std::optional<std::string> token = std::nullopt) {
  auto res = r.client(std::move(token)).post("/api/workloads", body);
  EXPECT_EQ(res.status, expect) << body.dump() << " -> " << res.body;
  return res.body.empty() ? json() : json::parse(res.body, nullptr, false);
}

}  // namespace kohaku::test
