// The generic HTTP layer (HttpServer + Router + HttpClient) over real loopback sockets, with a
// test router; the host's own routes are covered by the hostd_*_test.cpp files.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/api_error.h"
#include "common/domain_error.h"
#include "common/http_client.h"
#include "common/http_server.h"

namespace kohaku::http {
namespace {

using nlohmann::json;

// A raw TCP connection for what HttpClient will not send (broken HTTP, pipelining, stalls).
class RawConnection {
 public:
  // `source`: the local address to connect from (any 127/8 address reaches the loopback server).
  explicit RawConnection(uint16_t port, const char* source = nullptr) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    if (source) {
      sockaddr_in local{};
      local.sin_family = AF_INET;
      ::inet_pton(AF_INET, source, &local.sin_addr);
      ::bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local);
    }
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    timeval tv{5, 0};
    ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawConnection() { ::close(fd_); }
  bool connected() const { return connected_; }
  void send(const std::string& data) { (void)!::write(fd_, data.data(), data.size()); }
  // Reads until `needle` has arrived, EOF, or the 5 s receive timeout.
  std::string read_until(const std::string& needle) {
    std::string got;
    char buf[4096];
    while (got.find(needle) == std::string::npos) {
      ssize_t n = ::read(fd_, buf, sizeof buf);
      if (n <= 0) break;
      got.append(buf, static_cast<size_t>(n));
    }
    return got;
  }
  std::string read_all() { return read_until(std::string(1, '\0')); }

 private:
  int fd_ = -1;
  bool connected_ = false;
};

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.get("/items/{id}", [](const Request& r) {
      return json{{"id", r.path_params.at("id")}, {"q", r.query}};
    });
    router_.get("/items/special", [](const Request&) { return json{{"special", true}}; });
    router_.post("/echo", [](const Request& r) { return json{{"got", r.json()}}; });
    router_.put("/echo", [](const Request& r) { return json{{"put", r.json()}}; });
    router_.get("/conflict", [](const Request&) -> json { throw ApiError(409, "taken"); });
    router_.get("/boom", [](const Request&) -> json { throw std::runtime_error("secret detail"); });
    router_.get("/slow", [this](const Request&) {
      // Blocks its I/O thread until the test lets it go (bounded, so a failure cannot hang).
      std::unique_lock lock(slow_mu_);
      slow_started_ = true;
      slow_cv_.notify_all();
      slow_cv_.wait_for(lock, std::chrono::seconds(10), [this] { return slow_release_; });
      return json{{"slow", true}};
    });
    router_.get("/type", [](const Request& r) { return json{{"n", r.json().at("n").get<int>()}}; });
    // Deferred: answered from another thread after the handler returned, or at once, or refused
    // by what the handler throws before replying.
    router_.post_deferred("/deferred/later", [](const Request& r, Reply reply) {
      std::thread([reply, got = r.json()] { reply(nullptr, json{{"later", got}}); }).detach();
    });
    router_.post_deferred("/deferred/now", [](const Request&, Reply reply) {
      reply(nullptr, json{{"now", true}});
    });
    router_.post_deferred("/deferred/throws", [](const Request&, Reply) {
      throw DomainError(ErrorKind::kConflict, "taken before replying");
    });
    router_.post_deferred("/deferred/fails", [](const Request&, Reply reply) {
      reply(std::make_exception_ptr(DomainError(ErrorKind::kInternal, "flush failed")), nullptr);
    });
  }

  void TearDown() override {
    {
      std::lock_guard lock(slow_mu_);
      slow_release_ = true;
    }
    slow_cv_.notify_all();
    if (server_) server_->stop();  // joins the threads before the members they use go away
  }

  void start(std::string token = {}, size_t body_limit = 1 << 20, size_t per_client = 256) {
    router_.set_bearer_token(std::move(token));
    ServerOptions o;
    o.max_connections_per_client = per_client;
    o.address = "127.0.0.1";
    o.port = 0;
    o.body_limit = body_limit;
    o.threads = 2;
    server_ = std::make_unique<HttpServer>(router_, o);
    server_->start();
  }

  HttpClient client(std::string token = {}) {
    ClientOptions o;
    o.bearer_token = std::move(token);
    o.timeout = std::chrono::seconds(5);
    return HttpClient(server_->url(), o);
  }

  Router router_;
  std::unique_ptr<HttpServer> server_;
  std::mutex slow_mu_;
  std::condition_variable slow_cv_;
  bool slow_started_ = false;
  bool slow_release_ = false;
};

TEST_F(HttpServerTest, BindsAnEphemeralPortAndReportsIt) {
  start();
  EXPECT_NE(server_->port(), 0);
  EXPECT_EQ(server_->address(), "127.0.0.1");
  EXPECT_EQ(server_->url(), "http://127.0.0.1:" + std::to_string(server_->port()));
}

