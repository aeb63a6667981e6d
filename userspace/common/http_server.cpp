#include "http_server.h"

#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/thread_pool.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <array>
#include <cctype>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_set>
#include <vector>

#include "http_beast.h"
#include "log.h"

namespace kohaku::http {
namespace {

constexpr std::chrono::seconds kDrainTimeout{5};
constexpr size_t kDrainLimit = 64u << 20;

// One client connection: read a request, answer it, repeat while keep-alive holds.
// Every step runs on the connection's strand; the shared_ptr captured by each pending
// operation keeps the session alive exactly as long as the connection is in use.
// Open connections per client address. A Slot holds one place for as long as its session lives.
class ClientCounts {
 public:
  class Slot {
   public:
    Slot(ClientCounts& counts, net::ip::address addr) : counts_(counts), addr_(std::move(addr)) {}
    ~Slot() { counts_.release(addr_); }
    Slot(const Slot&) = delete;
    Slot& operator=(const Slot&) = delete;

   private:
    ClientCounts& counts_;
    net::ip::address addr_;
  };

  // A slot for `addr`, or nullptr when it already holds `max` connections (0: no cap).
  std::unique_ptr<Slot> take(const net::ip::address& addr, size_t max) {
    std::lock_guard<std::mutex> lock(mu_);
    size_t& n = open_[addr];
    if (max && n >= max) return nullptr;
    ++n;
    return std::make_unique<Slot>(*this, addr);
  }

 private:
  void release(const net::ip::address& addr) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = open_.find(addr);
    if (it != open_.end() && --it->second == 0) open_.erase(it);
  }

  std::mutex mu_;
  std::map<net::ip::address, size_t> open_;
};

class Session;

// The sessions whose request is being handled. The answer refers to its session only weakly
// (a deferred one may come from a thread of someone else's, e.g. after a journal flush): the
// strong reference is held here, so stop() can let go of every session while their io_context
// still exists, and an answer that arrives after that finds the gate closed and is dropped.
class Awaiting {
 public:
  void add(std::shared_ptr<Session> session) {
    std::lock_guard lock(mu_);
    if (!closed_) sessions_.insert(std::move(session));
  }
  // Calls post(session) unless the server stopped meanwhile; under the lock, so that stop()
  // cannot drop the session's io_context while post queues work on it.
  template <class Post>
  void answer(const std::weak_ptr<Session>& weak, Post&& post) {
    std::lock_guard lock(mu_);
    auto session = weak.lock();
    if (closed_ || !session) return;
    sessions_.erase(session);
    post(std::move(session));
  }
  // No answer is delivered after this; returns the sessions still waiting for one.
  std::unordered_set<std::shared_ptr<Session>> close() {
    std::lock_guard lock(mu_);
    closed_ = true;
    return std::move(sessions_);
  }

 private:
  std::mutex mu_;
  bool closed_ = false;
  std::unordered_set<std::shared_ptr<Session>> sessions_;
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, const Router& router, const ServerOptions& options,
          const Router::RunBlocking& run_blocking, std::shared_ptr<Awaiting> awaiting,
          std::unique_ptr<ClientCounts::Slot> slot)
      : stream_(std::move(socket)),
        router_(router),
        options_(options),
        run_blocking_(run_blocking),
        awaiting_(std::move(awaiting)),
        slot_(std::move(slot)) {}

  void run() {
    net::dispatch(stream_.get_executor(),
                  beast::bind_front_handler(&Session::read_header, shared_from_this()));
  }

 private:
  void read_header() {
    parser_.emplace();
    parser_->body_limit(options_.body_limit);
    parser_->header_limit(static_cast<std::uint32_t>(options_.header_limit));
    stream_.expires_after(options_.idle_timeout);
    bhttp::async_read_header(stream_, buffer_, *parser_,
                             beast::bind_front_handler(&Session::on_header, shared_from_this()));
  }

