#pragma once
// A stand-in HTTP server on 127.0.0.1 that answers every request with one fixed reply, for
// testing how clients (kohakuctl, the runner) cope with replies no real daemon sends.
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <string>

#include "loopback_server.h"

namespace kohaku::test {

class CannedHttpServer {
 public:
  CannedHttpServer(int status, std::string body) { set_reply(status, std::move(body)); }
  // The reply from now on (the fuzz target of kohakuctl changes it per input).
  void set_reply(int status, std::string body) {
    std::lock_guard lock(mu_);
    reply_ = "HTTP/1.1 " + std::to_string(status) +
             " X\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: " +
             std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  std::string url() const { return server_.url(); }
  int requests() const { return requests_; }

 private:
  void answer(int c) {
    // Read the request head (bodies of these tests are small and come with it).
    std::string in;
    char buf[4096];
    while (in.find("\r\n\r\n") == std::string::npos) {
      pollfd q{c, POLLIN, 0};
      if (::poll(&q, 1, 2000) <= 0) break;
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
    }
    ++requests_;
    std::string reply;
    {
      std::lock_guard lock(mu_);
      reply = reply_;
    }
    size_t off = 0;
    while (off < reply.size()) {
      ssize_t n = ::send(c, reply.data() + off, reply.size() - off, MSG_NOSIGNAL);
      if (n <= 0) break;
      off += static_cast<size_t>(n);
    }
    ::shutdown(c, SHUT_WR);
    ::close(c);
  }

  std::mutex mu_;
  std::string reply_;
  std::atomic<int> requests_{0};
  LoopbackServer server_{16, "canned server", [this](int c) { answer(c); }};
};

}  // namespace kohaku::test
