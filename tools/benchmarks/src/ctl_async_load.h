#pragma once
// Closed-loop HTTP load for bench_ctl_load: `connections` kept HTTP/1.1 connections, each
// sending its next request only once the answer to the previous one arrived (what 64 clients
// of a scheduler's connection pool do), all driven by Asio on `threads` event loops instead of a
// blocked thread per client. On the 2 cores the daemon under test shares, a thread per client
// cost about as much CPU and as many context switches as the daemon itself (a wakeup per
// answer), so the generator measured itself as much as the daemon.
#include <functional>
#include <optional>
#include <string>

#include "ctl_load_tally.h"

namespace kohaku::bench {

struct AsyncLoad {
  std::string url;           // http://host:port
  std::string bearer_token;  // sent as Authorization: Bearer when not empty
  int connections = 64;
  int threads = 1;
  // The target of connection conn's n-th POST, or nullopt when that connection is done.
  std::function<std::optional<std::string>(int conn, long n)> next;
  // Empty when the answer is a success, else the failure to count; called on an event loop
  // (with several threads, concurrently).
  std::function<std::string(int status, const std::string& body)> check;
};

// Runs the load until every connection is done; every answered request's latency goes to tally
// (a failed one, also a broken connection, which is then opened again, counts as a failure).
// Returns the wall time in seconds.
double run_async_load(const AsyncLoad& load, Tally& tally);

}  // namespace kohaku::bench
