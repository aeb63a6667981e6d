// kohaku-runnerd: the Runner's agent. Loads runner_config.py (+ --set), serves the runner API,
// registers with the host and keeps the overlay, the workloads and the Docker network in shape
// until SIGTERM/SIGINT. On exit every device stays in place so workloads keep talking while the
// daemon restarts.
#include <csignal>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "common/daemon_args.h"
#include "common/fd_limit.h"
#include "common/http_router.h"
#include "common/http_server.h"
#include "common/log.h"
#include "runner/api/l2_network_api.h"
#include "runner/api/runner_api.h"
#include "runner/overlay/host_link.h"
#include "runner/overlay/runner_agent.h"
#include "runner/runner_config.h"

namespace {

constexpr std::string_view kProgram = "kohaku-runnerd";

std::string config_summary(const kohaku::RunnerConfig& c, const std::string& hostname) {
  std::string s = "hostname=" + hostname;
  s += " host=" + c.host_url();
  s += " overlay=" + std::string(c.overlay_enabled ? "enabled" : "disabled");
  s += " vxlan_id=" + std::to_string(c.overlay_vxlan_id);
  s += " vxlan_port=" + std::to_string(c.overlay_vxlan_port);
  s += " mtu=" + std::to_string(c.overlay_mtu);
  s += " heartbeat=" + std::to_string(c.heartbeat_interval_seconds) + "s";
  s += " docker_socket=" + c.docker_socket;
  s += " state_dir=" + c.state_dir;
  s += " datapath=" + std::string(kohaku::datapath_name(c.overlay_datapath));
  s += " auth=" + std::string(c.api_auth_off ? "off" : "bearer-token");
  return s;
}

int run(const kohaku::DaemonArgs& args) {
  using namespace kohaku;
  RunnerConfig config;
  try {
    config = load_runner_config(args);
  } catch (const std::exception& e) {
    std::cerr << kProgram << ": " << e.what() << "\n";
    return 2;
  }
  try {
    std::filesystem::create_directories(config.state_dir);
  } catch (const std::exception& e) {
    log::error("runnerd", "cannot create STATE_DIR " + config.state_dir + ": " + e.what());
    return 1;
  }

  // Signals are taken synchronously by this thread; every thread started below inherits the
  // blocked mask, so none of them is interrupted by SIGTERM.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::optional<runner::RunnerAgent> agent;
  try {
    agent.emplace(config);
  } catch (const std::exception& e) {
    log::error("runnerd",
               std::string("cannot load state from ") + config.state_dir + ": " + e.what());
    return 1;
  }

  http::Router router;
  if (config.api_auth_off) {
    log::warn("runnerd",
              "OVERLAY_API_TOKEN is set empty: the runner's mutating routes are open to whoever "
              "reaches its API (docs/security.md)");
  } else {
    // Secure by default: the cluster token (when given) or the credential the host issued to
    // this runner, which the host presents on its calls here. Before the first registration,
    // without a token, nothing is accepted.
    router.set_bearer_check([&agent, token = config.overlay_api_token](std::string_view p) {
      if (!token.empty() && http::constant_time_equal(p, token)) return true;
      const std::string credential = agent->runner_credential();
      return !credential.empty() && http::constant_time_equal(p, credential);
    });
    router.set_auth_hint(
        "send the cluster token (OVERLAY_API_TOKEN) or this runner's credential (the file "
        "runner_credential in its STATE_DIR)");
  }
  runner::add_runner_routes(router, *agent);
  // Named L2 networks (docs/l2-networks.md): devices pushed by the host, polled as a safety net.
  runner::L2NetworkAgent l2_networks(config, agent->hostname());
  agent->workloads().set_named_networks(&l2_networks);
  l2_networks.add_listener([&agent](const std::vector<runner::L2NetworkView>& applied) {
    agent->named_networks_changed(applied);
  });
  runner::add_l2_network_routes(router, l2_networks);
  // Before serving: with the common soft limit of 1,024, idle connections alone could starve
  // the API of descriptors.
  raise_fd_limit_logged("runnerd");
  http::ServerOptions options;
  if (config.runner_bind_ip_set) {
    options.address = config.runner_bind_ip.to_string();
  } else {
    // Secure by default: only where the host reaches this runner (the address it registers
    // with), and loopback for local tools; never every address of the machine.
    std::optional<Ipv4Addr> physical;
    for (int attempt = 0; !physical; ++attempt) {
      try {
        physical = runner::physical_ip(config);
      } catch (const std::exception& e) {
        if (attempt % 10 == 0)
          log::warn("runnerd", std::string("waiting for a route to the host to know which "
                                           "address to serve the API on (set RUNNER_BIND_IP to "
                                           "choose one): ") +
                                   e.what());
        timespec second{1, 0};
        if (sigtimedwait(&signals, nullptr, &second) > 0) return 0;
      }
    }
    options.address = physical->to_string();
    if (!physical->is_loopback()) options.extra_addresses = {"127.0.0.1"};
  }
  options.port = config.runner_port;
  options.threads = 2;
  std::optional<http::HttpServer> server;
  try {
    server.emplace(router, options);
  } catch (const std::exception& e) {
    log::error("runnerd", e.what());
    return 1;
  }
  server->start();
  agent->start();
  l2_networks.start();
  std::string listening;
  for (const auto& a : server->addresses()) listening += (listening.empty() ? "" : ", ") + a;
  log::info("runnerd", "ready: API on " + listening + " port " + std::to_string(server->port()) +
                           " (" + config_summary(config, agent->hostname()) + ")");

  int signo = 0;
  sigwait(&signals, &signo);
  log::info("runnerd", std::string("received ") + (signo == SIGTERM ? "SIGTERM" : "SIGINT") +
                           ", shutting down (overlay devices and workloads stay in place)");
  server->stop();
  agent->stop();
  log::info("runnerd", "stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kohaku::daemon_main(argc, argv, kProgram, "runner_config.py", run);
}
