#pragma once
// kohaku-runnerd's composition root: builds and owns everything the daemon runs (the runner
// agent with its workloads and datapath, the named L2 network agent, the API router and server)
// and wires them together, so main.cpp only parses arguments and waits for a signal.
//
// Threads, started in this order by start() and stopped in the reverse one by stop():
//   1. the HTTP server's workers: first, so the host can call back as soon as we register;
//   2. the runner agent's control loop, then its named Docker networks' thread;
//   3. the L2 network poll (L2NetworkAgent::poll_once every heartbeat).
// So the poll (whose listener reaches into the agent) ends before the agent, and the API keeps
// answering until every loop has ended. Destruction stops first, then frees the server before
// the objects its routes use.
#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/http_router.h"
#include "common/http_server.h"
#include "common/periodic_thread.h"
#include "runner/l2/l2_network_agent.h"
#include "runner/overlay/runner_agent.h"
#include "runner/runner_config.h"

namespace kohaku::runner {

class RunnerDaemon {
 public:
  // Loads STATE_DIR and wires the routes; starts nothing. Throws with context when the state
  // cannot be loaded.
  explicit RunnerDaemon(RunnerConfig config);
  ~RunnerDaemon();  // stop()
  RunnerDaemon(const RunnerDaemon&) = delete;
  RunnerDaemon& operator=(const RunnerDaemon&) = delete;

  // Asked while waiting for the address to serve on; true ends the wait (a signal came).
  using Interrupted = std::function<bool(std::chrono::seconds wait)>;
  // Chooses the API address (waiting for a route to the host unless RUNNER_BIND_IP is set),
  // serves the API and starts every loop. false: interrupted before anything started. Throws
  // when the server cannot listen.
  bool start(const Interrupted& interrupted);
  // Stops every thread in reverse start order. Devices and workloads stay. Idempotent.
  void stop();

 private:
  std::optional<http::ServerOptions> server_options(const Interrupted& interrupted) const;

  const RunnerConfig config_;
  // Declaration order is destruction's reverse: the server goes before what its routes use.
  std::unique_ptr<RunnerAgent> agent_;
  std::unique_ptr<L2NetworkAgent> l2_networks_;  // needs the agent's hostname
  http::Router router_;
  std::optional<http::HttpServer> server_;
  PeriodicThread l2_poll_;
};

}  // namespace kohaku::runner