  void on_header(error_code ec, size_t) {
    if (ec) return on_read_error(ec);
    const auto& req = parser_->get();
    if (auto len = parser_->content_length(); len && *len > options_.body_limit) {
      return send(Response::error(413, "request body of " + std::to_string(*len) +
                                           " bytes exceeds the limit of " +
                                           std::to_string(options_.body_limit)),
                  req.version(), false);
    }
    if (beast::iequals(req[bhttp::field::expect], "100-continue")) {
      auto cont = std::make_shared<bhttp::response<bhttp::empty_body>>(bhttp::status::continue_,
                                                                       req.version());
      bhttp::async_write(stream_, *cont, [self = shared_from_this(), cont](error_code ec, size_t) {
        if (ec) return self->close();
        self->read_body();
      });
      return;
    }
    read_body();
  }

  void read_body() {
    stream_.expires_after(options_.idle_timeout);
    bhttp::async_read(stream_, buffer_, *parser_,
                      beast::bind_front_handler(&Session::on_body, shared_from_this()));
  }

  void on_body(error_code ec, size_t) {
    if (ec) return on_read_error(ec);
    bhttp::request<bhttp::string_body> msg = parser_->release();
    auto req = std::make_shared<Request>();
    req->method = std::string(msg.method_string());
    req->target = std::string(msg.target());
    req->body = std::move(msg.body());
    req->headers = lower_cased_fields(msg);
    // A plain handler runs on the handler pool, a deferred one here and answers when it is done
    // (after a journal flush). The answer comes back to this connection's strand. Nothing else
    // is read from the connection meanwhile (no pipelining), so answers keep their order.
    awaiting_->add(shared_from_this());
    auto respond = [awaiting = awaiting_, weak = weak_from_this(), req, version = msg.version(),
                    keep_alive = msg.keep_alive()](Response res) {
      if (log::debug_enabled())
        log::debug("http", req->method + " " + req->target + " -> " + std::to_string(res.status));
      awaiting->answer(weak, [&](std::shared_ptr<Session> self) {
        auto executor = self->stream_.get_executor();
        net::post(executor, [self = std::move(self), res = std::move(res), version, keep_alive] {
          self->send(res, version, keep_alive);
        });
      });
    };
    try {
      router_.handle(std::move(req), std::move(respond), run_blocking_);
    } catch (const std::exception& e) {  // Router::handle does not throw; belt and braces
      log::error("http", std::string("request handling failed: ") + e.what());
      awaiting_->answer(weak_from_this(), [](std::shared_ptr<Session>) {});  // let go of it
      close();
    }
  }

  void on_read_error(error_code ec) {
    if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message ||
        ec.category() != bhttp::make_error_code(bhttp::error::end_of_stream).category())
      return close();  // the peer went away or stalled: nobody to answer
    unsigned version = parser_ && parser_->is_header_done() ? parser_->get().version() : 11;
    if (ec == bhttp::error::body_limit) {
      return send(Response::error(413, "request body exceeds the limit of " +
                                           std::to_string(options_.body_limit) + " bytes"),
                  version, false);
    }
    if (ec == bhttp::error::header_limit) {
      return send(Response::error(431, "request header block too large"), version, false);
    }
    send(Response::error(400, "malformed HTTP request: " + ec.message()), version, false);
  }

  void send(const Response& r, unsigned version, bool keep_alive) {
    auto res = std::make_shared<bhttp::response<bhttp::string_body>>();
    res->version(version);
    res->result(static_cast<unsigned>(r.status));
    res->set(bhttp::field::server, "kohaku-overlay");
    res->set(bhttp::field::content_type, "application/json");
    for (const auto& [name, value] : r.headers) res->set(name, value);
    // replace: a message may echo client bytes that are not valid UTF-8.
    res->body() = r.body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    res->body().push_back('\n');
    res->keep_alive(keep_alive);
    res->prepare_payload();
    stream_.expires_after(options_.idle_timeout);
    bhttp::async_write(stream_, *res, [self = shared_from_this(), res](error_code ec, size_t) {
      if (ec) return self->close();
      if (res->need_eof()) return self->drain_and_close();
      self->read_header();
    });
  }

  // After an early answer (413, 400) the client may still be sending; closing with unread data
  // would reset the connection and could destroy our answer before the client reads it. So
  // half-close and swallow what remains, bounded in time and size.
  void drain_and_close() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec) return close();
    stream_.expires_after(kDrainTimeout);
    drain();
  }

  void drain() {
    stream_.async_read_some(net::buffer(discard_),
                            [self = shared_from_this()](error_code ec, size_t n) {
                              self->drained_ += n;
                              if (ec || self->drained_ > kDrainLimit) return self->close();
                              self->drain();
                            });
  }

  void close() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream_.socket().close(ec);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
  const Router& router_;
  const ServerOptions& options_;
  const Router::RunBlocking& run_blocking_;
  std::shared_ptr<Awaiting> awaiting_;
  std::array<char, 16384> discard_{};
  size_t drained_ = 0;
  std::unique_ptr<ClientCounts::Slot> slot_;
};

}  // namespace

