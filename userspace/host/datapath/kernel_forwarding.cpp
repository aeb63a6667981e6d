#include "host/datapath/kernel_forwarding.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <sstream>
#include <stdexcept>

#include "common/log.h"
#include "common/netlink/sysctl.h"

namespace kohaku {
namespace {

constexpr const char* kLog = "kernel-path";

// The two accept rules for `overlay`, as iptables arguments after "-X FORWARD".
std::vector<std::vector<std::string>> rules_for(const Ipv4Cidr& overlay) {
  std::vector<std::vector<std::string>> out;
  for (const char* dir : {"-s", "-d"})
    out.push_back({dir, overlay.to_string(), "-m", "comment", "--comment", kForwardRuleComment,
                   "-j", "ACCEPT"});
  return out;
}

}  // namespace

KernelForwarding::Result KernelForwarding::run(const std::vector<std::string>& args) {
  std::vector<std::string> argv{iptables_, "-w"};
  argv.insert(argv.end(), args.begin(), args.end());
  return spawn_program(argv);
}

KernelForwarding::Result KernelForwarding::run_checked(const std::vector<std::string>& args) {
  Result r = run(args);
  if (r.status != 0) {
    std::vector<std::string> argv{iptables_, "-w"};
    argv.insert(argv.end(), args.begin(), args.end());
    if (r.status == 127)
      throw IptablesMissing("'" + join_args(argv) + "' could not be run: " + trim_trailing(r.err));
    throw std::runtime_error("'" + join_args(argv) + "' failed with status " +
                             std::to_string(r.status) + ": " + trim_trailing(r.err));
  }
  return r;
}

std::vector<std::string> KernelForwarding::rules() {
  std::vector<std::string> ours;
  std::istringstream in(run_checked({"-S", "FORWARD"}).out);
  for (std::string line; std::getline(in, line);) {
    auto w = split_words(line);
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
    log::info(kLog, "added FORWARD rule: " + join_args(rule));
  }
  // Rules of an earlier overlay CIDR (the config changed) go.
  for (const auto& line : rules()) {
    auto w = split_words(line);
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
    auto w = split_words(line);
    if (w.size() < 2 || w[0] != "-A") continue;
    w[0] = "-D";
    run_checked(w);
    log::info(kLog, "removed FORWARD rule: " + line);
    ++removed;
  }
  return removed;
}

}  // namespace kohaku