TEST_F(HttpServerTest, RoutesPathParamsAndDecodesQuery) {
  start();
  auto res = client().get("/items/a%20b?x=1&y=hello+world&z=%2F%26&empty=");
  ASSERT_EQ(res.status, 200) << res.body;
  EXPECT_EQ(res.headers["content-type"], "application/json");
  json j = res.json();
  EXPECT_EQ(j["id"], "a b");
  EXPECT_EQ(j["q"]["x"], "1");
  EXPECT_EQ(j["q"]["y"], "hello world");
  EXPECT_EQ(j["q"]["z"], "/&");
  EXPECT_EQ(j["q"]["empty"], "");
}

TEST_F(HttpServerTest, LiteralSegmentBeatsParameter) {
  start();
  EXPECT_EQ(client().get("/items/special").json()["special"], true);
  EXPECT_EQ(client().get("/items/other").json()["id"], "other");
}

TEST_F(HttpServerTest, ErrorsAreJsonWithTheRightStatus) {
  start();
  auto c = client();
  auto unknown = c.get("/nope");
  EXPECT_EQ(unknown.status, 404);
  EXPECT_TRUE(unknown.json()["error"].is_string());

  auto method = c.request("DELETE", "/echo");
  EXPECT_EQ(method.status, 405);
  EXPECT_EQ(method.headers["allow"], "POST, PUT");
  EXPECT_TRUE(method.json()["error"].is_string());

  auto conflict = c.get("/conflict");
  EXPECT_EQ(conflict.status, 409);
  EXPECT_EQ(conflict.json()["error"], "taken");

  auto boom = c.get("/boom");
  EXPECT_EQ(boom.status, 500);
  EXPECT_EQ(boom.json()["error"], "internal error");  // details go to the log, not the client

  auto bad_json = c.request("POST", "/echo", "{\"a\":", "application/json");
  EXPECT_EQ(bad_json.status, 422);
  EXPECT_NE(bad_json.error_message().find("malformed JSON"), std::string::npos);

  auto wrong_type = c.request("GET", "/type", "{\"n\":\"x\"}", "application/json");
  EXPECT_EQ(wrong_type.status, 422);

  auto bad_escape = c.get("/items/x?a=%zz");
  EXPECT_EQ(bad_escape.status, 400);
  EXPECT_TRUE(bad_escape.json()["error"].is_string());
}

TEST_F(HttpServerTest, DeferredHandlersAnswerFromAnyThreadAndFailLikePlainOnes) {
  start();
  auto c = client();
  auto later = c.post("/deferred/later", json{{"k", 1}});
  ASSERT_EQ(later.status, 200) << later.body;
  EXPECT_EQ(later.json()["later"]["k"], 1);
  EXPECT_EQ(c.post("/deferred/now").json()["now"], true);
  auto thrown = c.post("/deferred/throws");
  EXPECT_EQ(thrown.status, 409);
  EXPECT_EQ(thrown.json()["error"], "taken before replying");
  auto failed = c.post("/deferred/fails");
  EXPECT_EQ(failed.status, 500);
  EXPECT_EQ(failed.json()["error"], "flush failed");
  EXPECT_EQ(c.request("POST", "/deferred/now", "{\"a\":", "application/json").status, 422);
  // The router's blocking form waits for the reply too (the fuzzers use it).
  Request r;
  r.method = "POST";
  r.target = "/deferred/later";
  Response direct = router_.handle(r);
  EXPECT_EQ(direct.status, 200);
  EXPECT_TRUE(direct.body["later"].is_object());
}

TEST_F(HttpServerTest, JsonBodiesRoundTrip) {
  start();
  auto res = client().post("/echo", json{{"k", {1, 2, 3}}, {"s", "é"}});
  ASSERT_EQ(res.status, 200);
  EXPECT_EQ(res.json()["got"]["k"][2], 3);
  EXPECT_EQ(res.json()["got"]["s"], "é");
  EXPECT_EQ(client().post("/echo").json()["got"], json::object());  // empty body is {}
}

TEST_F(HttpServerTest, OversizedBodyGets413) {
  start({}, 1024);
  auto res = client().request("POST", "/echo", std::string(4 << 20, 'x'), "application/json");
  EXPECT_EQ(res.status, 413);
  EXPECT_TRUE(res.json()["error"].is_string());
  // The server is still fine afterwards.
  EXPECT_EQ(client().post("/echo", json{{"a", 1}}).status, 200);
}

TEST_F(HttpServerTest, OversizedChunkedBodyGets413) {
  start({}, 1024);
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.connected());
  std::string chunk(2000, 'x');
  raw.send("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n7d0\r\n" + chunk +
           "\r\n0\r\n\r\n");
  EXPECT_NE(raw.read_all().find("HTTP/1.1 413"), std::string::npos);
}

