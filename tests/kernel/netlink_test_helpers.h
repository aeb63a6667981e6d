#pragma once
// Shared fixtures for the netlink kernel tests: every test runs in its own fresh network
// namespace (on the main thread) that disappears with the fixture, so a failing test leaves
// nothing behind and tests cannot see each other's links.
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/ipv4.h"
#include "common/netlink/link.h"
#include "common/netlink/netns.h"

namespace kohaku::netlink::testing {

struct CmdResult {
  int status = -1;
  std::string out;
};

inline CmdResult run_cmd(const std::string& cmd) {
  CmdResult r;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (p == nullptr) return r;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.out.append(buf.data(), n);
  int st = ::pclose(p);
  r.status = WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// The lines `iptables ARGS` prints (e.g. "-S FORWARD"); a failing command fails the test.
inline std::vector<std::string> iptables_lines(const std::string& args) {
  auto r = run_cmd("iptables " + args);
  EXPECT_EQ(r.status, 0) << r.out;
  std::vector<std::string> lines;
  size_t start = 0;
  for (size_t nl; (nl = r.out.find('\n', start)) != std::string::npos; start = nl + 1)
    lines.push_back(r.out.substr(start, nl - start));
  return lines;
}

// Prefix that runs a command inside `ns` (nullptr: the calling thread's namespace).
inline std::string in_ns(const Netns* ns) {
  if (ns == nullptr) return "";
  return "nsenter --net=/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(ns->fd()) +
         " ";
}

// Real ICMP echo: retries single pings until one is answered or the deadline passes.
inline bool ping(Ipv4Addr dst, const Netns* from = nullptr,
                 std::chrono::milliseconds deadline = std::chrono::seconds(5)) {
  auto until = std::chrono::steady_clock::now() + deadline;
  do {
    if (run_cmd(in_ns(from) + "ping -n -q -c 1 -W 1 " + dst.to_string()).status == 0) return true;
  } while (std::chrono::steady_clock::now() < until);
  return false;
}

// Sends one UDP datagram from the caller's namespace to a socket bound in `to` at `dst`, and
// returns what arrived (nullopt on timeout).
inline std::optional<std::string> udp_exchange(const Netns& to, Ipv4Addr dst,
                                               const std::string& payload) {
  int rx = run_in_netns(to, [] { return ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0); });
  if (rx < 0) return std::nullopt;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = dst.network_order();
  addr.sin_port = htons(40000);
  std::optional<std::string> got;
  int tx = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (::bind(rx, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 && tx >= 0) {
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!got && std::chrono::steady_clock::now() < until) {
      ::sendto(tx, payload.data(), payload.size(), 0, reinterpret_cast<sockaddr*>(&addr),
               sizeof addr);
      pollfd pfd{rx, POLLIN, 0};
      if (::poll(&pfd, 1, 500) == 1) {
        char buf[1500];
        ssize_t n = ::recv(rx, buf, sizeof buf, 0);
        if (n >= 0) got = std::string(buf, static_cast<size_t>(n));
      }
    }
  }
  if (tx >= 0) ::close(tx);
  ::close(rx);
  return got;
}

// iproute2's own view of a link (`ip -j -d link show`), to cross-check what libnl reads back.
inline nlohmann::json ip_link_json(const std::string& dev, const Netns* ns = nullptr) {
  CmdResult r = run_cmd(in_ns(ns) + "ip -j -d link show dev " + dev);
  if (r.status != 0) return nullptr;
  auto j = nlohmann::json::parse(r.out, nullptr, false);
  if (!j.is_array() || j.empty()) return nullptr;
  return j[0];
}

// Runs each test in a fresh network namespace entered by the main thread, restored afterwards.
class NetnsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_EQ(::setns(ns_.fd(), CLONE_NEWNET), 0) << std::strerror(errno);
    set_link_up("lo");
  }
  void TearDown() override { ASSERT_EQ(::setns(home_.fd(), CLONE_NEWNET), 0); }

  Netns home_ = Netns::current();
  Netns ns_ = Netns::create();
};

}  // namespace kohaku::netlink::testing
