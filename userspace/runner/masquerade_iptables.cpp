#include "runner/masquerade_iptables.h"

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

extern char** environ;

namespace kohaku::runner {
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
  Pipe(const Pipe&) = delete;
  Pipe& operator=(const Pipe&) = delete;
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

std::vector<std::string> words(const std::string& line) {
  std::istringstream in(line);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

struct Rule {
  std::string table, chain;
  std::vector<std::string> spec;  // after "-A CHAIN", exactly as `iptables -S` prints it
};

std::vector<Rule> rules_for(const Ipv4Cidr& overlay) {
  const std::string cidr = overlay.to_string();
  const std::vector<std::string> comment{"-m", "comment", "--comment", kRunnerRuleComment};
  auto with = [&](std::vector<std::string> head, std::vector<std::string> tail) {
    head.insert(head.end(), comment.begin(), comment.end());
    head.insert(head.end(), tail.begin(), tail.end());
    return head;
  };
  return {
      {"filter", "FORWARD", with({"-s", cidr}, {"-j", "ACCEPT"})},
      {"filter", "FORWARD", with({"-d", cidr}, {"-j", "ACCEPT"})},
      {"nat", "POSTROUTING", with({"-s", cidr, "!", "-d", cidr}, {"-j", "MASQUERADE"})},
  };
}

bool has_our_comment(const std::vector<std::string>& w) {
  for (size_t i = 0; i + 1 < w.size(); ++i)
    if (w[i] == "--comment" && w[i + 1] == kRunnerRuleComment) return true;
  return false;
}

}  // namespace

MasqueradeIptables::Result MasqueradeIptables::run(const std::vector<std::string>& args) {
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

  // Both pipes drained together: a child blocked on a full stderr never finishes its stdout.
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
  if (r.status == 127 && r.err.empty()) r.err = "cannot run " + iptables_;
  return r;
}

MasqueradeIptables::Result MasqueradeIptables::run_checked(const std::vector<std::string>& args) {
  Result r = run(args);
  if (r.status != 0) {
    std::vector<std::string> argv{iptables_, "-w"};
    argv.insert(argv.end(), args.begin(), args.end());
    throw std::runtime_error("'" + join(argv) + "' failed with status " + std::to_string(r.status) +
                             ": " + trim(r.err));
  }
  return r;
}

std::vector<std::string> MasqueradeIptables::chain_rules(const std::string& table,
                                                         const std::string& chain) {
  std::vector<std::string> ours;
  std::istringstream in(run_checked({"-t", table, "-S", chain}).out);
  for (std::string line; std::getline(in, line);)
    if (has_our_comment(words(line))) ours.push_back(line);
  return ours;
}

std::vector<std::string> MasqueradeIptables::rules() {
  auto out = chain_rules("filter", "FORWARD");
  auto nat = chain_rules("nat", "POSTROUTING");
  out.insert(out.end(), nat.begin(), nat.end());
  return out;
}

void MasqueradeIptables::install(const Ipv4Cidr& overlay) {
  const auto wanted = rules_for(overlay);
  for (const auto& rule : wanted) {
    std::vector<std::string> check{"-t", rule.table, "-C", rule.chain};
    check.insert(check.end(), rule.spec.begin(), rule.spec.end());
    Result r = run(check);
    if (r.status == 0) continue;
    if (r.status != 1) run_checked(check);  // 1: no such rule; anything else is a real error
    std::vector<std::string> add{"-t", rule.table, "-A", rule.chain};
    add.insert(add.end(), rule.spec.begin(), rule.spec.end());
    run_checked(add);
    log::info(kLog, "added " + rule.table + " " + rule.chain + " rule: " + join(rule.spec));
  }
  // Rules for an earlier overlay CIDR go.
  for (const auto& [table, chain] :
       {std::pair<std::string, std::string>{"filter", "FORWARD"}, {"nat", "POSTROUTING"}}) {
    for (const auto& line : chain_rules(table, chain)) {
      auto w = words(line);
      if (w.size() < 2 || w[0] != "-A") continue;
      bool current = std::any_of(wanted.begin(), wanted.end(), [&](const Rule& r) {
        return r.table == table && w.size() == r.spec.size() + 2 &&
               std::equal(r.spec.begin(), r.spec.end(), w.begin() + 2);
      });
      if (current) continue;
      w[0] = "-D";
      w.insert(w.begin(), {"-t", table});
      run_checked(w);
      log::info(kLog, "removed stale " + table + " rule: " + line);
    }
  }
}

size_t MasqueradeIptables::remove_all() {
  // No iptables at all is normal on a BPF-only runner: then there is nothing of ours to remove.
  if (run({"--version"}).status == 127) return 0;
  size_t removed = 0;
  for (const auto& [table, chain] :
       {std::pair<std::string, std::string>{"filter", "FORWARD"}, {"nat", "POSTROUTING"}}) {
    for (const auto& line : chain_rules(table, chain)) {
      auto w = words(line);
      if (w.size() < 2 || w[0] != "-A") continue;
      w[0] = "-D";
      w.insert(w.begin(), {"-t", table});
      run_checked(w);
      log::info(kLog, "removed " + table + " rule: " + line);
      ++removed;
    }
  }
  return removed;
}

}  // namespace kohaku::runner
