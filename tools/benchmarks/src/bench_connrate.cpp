// bench_connrate: new TCP connections per second (the masquerade's new-flow path).
//
//   bench_connrate server --port P            accepts and closes until killed
//   bench_connrate client --dst A.B.C.D --port P [--threads 4] [--seconds 3]
//
// The client opens connections in a loop (each one a full three-way handshake through the
// NAT), and closes with an RST (SO_LINGER 0) so its own ports never pile up in TIME_WAIT.
// Prints: conns_per_s=<n> conns=<n> failures=<n> wall_s=<s>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_cli.h"

namespace {

class Fd {
 public:
  explicit Fd(int fd) : fd_(fd) {}
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  int get() const { return fd_; }

 private:
  int fd_;
};

sockaddr_in address(const std::string& ip, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (inet_pton(AF_INET, ip.c_str(), &sa.sin_addr) != 1)
    throw std::invalid_argument("not an IPv4 address: " + ip);
  return sa;
}

[[noreturn]] void fail(const std::string& what) {
  throw std::runtime_error(what + ": " + std::strerror(errno));
}

int server(uint16_t port) {
  Fd s(::socket(AF_INET, SOCK_STREAM, 0));
  if (s.get() < 0) fail("socket");
  int one = 1;
  ::setsockopt(s.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in sa = address("0.0.0.0", port);
  if (::bind(s.get(), reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0) fail("bind");
  if (::listen(s.get(), 4096) != 0) fail("listen");
  std::printf("listening port=%u\n", port);
  std::fflush(stdout);
  for (;;) {
    int c = ::accept(s.get(), nullptr, nullptr);
    if (c >= 0) ::close(c);
  }
}

int client(const std::string& dst, uint16_t port, int threads, double seconds) {
  sockaddr_in sa = address(dst, port);
  std::atomic<long> ok{0}, failed{0};
  std::atomic<int> first_errno{0};
  auto t0 = std::chrono::steady_clock::now();
  auto deadline = t0 + std::chrono::duration<double>(seconds);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t) {
    pool.emplace_back([&] {
      linger lg{1, 0};
      while (std::chrono::steady_clock::now() < deadline) {
        Fd c(::socket(AF_INET, SOCK_STREAM, 0));
        if (c.get() < 0) {
          ++failed;
          continue;
        }
        ::setsockopt(c.get(), SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
        timeval tv{1, 0};
        ::setsockopt(c.get(), SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        if (::connect(c.get(), reinterpret_cast<const sockaddr*>(&sa), sizeof sa) == 0) {
          ++ok;
        } else {
          int zero = 0;
          first_errno.compare_exchange_strong(zero, errno);
          ++failed;
        }
      }
    });
  }
  for (auto& th : pool) th.join();
  double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::printf("conns_per_s=%.0f conns=%ld failures=%ld wall_s=%.3f%s%s\n",
              static_cast<double>(ok) / wall, ok.load(), failed.load(), wall,
              first_errno ? " first_error=" : "", first_errno ? std::strerror(first_errno) : "");
  return ok > 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  return kohaku::bench::report_failures(
      "bench_connrate",
      [&] {
        if (argc < 2) throw std::invalid_argument("usage: bench_connrate server|client ...");
        std::string mode = argv[1], dst;
        uint16_t port = 0;
        int threads = 4;
        double seconds = 3;
        for (int i = 2; i + 1 < argc; i += 2) {
          std::string k = argv[i], v = argv[i + 1];
          if (k == "--dst")
            dst = v;
          else if (k == "--port")
            port = static_cast<uint16_t>(std::stoul(v));
          else if (k == "--threads")
            threads = std::stoi(v);
          else if (k == "--seconds")
            seconds = std::stod(v);
          else
            throw std::invalid_argument("unknown option " + k);
        }
        if (port == 0) throw std::invalid_argument("--port is required");
        if (mode == "server") return server(port);
        if (mode == "client" && !dst.empty()) return client(dst, port, threads, seconds);
        throw std::invalid_argument("client needs --dst");
      },
      2);
}
