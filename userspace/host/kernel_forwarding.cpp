#include "host/kernel_forwarding.h"

#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <system_error>

#include "common/log.h"
#include "common/netlink/sysctl.h"

extern char** environ;

namespace kohaku {
namespace {

constexpr const char* kLog = "kernel-path";

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() {
    if (pipe2(fd, O_CLOEXEC) != 0)
      throw std::system_error(errno, std::generic_category(), "cannot create a pipe");
  }
  ~Pipe() {
    for (int f : fd)
      if (f >= 0) close(f);
  }
  void close_end(int i) {
    if (fd[i] >= 0) close(fd[i]);
    fd[i] = -1;
  }
};

std::string join(const std::vector<std::string>& argv) {
  std::string s;
  for (const auto& a : argv) s += (s.empty() ? "" : " ") + a;
  return s;
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
  return s;
}

// The two accept rules for `overlay`, as iptables arguments after "-X FORWARD".
std::vector<std::vector<std::string>> rules_for(const Ipv4Cidr& overlay) {
  std::vector<std::vector<std::string>> out;
  for (const char* dir : {"-s", "-d"})
    out.push_back({dir, overlay.to_string(), "-m", "comment", "--comment", kForwardRuleComment,
                   "-j", "ACCEPT"});
  return out;
}

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

}  // namespace

KernelForwarding::Result KernelForwarding::run(const std::vector<std::string>& args) {
  std::vector<std::string> argv{iptables_, "-w"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);

  Pipe out, err;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, out.fd[1], STDOUT_FILENO);
  posix_spawn_file_actions_adddup2(&actions, err.fd[1], STDERR_FILENO);
  pid_t pid;
  int rc = posix_spawnp(&pid, iptables_.c_str(), &actions, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) return Result{127, "", "cannot run " + iptables_ + ": " + std::strerror(rc)};
  out.close_end(1);
  err.close_end(1);

  Result r{0, "", ""};
  std::array<pollfd, 2> fds{pollfd{out.fd[0], POLLIN, 0}, pollfd{err.fd[0], POLLIN, 0}};
  int open = 2;
  while (open > 0) {
    if (poll(fds.data(), fds.size(), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    for (size_t i = 0; i < fds.size(); ++i) {
      if (fds[i].fd < 0 || fds[i].revents == 0) continue;
      char buf[4096];
      ssize_t n = read(fds[i].fd, buf, sizeof(buf));
      if (n > 0) {
        (i == 0 ? r.out : r.err).append(buf, static_cast<size_t>(n));
      } else if (n == 0 || errno != EINTR) {
        fds[i].fd = -1;
        --open;
      }
    }
  }
  int wstatus = 0;
  while (waitpid(pid, &wstatus, 0) < 0 && errno == EINTR) {
  }
  if (WIFEXITED(wstatus))
    r.status = WEXITSTATUS(wstatus);
  else
    r.status = 128 + (WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
  // execvp failures in the child (binary missing) come back as 127 from posix_spawnp's child.
  if (r.status == 127 && r.err.empty()) r.err = "cannot run " + iptables_;
  return r;
}

KernelForwarding::Result KernelForwarding::run_checked(const std::vector<std::string>& args) {
  Result r = run(args);
  if (r.status != 0) {
    std::vector<std::string> argv{iptables_, "-w"};
    argv.insert(argv.end(), args.begin(), args.end());
    if (r.status == 127)
      throw IptablesMissing("'" + join(argv) + "' could not be run: " + trim(r.err));
    throw std::runtime_error("'" + join(argv) + "' failed with status " + std::to_string(r.status) +
                             ": " + trim(r.err));
  }
  return r;
}

std::vector<std::string> KernelForwarding::rules() {
  std::vector<std::string> ours;
  std::istringstream in(run_checked({"-S", "FORWARD"}).out);
  for (std::string line; std::getline(in, line);) {
    auto w = words(line);
    for (size_t i = 0; i + 1 < w.size(); ++i)
      if (w[i] == "--comment" && w[i + 1] == kForwardRuleComment) {
        ours.push_back(line);
        break;
      }
  }
  return ours;
}

void KernelForwarding::install(const Ipv4Cidr& overlay) {
  auto wanted = rules_for(overlay);
  for (const auto& rule : wanted) {
    std::vector<std::string> check{"-C", "FORWARD"};
    check.insert(check.end(), rule.begin(), rule.end());
    Result r = run(check);
    if (r.status == 0) continue;
    if (r.status != 1)  // 1: no such rule; anything else is a real error
      run_checked(check);
    std::vector<std::string> add{"-A", "FORWARD"};
    add.insert(add.end(), rule.begin(), rule.end());
    run_checked(add);
    log::info(kLog, "added FORWARD rule: " + join(rule));
  }
  // Rules of an earlier overlay CIDR (the config changed) go.
  for (const auto& line : rules()) {
    auto w = words(line);
    bool current = false;
    for (const auto& rule : wanted)
      if (w.size() == rule.size() + 2 && std::equal(rule.begin(), rule.end(), w.begin() + 2))
        current = true;
    if (current || w.size() < 2 || w[0] != "-A") continue;
    w[0] = "-D";
    run_checked(w);
    log::info(kLog, "removed stale FORWARD rule: " + line);
  }
  // Last, so a failure above leaves the host as it was.
  netlink::ensure_sysctl("net.ipv4.ip_forward", "1");  // logs when it changes
}

size_t KernelForwarding::remove_all() {
  size_t removed = 0;
  for (const auto& line : rules()) {
    auto w = words(line);
    if (w.size() < 2 || w[0] != "-A") continue;
    w[0] = "-D";
    run_checked(w);
    log::info(kLog, "removed FORWARD rule: " + line);
    ++removed;
  }
  return removed;
}

}  // namespace kohaku
