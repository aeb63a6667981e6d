// HttpClient with ClientOptions::keep_alive: one connection for many requests, a new one (and
// the request again) when the server closed the kept one while idle, and one connection per
// request without the option. Against a minimal server that counts connections.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <string>
#include <thread>

#include "common/http_client.h"
#include "loopback_server.h"

namespace kohaku::test {
namespace {

// Answers GETs with 200 "{}" and keep-alive, on one connection at a time; with
// `close_after_reply` it closes each connection after its first reply all the same, as a
// server whose idle timeout expired between two requests does.
class CountingServer {
 public:
  explicit CountingServer(bool close_after_reply) : close_after_reply_(close_after_reply) {}
  std::string url() const { return server_.url(); }
  int connections() const { return connections_; }
  int requests() const { return requests_; }

 private:
  void serve(int c) {
    ++connections_;
    std::string in;
    char buf[4096];
    bool open = true;
    while (open && !server_.stopping()) {
      if (!readable_soon(c)) continue;
      ssize_t n = ::read(c, buf, sizeof buf);
      if (n <= 0) break;
      in.append(buf, static_cast<size_t>(n));
      for (size_t end; (end = in.find("\r\n\r\n")) != std::string::npos;) {
        in.erase(0, end + 4);
        ++requests_;
        const std::string reply =
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: "
            "keep-alive\r\nContent-Length: 2\r\n\r\n{}";
        if (::send(c, reply.data(), reply.size(), MSG_NOSIGNAL) != ssize_t(reply.size()) ||
            close_after_reply_) {
          open = false;
          break;
        }
      }
    }
    ::close(c);
  }

  const bool close_after_reply_;
  std::atomic<int> connections_{0};
  std::atomic<int> requests_{0};
  LoopbackServer server_{16, "counting server", [this](int c) { serve(c); }};
};

http::HttpClient client_for(const CountingServer& s, bool keep_alive) {
  http::ClientOptions o;
  o.timeout = std::chrono::seconds(5);
  o.keep_alive = keep_alive;
  return http::HttpClient(s.url(), o);
}

TEST(HttpClientKeepAlive, ManyRequestsShareOneConnection) {
  CountingServer server(false);
  auto c = client_for(server, true);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(c.get("/x").status, 200);
  EXPECT_EQ(server.requests(), 5);
  EXPECT_EQ(server.connections(), 1);
}

TEST(HttpClientKeepAlive, WithoutTheOptionEachRequestHasItsOwn) {
  CountingServer server(false);
  auto c = client_for(server, false);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.get("/x").status, 200);
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(server.connections(), 3);
}

TEST(HttpClientKeepAlive, AConnectionTheServerClosedIsReplacedAndTheRequestSentAgain) {
  CountingServer server(true);
  auto c = client_for(server, true);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(c.get("/x").status, 200) << "request " << i;
  // Each request after the first found its kept connection closed, and was answered on a new
  // one: every request reached the server exactly once.
  EXPECT_EQ(server.requests(), 3);
  EXPECT_EQ(server.connections(), 3);
}

}  // namespace
}  // namespace kohaku::test