TEST_F(HttpServerTest, MalformedRequestGets400AndClose) {
  start();
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.connected());
  raw.send("THIS IS NOT HTTP\r\n\r\n");
  std::string reply = raw.read_all();
  EXPECT_NE(reply.find("HTTP/1.1 400"), std::string::npos) << reply;
  EXPECT_NE(reply.find("\"error\""), std::string::npos) << reply;
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  start();
  RawConnection raw(server_->port());
  ASSERT_TRUE(raw.connected());
  // Pipelined: both answers must come back, in order, on the same connection.
  raw.send("GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\nGET /items/2 HTTP/1.1\r\nHost: x\r\n\r\n");
  std::string reply = raw.read_until("\"id\":\"2\"");
  auto first = reply.find("\"id\":\"1\"");
  auto second = reply.find("\"id\":\"2\"");
  ASSERT_NE(first, std::string::npos) << reply;
  ASSERT_NE(second, std::string::npos) << reply;
  EXPECT_LT(first, second);
}

TEST_F(HttpServerTest, StalledClientDoesNotBlockOthers) {
  start();
  // Half a request that never finishes, on several connections.
  std::vector<std::unique_ptr<RawConnection>> stalled;
  for (int i = 0; i < 8; ++i) {
    stalled.push_back(std::make_unique<RawConnection>(server_->port()));
    stalled.back()->send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{");
  }
  // Were a connection to hold a thread, this would wait for the 30 s idle timeout and the
  // client's 5 s timeout would throw.
  EXPECT_EQ(client().get("/items/ok").status, 200);
}

TEST_F(HttpServerTest, SlowHandlerDoesNotBlockOtherRequests) {
  start();
  auto slow = std::async(std::launch::async, [&] { return client().get("/slow").status; });
  {
    std::unique_lock lock(slow_mu_);
    ASSERT_TRUE(slow_cv_.wait_for(lock, std::chrono::seconds(5), [this] { return slow_started_; }));
  }
  // Answered while the slow handler still holds its thread.
  EXPECT_EQ(client().get("/items/fast").status, 200);
  EXPECT_EQ(slow.wait_for(std::chrono::seconds(0)), std::future_status::timeout);
  {
    std::lock_guard lock(slow_mu_);
    slow_release_ = true;
  }
  slow_cv_.notify_all();
  EXPECT_EQ(slow.get(), 200);
}

TEST_F(HttpServerTest, BearerTokenGuardsMutatingRoutesOnly) {
  start("s3cret-token");
  EXPECT_EQ(client().get("/items/1").status, 200);  // reads stay open

  auto none = client().post("/echo", json{{"a", 1}});
  EXPECT_EQ(none.status, 401);
  EXPECT_EQ(none.headers["www-authenticate"], "Bearer");
  EXPECT_TRUE(none.json()["error"].is_string());
  EXPECT_EQ(client("wrong").post("/echo", json{{"a", 1}}).status, 401);
  EXPECT_EQ(client("s3cret-toke").post("/echo", json{{"a", 1}}).status, 401);
  EXPECT_EQ(client("s3cret-token-").post("/echo", json{{"a", 1}}).status, 401);
  auto basic = client().request("POST", "/echo", "{}", "application/json",
                                {{"Authorization", "Basic s3cret-token"}});
  EXPECT_EQ(basic.status, 401);

  EXPECT_EQ(client("s3cret-token").post("/echo", json{{"a", 1}}).status, 200);
  EXPECT_EQ(client("s3cret-token").put("/echo", json{{"a", 1}}).status, 200);
}

// One address holding its cap of connections gets further ones closed unserved; other clients
// are served meanwhile, and a place freed by a closed connection can be taken again.
TEST_F(HttpServerTest, OneClientCannotHoldMoreThanItsCapOfConnections) {
  start({}, 1 << 20, 8);
  const std::string get = "GET /items/1 HTTP/1.1\r\nHost: x\r\n\r\n";
  std::vector<std::unique_ptr<RawConnection>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(std::make_unique<RawConnection>(server_->port(), "127.0.0.1"));
    held.back()->send(get);
    ASSERT_NE(held.back()->read_until("}").find("200 OK"), std::string::npos) << "connection " << i;
  }
  RawConnection ninth(server_->port(), "127.0.0.1");
  ninth.send(get);
  EXPECT_EQ(ninth.read_all().find("200 OK"), std::string::npos) << "the 9th connection was served";

  RawConnection other(server_->port(), "127.0.0.2");
  other.send(get);
  EXPECT_NE(other.read_until("}").find("200 OK"), std::string::npos)
      << "another client was refused";

  held.pop_back();  // the server notices the close and frees the place
  bool served = false;
  for (auto until = std::chrono::steady_clock::now() + std::chrono::seconds(5);
       !served && std::chrono::steady_clock::now() < until;) {
    RawConnection again(server_->port(), "127.0.0.1");
    again.send(get);
    served = again.read_until("}").find("200 OK") != std::string::npos;
    if (!served) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  EXPECT_TRUE(served) << "the freed place was not given out again";
}

TEST_F(HttpServerTest, StopIsPromptWithOpenConnections) {
  start();
  RawConnection idle(server_->port());
  ASSERT_TRUE(idle.connected());
  auto t0 = std::chrono::steady_clock::now();
  server_->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  EXPECT_THROW(client().get("/items/1"), ClientError);
}

TEST(HttpServer, BindFailureNamesTheAddress) {
  Router router;
  ServerOptions o;
  o.address = "127.0.0.1";
  HttpServer first(router, o);
  o.port = first.port();
  try {
    HttpServer second(router, o);
    FAIL() << "second bind on the same port succeeded";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("127.0.0.1:" + std::to_string(o.port)), std::string::npos)
        << e.what();
  }
  o.address = "not-an-address";
  EXPECT_THROW(HttpServer(router, o), std::runtime_error);
}