// One listening socket, with its own timer for retrying after a failed accept.
struct Listener {
  explicit Listener(net::io_context& ioc)
      : acceptor(net::make_strand(ioc)), retry_timer(acceptor.get_executor()) {}
  tcp::acceptor acceptor;
  net::steady_timer retry_timer;
  tcp::endpoint bound;
};

struct HttpServer::Impl {
  Impl(const Router& r, ServerOptions o)
      : router(r),
        options(std::move(o)),
        ioc(static_cast<int>(std::max(1u, options.threads))),
        handlers(std::max(1u, options.handler_threads)),
        run_blocking([this](std::function<void()> work) { net::post(handlers, std::move(work)); }) {
  }

  void accept(Listener& l) {
    l.acceptor.async_accept(net::make_strand(ioc), [this, &l](error_code ec, tcp::socket socket) {
      if (ec == net::error::operation_aborted || !l.acceptor.is_open()) return;
      if (ec) {
        // E.g. EMFILE: keep serving the connections we have and try again shortly.
        log::warn("http", "accept failed: " + ec.message());
        l.retry_timer.expires_after(std::chrono::milliseconds(100));
        l.retry_timer.async_wait([this, &l](error_code ec) {
          if (!ec) accept(l);
        });
        return;
      }
      error_code peer_ec;
      auto peer = socket.remote_endpoint(peer_ec);
      if (peer_ec) {  // reset before we looked at it
        accept(l);
        return;
      }
      auto slot = clients.take(peer.address(), options.max_connections_per_client);
      if (!slot) {
        // Over its cap: closed unread, which the client sees as a reset, and logged at most once
        // a second so a flood does not flood the log too.
        error_code ignored;
        socket.close(ignored);
        auto now = std::chrono::steady_clock::now();
        std::lock_guard lock(refusal_log_mu);
        if (now - last_refusal_log > std::chrono::seconds(1)) {
          last_refusal_log = now;
          log::warn("http", "refusing connections from " + peer.address().to_string() + ": " +
                                std::to_string(options.max_connections_per_client) +
                                " already open");
        }
        accept(l);
        return;
      }
      std::make_shared<Session>(std::move(socket), router, options, run_blocking, awaiting,
                                std::move(slot))
          ->run();
      accept(l);
    });
  }

  // Binds and listens on address:port; throws naming both.
  void listen(const std::string& address, uint16_t port) {
    std::string where = address + ":" + std::to_string(port);
    error_code ec;
    auto addr = net::ip::make_address(address, ec);
    if (ec) throw std::runtime_error("invalid listen address '" + address + "': " + ec.message());
    tcp::endpoint ep(addr, port);
    auto& l = *listeners.emplace_back(std::make_unique<Listener>(ioc));
    auto& acc = l.acceptor;
    auto check = [&](const char* what) {
      if (ec)
        throw std::runtime_error(std::string("cannot listen on ") + where + ": " + what + ": " +
                                 ec.message());
    };
    acc.open(ep.protocol(), ec);
    check("socket");
    acc.set_option(net::socket_base::reuse_address(true), ec);
    check("SO_REUSEADDR");
    acc.bind(ep, ec);
    check("bind");
    acc.listen(net::socket_base::max_listen_connections, ec);
    check("listen");
    l.bound = acc.local_endpoint(ec);
    check("getsockname");
  }

