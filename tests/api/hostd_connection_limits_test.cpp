// kohaku-hostd under many idle connections: it raises its own open-file limit at start, so the
// common soft limit of 1,024 no longer lets ~1,100 idle connections make the API unresponsive
// (they did for 30 s before); one client address cannot hold more than its cap of connections.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "hostd_process.h"

namespace kohaku::test {
namespace {

// Connects from `source` and sends nothing: an idle connection holding one of the daemon's fds.
int idle_connection(uint16_t port, const std::string& source) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in local{};
  local.sin_family = AF_INET;
  ::inet_pton(AF_INET, source.c_str(), &local.sin_addr);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof local) != 0 ||
      ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (fd >= 0) ::close(fd);
    return -1;
  }
  return fd;
}

// "Max open files  SOFT  HARD  files" of a process.
std::pair<std::string, std::string> open_file_limits(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/limits");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("Max open files", 0) != 0) continue;
    std::istringstream f(line.substr(std::string("Max open files").size()));
    std::string soft, hard;
    f >> soft >> hard;
    return {soft, hard};
  }
  return {};
}

TEST(HostdConnectionLimits, IdleConnectionsDoNotStarveTheApi) {
  rlimit saved{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &saved), 0);
  ASSERT_GE(saved.rlim_max, 2048u) << "the hard open-file limit here is too low for this test";
  // The daemon starts with the common soft limit; the test itself needs more than that.
  rlimit low = saved;
  low.rlim_cur = 1024;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  Hostd hostd;
  try {
    hostd.start();
  } catch (...) {
    ::setrlimit(RLIMIT_NOFILE, &saved);
    throw;
  }
  rlimit high = saved;
  high.rlim_cur = saved.rlim_max;
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &high), 0);

  auto [soft, hard] = open_file_limits(hostd.pid());
  EXPECT_EQ(soft, hard) << "soft open-file limit not raised";
  EXPECT_NE(hostd.log().find("open-file limit raised from 1024"), std::string::npos) << hostd.log();

  // 1,100 idle connections from five addresses (each under the per-client cap of 256).
  std::vector<int> fds;
  for (int i = 0; i < 1100; ++i) {
    int fd = idle_connection(hostd.port(), "127.0.0." + std::to_string(11 + i % 5));
    ASSERT_GE(fd, 0) << "connection " << i << ": " << std::strerror(errno);
    fds.push_back(fd);
  }
  auto t0 = std::chrono::steady_clock::now();
  auto r = hostd.client().get("/healthz");
  auto took = std::chrono::steady_clock::now() - t0;
  EXPECT_EQ(r.status, 200);
  EXPECT_LT(took, std::chrono::seconds(2))
      << "the API answered only after " << std::chrono::duration<double>(took).count() << " s";

  // A 257th connection from one address is closed unserved.
  std::vector<int> one;
  for (int i = 0; i < 256; ++i) one.push_back(idle_connection(hostd.port(), "127.0.0.20"));
  int extra = idle_connection(hostd.port(), "127.0.0.20");
  ASSERT_GE(extra, 0);
  timeval tv{5, 0};
  ::setsockopt(extra, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::string get = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";
  (void)!::write(extra, get.data(), get.size());
  char buf[256];
  ssize_t n = ::read(extra, buf, sizeof buf);
  EXPECT_LE(n, 0) << "the 257th connection of one address was served";
  // The warning is written after the close the client saw: wait for it.
  auto logged = [&] {
    return hostd.log().find("refusing connections from 127.0.0.20") != std::string::npos;
  };
  for (auto until = deadline_in(std::chrono::seconds(5)); !logged() && !past(until);)
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_TRUE(logged()) << hostd.log();

  for (int fd : fds) ::close(fd);
  for (int fd : one) ::close(fd);
  ::close(extra);
}

}  // namespace
}  // namespace kohaku::test
