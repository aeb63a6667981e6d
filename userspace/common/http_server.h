#pragma once
// HTTP/1.1 server (Boost.Beast) that feeds every request to a Router. I/O is asynchronous, so a
// slow or idle client holds no thread. Plain handlers run on their own pool, never on an I/O
// thread: a handler that waits (a call to a runner) holds one handler thread while the I/O
// threads go on reading and answering everything else. Deferred handlers (http_router.h) do not
// block: they run on the I/O thread that read the request and answer later from any thread (a
// journal flush completing), which the server posts back to the connection; an answer that
// comes after stop() is dropped. Handlers must be thread-safe. Beast stays inside
// http_server.cpp to keep this header cheap to include.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "http_router.h"

namespace kohaku::http {

struct ServerOptions {
  std::string address = "0.0.0.0";  // IPv4 or IPv6 literal
  uint16_t port = 0;                // 0: the kernel picks one; see HttpServer::port()
  // More addresses to listen on, at the same port (e.g. 127.0.0.1 for local tools next to the
  // one address other machines reach).
  std::vector<std::string> extra_addresses;
  size_t body_limit = 1 << 20;      // larger bodies get 413
  size_t header_limit = 16 * 1024;  // larger header blocks get 431
  // A connection that sends nothing for this long (idle keep-alive or a stalled request) is closed.
  std::chrono::seconds idle_timeout{30};
  // I/O threads: read, parse, run deferred handlers, write. One per core of the 2-CPU hosts this
  // runs on: each more costs wake-ups (4 cost 1.8 context switches per reservation, 2 cost 0.7).
  unsigned threads = 2;
  // Handler threads: how many plain requests are handled at once. Sized for requests that wait
  // (a bounded call to a runner, a change that tells observers after its journal flush), not for
  // CPU work.
  unsigned handler_threads = 32;
  // Open connections one client address may hold; more are closed as soon as they are accepted,
  // so one host cannot take every descriptor (0: no cap). Runners and kohakuctl hold a few.
  size_t max_connections_per_client = 256;
};

class HttpServer {
 public:
  // Binds and listens immediately, so the port is known (and taken) before start().
  // Throws std::runtime_error naming the address when it cannot. `router` must outlive the server.
  HttpServer(const Router& router, ServerOptions options);
  ~HttpServer();  // stop()
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Starts accepting and serving on options.threads background threads.
  void start();
  // Stops accepting, abandons open connections and joins the threads. Idempotent.
  void stop();

  uint16_t port() const;        // the bound port (the real one when options.port was 0)
  std::string address() const;  // the bound address (the first; see addresses())
  std::vector<std::string> addresses() const;  // every bound address
  std::string url() const;  // "http://address:port" (a wildcard address shown as 127.0.0.1)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kohaku::http