  const Router& router;
  ServerOptions options;
  // Before ioc: sessions still queued in it release their slots when it is destroyed.
  ClientCounts clients;
  net::io_context ioc;
  std::vector<std::unique_ptr<Listener>> listeners;
  std::mutex refusal_log_mu;
  std::chrono::steady_clock::time_point last_refusal_log{};
  // After ioc: destroyed first, so work still queued in it (which holds sessions) goes before
  // the sessions' sockets and their io_context.
  net::thread_pool handlers;
  Router::RunBlocking run_blocking;
  std::shared_ptr<Awaiting> awaiting = std::make_shared<Awaiting>();
  std::vector<std::thread> threads;
  bool started = false;
  bool stopped = false;
};

HttpServer::HttpServer(const Router& router, ServerOptions options)
    : impl_(std::make_unique<Impl>(router, std::move(options))) {
  auto& o = impl_->options;
  impl_->listen(o.address, o.port);
  // The others share the first one's port (the kernel's pick when o.port was 0).
  for (const auto& address : o.extra_addresses)
    impl_->listen(address, impl_->listeners.front()->bound.port());
}

HttpServer::~HttpServer() {
  stop();
}

void HttpServer::start() {
  if (impl_->started) return;
  impl_->started = true;
  for (auto& l : impl_->listeners)
    net::dispatch(l->acceptor.get_executor(), [impl = impl_.get(), &l = *l] { impl->accept(l); });
  unsigned n = std::max(1u, impl_->options.threads);
  for (unsigned i = 0; i < n; ++i)
    impl_->threads.emplace_back([impl = impl_.get()] {
      for (;;) {
        try {
          impl->ioc.run();
          return;
        } catch (const std::exception& e) {
          // Handlers catch everything; this guards the loop against a bug killing the daemon.
          log::error("http", std::string("I/O thread caught: ") + e.what());
        }
      }
    });
}

void HttpServer::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  for (auto& l : impl_->listeners)
    net::post(l->acceptor.get_executor(), [&l = *l] {
      error_code ec;
      l.acceptor.close(ec);
      l.retry_timer.cancel();
    });
  impl_->ioc.stop();
  for (auto& t : impl_->threads) t.join();
  impl_->threads.clear();
  // Answers that come from now on (handlers still running, journal flushes still pending) are
  // dropped; the sessions that waited for them go while their io_context still exists.
  auto waiting = impl_->awaiting->close();
  // Handlers already running finish; queued ones are abandoned.
  impl_->handlers.stop();
  impl_->handlers.join();
  waiting.clear();
  for (auto& l : impl_->listeners) {
    error_code ec;
    l->acceptor.close(ec);
  }
}

uint16_t HttpServer::port() const {
  return impl_->listeners.front()->bound.port();
}

std::string HttpServer::address() const {
  return impl_->listeners.front()->bound.address().to_string();
}

std::vector<std::string> HttpServer::addresses() const {
  std::vector<std::string> out;
  for (const auto& l : impl_->listeners) out.push_back(l->bound.address().to_string());
  return out;
}

std::string HttpServer::url() const {
  auto addr = impl_->listeners.front()->bound.address();
  std::string host;
  if (addr.is_unspecified())
    host = addr.is_v6() ? "[::1]" : "127.0.0.1";
  else
    host = addr.is_v6() ? "[" + addr.to_string() + "]" : addr.to_string();
  return "http://" + host + ":" + std::to_string(port());
}

}  // namespace kohaku::http