TEST(HttpClient, ConnectionRefusedNamesTheUrl) {
  // Find a port nobody listens on: bind, read it, close.
  Router router;
  ServerOptions o;
  o.address = "127.0.0.1";
  uint16_t port;
  {
    HttpServer s(router, o);
    port = s.port();
  }
  HttpClient c("http://127.0.0.1:" + std::to_string(port));
  try {
    c.get("/");
    FAIL() << "request to a closed port succeeded";
  } catch (const ClientError& e) {
    EXPECT_NE(std::string(e.what()).find("http://127.0.0.1:" + std::to_string(port)),
              std::string::npos)
        << e.what();
  }
}

TEST(HttpClient, TimesOutOnASilentServer) {
  // A listening socket that never answers: the kernel completes the handshake, nobody reads.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(::listen(fd, 4), 0);
  socklen_t len = sizeof a;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ClientOptions o;
  o.timeout = std::chrono::milliseconds(300);
  HttpClient c("http://127.0.0.1:" + std::to_string(ntohs(a.sin_port)), o);
  auto t0 = std::chrono::steady_clock::now();
  try {
    c.get("/");
    FAIL() << "no timeout";
  } catch (const ClientError& e) {
    EXPECT_NE(std::string(e.what()).find("timed out"), std::string::npos) << e.what();
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(3));
  ::close(fd);
}

TEST(BaseUrl, ParsesTheForms) {
  auto u = BaseUrl::parse("http://10.0.0.1:8000");
  EXPECT_EQ(u.host, "10.0.0.1");
  EXPECT_EQ(u.port, 8000);
  EXPECT_EQ(u.prefix, "");
  EXPECT_EQ(BaseUrl::parse("http://host").port, 80);
  EXPECT_EQ(BaseUrl::parse("host:9").port, 9);
  EXPECT_EQ(BaseUrl::parse("http://h:1/api/").prefix, "/api");
  auto v6 = BaseUrl::parse("http://[::1]:8000");
  EXPECT_EQ(v6.host, "::1");
  EXPECT_EQ(v6.to_string(), "http://[::1]:8000");
  EXPECT_THROW(BaseUrl::parse("https://x"), ClientError);
  EXPECT_THROW(BaseUrl::parse("http://:80"), ClientError);
  EXPECT_THROW(BaseUrl::parse("http://x:0"), ClientError);
  EXPECT_THROW(BaseUrl::parse("http://x:65536"), ClientError);
  EXPECT_THROW(BaseUrl::parse("http://x:8a"), ClientError);
  EXPECT_THROW(BaseUrl::parse("http://x:"), ClientError);
}

TEST(Query, EncodeDecodeRoundTrip) {
  Params p{{"a b", "c&d=e"}, {"k", "ü/+"}};
  auto parsed = parse_query(build_query(p));
  ASSERT_TRUE(parsed);
  EXPECT_EQ(*parsed, p);
  EXPECT_FALSE(parse_query("a=%4"));
  EXPECT_FALSE(parse_query("a=%g0"));
  EXPECT_EQ(with_query("/x", {{"a", "1"}, {"b", std::nullopt}, {"c", "x y"}}), "/x?a=1&c=x%20y");
}

TEST(ConstantTimeEqual, ComparesContentAndLength) {
  EXPECT_TRUE(constant_time_equal("abc", "abc"));
  EXPECT_FALSE(constant_time_equal("abc", "abd"));
  EXPECT_FALSE(constant_time_equal("abc", "abcd"));
  EXPECT_FALSE(constant_time_equal("", "a"));
  EXPECT_TRUE(constant_time_equal("", ""));
}

}  // namespace
}  // namespace kohaku::http
