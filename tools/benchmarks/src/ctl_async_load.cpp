#include "ctl_async_load.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <memory>
#include <thread>
#include <vector>

#include "common/http_client.h"

namespace kohaku::bench {
namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using clock_type = std::chrono::steady_clock;
constexpr std::chrono::seconds kTimeout{10};

// One client: connect, then POST, read the answer, POST the next... until next() says done.
class Connection : public std::enable_shared_from_this<Connection> {
 public:
  Connection(net::io_context& ioc, const AsyncLoad& load, const tcp::resolver::results_type& at,
             std::string host, int id)
      : stream_(ioc), load_(load), at_(at), host_(std::move(host)), id_(id) {}
  ~Connection() {
    // The event loop has finished with this connection: hand its results over once.
    tally_->add(ms_, failures_, first_error_);
  }

  void start(Tally& tally) {
    tally_ = &tally;
    connect();
  }

 private:
  void connect() {
    stream_.expires_after(kTimeout);
    stream_.async_connect(at_, [self = shared_from_this()](beast::error_code ec, auto) {
      if (ec) return self->broken("connect: " + ec.message(), false);
      self->send();
    });
  }

  void send() {
    auto target = load_.next(id_, n_++);
    if (!target) return;  // done: the last handler lets go and the connection closes
    req_ = {bhttp::verb::post, *target, 11};
    req_.set(bhttp::field::host, host_);
    if (!load_.bearer_token.empty())
      req_.set(bhttp::field::authorization, "Bearer " + load_.bearer_token);
    req_.keep_alive(true);
    req_.prepare_payload();
    res_ = {};
    sent_ = clock_type::now();
    stream_.expires_after(kTimeout);
    bhttp::async_write(stream_, req_, [self = shared_from_this()](beast::error_code ec, size_t) {
      if (ec) return self->broken("write: " + ec.message(), true);
      self->stream_.expires_after(kTimeout);
      bhttp::async_read(self->stream_, self->buffer_, self->res_,
                        [self](beast::error_code ec, size_t) { self->answered(ec); });
    });
  }

  void answered(beast::error_code ec) {
    if (ec) return broken("read: " + ec.message(), true);
    std::string problem = load_.check(static_cast<int>(res_.result_int()), res_.body());
    if (problem.empty())
      ms_.push_back(std::chrono::duration<double, std::milli>(clock_type::now() - sent_).count());
    else
      fail(problem);
    if (!res_.keep_alive()) return reconnect();
    send();
  }

  void fail(const std::string& problem) {
    ++failures_;
    if (first_error_.empty()) first_error_ = problem;
  }

  // A failed request counts; the connection is opened again (after a failed connect: given up,
  // so a daemon that is gone ends the run instead of spinning).
  void broken(const std::string& problem, bool again) {
    fail(problem);
    if (again) reconnect();
  }

  void reconnect() {
    beast::error_code ignored;
    stream_.socket().close(ignored);
    buffer_.clear();
    connect();
  }

  beast::tcp_stream stream_;
  const AsyncLoad& load_;
  const tcp::resolver::results_type& at_;
  std::string host_;
  int id_;
  long n_ = 0;
  beast::flat_buffer buffer_;
  bhttp::request<bhttp::empty_body> req_;
  bhttp::response<bhttp::string_body> res_;
  clock_type::time_point sent_;
  Tally* tally_ = nullptr;
  std::vector<double> ms_;
  long failures_ = 0;
  std::string first_error_;
};

}  // namespace

double run_async_load(const AsyncLoad& load, Tally& tally) {
  auto base = http::BaseUrl::parse(load.url);
  int threads = std::max(1, load.threads);
  // One event loop per thread, connections dealt out in turn: no strands needed.
  std::vector<std::unique_ptr<net::io_context>> loops;
  for (int i = 0; i < threads; ++i) loops.push_back(std::make_unique<net::io_context>(1));
  tcp::resolver resolver(*loops.front());
  const auto at = resolver.resolve(base.host, std::to_string(base.port));
  auto t0 = clock_type::now();
  for (int c = 0; c < load.connections; ++c)
    std::make_shared<Connection>(*loops[static_cast<size_t>(c % threads)], load, at,
                                 base.host + ":" + std::to_string(base.port), c)
        ->start(tally);
  std::vector<std::thread> running;
  for (auto& loop : loops) running.emplace_back([&loop] { loop->run(); });
  for (auto& t : running) t.join();
  return std::chrono::duration<double>(clock_type::now() - t0).count();
}

}  // namespace kohaku::bench
