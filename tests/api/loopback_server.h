#pragma once
// Stand-in servers of the API tests on 127.0.0.1: a listening socket at a port the kernel picks,
// and a thread that accepts connections and hands each to the test's handler until the server
// stops. What a server answers (a canned reply, nothing at all, a count) is the handler's job.
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <thread>

namespace kohaku::test {

// A listening TCP socket on 127.0.0.1 at a port the kernel picks (stored in `port`). Throws
// std::runtime_error naming `who` when it cannot listen.
inline int listen_on_loopback(uint16_t& port, int backlog, const std::string& who) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof a;
  if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
      ::listen(fd, backlog) != 0 || ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
    if (fd >= 0) ::close(fd);
    throw std::runtime_error(who + ": cannot listen on 127.0.0.1");
  }
  port = ntohs(a.sin_port);
  return fd;
}

// Whether fd becomes readable within 50 ms: the accept and read loops wake this often to see
// whether their server stops.
inline bool readable_soon(int fd) {
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 50) > 0;
}

// Accepts on its own thread and calls handle(connection) for each, one at a time; the handler
// owns the connection. A class using one declares it as its last member, so the thread is gone
// before the state the handler touches.
class LoopbackServer {
 public:
  LoopbackServer(int backlog, const std::string& who, std::function<void(int)> handle)
      : handle_(std::move(handle)) {
    fd_ = listen_on_loopback(port_, backlog, who);
    thread_ = std::thread([this] {
      while (!stop_) {
        if (!readable_soon(fd_)) continue;
        int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
        if (c >= 0) handle_(c);
      }
    });
  }
  ~LoopbackServer() { stop(); }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  // Stops accepting and waits for the handler to return; idempotent.
  void stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    if (fd_ >= 0) ::close(fd_);
    fd_ = -1;
  }
  bool stopping() const { return stop_; }
  uint16_t port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  std::function<void(int)> handle_;
  int fd_ = -1;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace kohaku::test
