#pragma once
// Runs a real kohaku-hostd (fork/exec) on 127.0.0.1 with a private STATE_DIR, and other
// programs of the build, for the API tests. Everything waits on a condition with a deadline.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "common/http_client.h"
#include "support/temp_dir.h"

namespace kohaku::test {

using Deadline = std::chrono::steady_clock::time_point;
inline Deadline deadline_in(std::chrono::milliseconds d) {
  return std::chrono::steady_clock::now() + d;
}
inline bool past(Deadline d) {
  return std::chrono::steady_clock::now() >= d;
}

inline std::string bin_path(const std::string& name) {
  return std::string(KOHAKU_BIN_DIR) + "/" + name;
}

inline std::string read_file(const std::filesystem::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline void write_file(const std::filesystem::path& p, const std::string& text) {
  std::ofstream out(p, std::ios::binary | std::ios::trunc);
  out << text;
}

using test_support::TempDir;

// A port that was free a moment ago (bind to 0, read it, close). Callers retry on a lost race.
inline uint16_t pick_free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return ntohs(a.sin_port);
}

// In a forked child: replaces it with argv[0] (a path), or exits 127 when that cannot run.
[[noreturn]] inline void exec_or_exit(const std::vector<std::string>& argv) {
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  ::execv(args[0], args.data());
  ::_exit(127);
}

// fork/exec with stdin from /dev/null (or `stdin_path`), stdout/stderr appended to files.
inline pid_t spawn(const std::vector<std::string>& argv, const std::filesystem::path& out,
                   const std::filesystem::path& err,
                   const std::map<std::string, std::string>& env = {},
                   const std::string& stdin_path = "/dev/null") {
  pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error("fork failed");
  if (pid == 0) {
    // Never outlive a crashed test.
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    int in = ::open(stdin_path.c_str(), O_RDONLY);
    int o = ::open(out.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    int e = ::open(err.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (in < 0 || o < 0 || e < 0) ::_exit(127);
    ::dup2(in, 0);
    ::dup2(o, 1);
    ::dup2(e, 2);
    for (const auto& [k, v] : env) {
      if (v.empty())
        ::unsetenv(k.c_str());
      else
        ::setenv(k.c_str(), v.c_str(), 1);
    }
    exec_or_exit(argv);
  }
  return pid;
}

// Exit code, or 128+signal; -1 if still running at the deadline.
inline int wait_exit(pid_t pid, Deadline deadline) {
  while (true) {
    int status = 0;
    pid_t r = ::waitpid(pid, &status, WNOHANG);
    if (r == pid) return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    if (r < 0) return -2;
    if (past(deadline)) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

struct ProcessResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

// Runs a program to completion (10 s deadline) and captures its output.
inline ProcessResult run_program(const std::vector<std::string>& argv,
                                 const std::map<std::string, std::string>& env = {}) {
  TempDir dir;
  auto out = dir.path() / "out", err = dir.path() / "err";
  pid_t pid = spawn(argv, out, err, env);
  ProcessResult r;
  r.exit_code = wait_exit(pid, deadline_in(std::chrono::seconds(10)));
  if (r.exit_code == -1) {
    ::kill(pid, SIGKILL);
    wait_exit(pid, deadline_in(std::chrono::seconds(5)));
  }
  r.out = read_file(out);
  r.err = read_file(err);
  return r;
}

// One kohaku-hostd: overlay enabled, reachable address 192.0.2.1 (TEST-NET, never contacted in
// these tests), HTTP on 127.0.0.1:<free port>, state in its own temp dir. `sets` come after the
// defaults, so they override them. Restarts reuse the state dir and the port.
class Hostd {
 public:
  explicit Hostd(std::vector<std::string> sets = {}) : sets_(std::move(sets)) {}
  ~Hostd() {
    if (pid_ > 0) kill9();
  }
  Hostd(const Hostd&) = delete;
  Hostd& operator=(const Hostd&) = delete;

  std::filesystem::path state_dir() const { return dir_.path() / "state"; }
  std::filesystem::path log_path() const { return dir_.path() / "hostd.log"; }
  const std::filesystem::path& dir() const { return dir_.path(); }
  std::string log() const { return read_file(log_path()); }
  uint16_t port() const { return port_; }
  pid_t pid() const { return pid_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  void set_config_file(std::filesystem::path p) { config_ = std::move(p); }
  // HOME of the daemon, where it looks for ~/.kohakuriver/host_config.py without --config; by
  // default its own temp dir, so no test reads the machine's real one.
  void set_home(std::filesystem::path p) { home_ = std::move(p); }
  std::filesystem::path home() const { return home_.empty() ? dir_.path() : home_; }

  std::vector<std::string> argv() const {
    std::vector<std::string> a{bin_path("kohaku-hostd")};
    if (!config_.empty()) a.insert(a.end(), {"--config", config_.string()});
    for (const std::string& s :
         {"STATE_DIR=" + state_dir().string(), std::string("HOST_BIND_IP=127.0.0.1"),
          "HOST_PORT=" + std::to_string(port_), std::string("OVERLAY_ENABLED=True"),
          std::string("HOST_REACHABLE_ADDRESS=192.0.2.1"),
          std::string("CLEANUP_CHECK_INTERVAL_SECONDS=1")})
      a.insert(a.end(), {"--set", s});
    for (const auto& s : sets_) a.insert(a.end(), {"--set", s});
    return a;
  }

  // Starts and waits until /healthz answers 200. Throws with the daemon's log if it exits first
  // or does not answer within the deadline.
  void start() {
    ensure_reachable_address();
    for (int attempt = 0; attempt < 5; ++attempt) {
      if (port_ == 0 || attempt > 0) port_ = pick_free_port();
      pid_ = spawn(argv(), dir_.path() / "hostd.out", log_path(), {{"HOME", home().string()}});
      if (wait_ready()) return;
      // Only a lost race for the port is worth another try.
      if (log().find("cannot listen") == std::string::npos) break;
    }
    throw std::runtime_error("kohaku-hostd did not become ready; log:\n" + log());
  }

  // Launches without waiting for readiness; for daemons expected to refuse to start.
  // Returns the exit status (or -1 if still running after the deadline).
  int run_expecting_exit() {
    ensure_reachable_address();
    if (port_ == 0) port_ = pick_free_port();
    pid_ = spawn(argv(), dir_.path() / "hostd.out", log_path(), {{"HOME", home().string()}});
    int code = wait_exit(pid_, deadline_in(std::chrono::seconds(10)));
    if (code != -1) pid_ = -1;
    return code;
  }

  // Signals (SIGTERM by default) and waits; returns the exit status.
  int stop(int signo = SIGTERM) {
    ::kill(pid_, signo);
    int code = wait_exit(pid_, deadline_in(std::chrono::seconds(10)));
    if (code == -1) kill9();
    pid_ = -1;
    return code;
  }

  void kill9() {
    ::kill(pid_, SIGKILL);
    wait_exit(pid_, deadline_in(std::chrono::seconds(10)));
    pid_ = -1;
  }

  // The token kohaku-hostd generated in its STATE_DIR (empty when OVERLAY_API_TOKEN is
  // configured, or before the first start).
  std::string api_token() const {
    std::string t = read_file(state_dir() / "api_token");
    while (!t.empty() && t.back() == '\n') t.pop_back();
    return t;
  }

  // A client sending `token`; by default the generated one, so tests act as the operator on
  // the host does. client("") sends none.
  http::HttpClient client(std::optional<std::string> token = std::nullopt) const {
    http::ClientOptions o;
    o.bearer_token = token ? std::move(*token) : api_token();
    o.timeout = std::chrono::seconds(10);
    return http::HttpClient(url(), o);
  }

 private:
  // kohaku-hostd wants HOST_REACHABLE_ADDRESS to be an address of the machine: 192.0.2.1 on an
  // uplink of its own in the tests' private namespace, a veth with no traffic, so the express
  // stage's counters stay still (on lo they would count the tests' HTTP). Fails harmlessly
  // when already there.
  static void ensure_reachable_address() {
    run_program({"/usr/sbin/ip", "link", "add", "test-uplink", "type", "veth", "peer", "name",
                 "test-uplink-p"});
    run_program({"/usr/sbin/ip", "addr", "add", "192.0.2.1/24", "dev", "test-uplink"});
    run_program({"/usr/sbin/ip", "link", "set", "test-uplink", "up"});
  }

  bool wait_ready() {
    http::ClientOptions o;
    o.timeout = std::chrono::milliseconds(500);
    http::HttpClient probe(url(), o);
    auto deadline = deadline_in(std::chrono::seconds(15));
    while (!past(deadline)) {
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;
        return false;
      }
      try {
        if (probe.get("/healthz").status == 200) return true;
      } catch (const http::ClientError&) {
        // not listening yet
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }

  TempDir dir_;
  std::vector<std::string> sets_;
  std::filesystem::path config_;
  std::filesystem::path home_;
  uint16_t port_ = 0;
  pid_t pid_ = -1;
};

}  // namespace kohaku::test
