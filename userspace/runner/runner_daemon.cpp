#include "runner/runner_daemon.h"

#include <stdexcept>

#include "common/fd_limit.h"
#include "common/log.h"
#include "runner/api/l2_network_api.h"
#include "runner/api/runner_api.h"
#include "runner/overlay/host_link.h"

namespace kohaku::runner {

namespace {

std::string config_summary(const RunnerConfig& c, const std::string& hostname) {
  std::string s = "hostname=" + hostname;
  s += " host=" + c.host_url();
  s += " overlay=" + std::string(c.overlay_enabled ? "enabled" : "disabled");
  s += " vxlan_id=" + std::to_string(c.overlay_vxlan_id);
  s += " vxlan_port=" + std::to_string(c.overlay_vxlan_port);
  s += " mtu=" + std::to_string(c.overlay_mtu);
  s += " heartbeat=" + std::to_string(c.heartbeat_interval_seconds) + "s";
  s += " docker_socket=" + c.docker_socket;
  s += " state_dir=" + c.state_dir;
  s += " datapath=" + std::string(datapath_name(c.overlay_datapath));
  s += " auth=" + std::string(c.api_auth_off ? "off" : "bearer-token");
  return s;
}

}  // namespace

RunnerDaemon::RunnerDaemon(RunnerConfig config) : config_(std::move(config)) {
  try {
    agent_ = std::make_unique<RunnerAgent>(config_);
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot load state from " + config_.state_dir + ": " + e.what());
  }

  if (config_.api_auth_off) {
    log::warn("runnerd",
              "OVERLAY_API_TOKEN is set empty: the runner's mutating routes are open to whoever "
              "reaches its API (docs/security.md)");
  } else {
    // Secure by default: the cluster token (when given) or the credential the host issued to
    // this runner, which the host presents on its calls here. Before the first registration,
    // without a token, nothing is accepted.
    router_.set_bearer_check(
        [agent = agent_.get(), token = config_.overlay_api_token](std::string_view p) {
          if (!token.empty() && http::constant_time_equal(p, token)) return true;
          const std::string credential = agent->runner_credential();
          return !credential.empty() && http::constant_time_equal(p, credential);
        });
    router_.set_auth_hint(
        "send the cluster token (OVERLAY_API_TOKEN) or this runner's credential (the file "
        "runner_credential in its STATE_DIR)");
  }
  add_runner_routes(router_, *agent_);
  // Named L2 networks (docs/l2-networks.md): devices pushed by the host, polled as a safety net.
  l2_networks_ = std::make_unique<L2NetworkAgent>(config_, agent_->hostname());
  agent_->workloads().set_named_networks(l2_networks_.get());
  l2_networks_->add_listener([agent = agent_.get()](const std::vector<L2NetworkView>& applied) {
    agent->named_networks_changed(applied);
  });
  add_l2_network_routes(router_, *l2_networks_);
}

RunnerDaemon::~RunnerDaemon() {
  stop();
}

std::optional<http::ServerOptions> RunnerDaemon::server_options(
    const Interrupted& interrupted) const {
  http::ServerOptions options;
  if (config_.runner_bind_ip_set) {
    options.address = config_.runner_bind_ip.to_string();
  } else {
    // Secure by default: only where the host reaches this runner (the address it registers
    // with), and loopback for local tools; never every address of the machine.
    std::optional<Ipv4Addr> physical;
    for (int attempt = 0; !physical; ++attempt) {
      try {
        physical = physical_ip(config_);
      } catch (const std::exception& e) {
        if (attempt % 10 == 0)
          log::warn("runnerd", std::string("waiting for a route to the host to know which "
                                           "address to serve the API on (set RUNNER_BIND_IP to "
                                           "choose one): ") +
                                   e.what());
        if (interrupted(std::chrono::seconds(1))) return std::nullopt;
      }
    }
    options.address = physical->to_string();
    if (!physical->is_loopback()) options.extra_addresses = {"127.0.0.1"};
  }
  options.port = config_.runner_port;
  options.threads = 2;
  return options;
}

bool RunnerDaemon::start(const Interrupted& interrupted) {
  // Before serving: with the common soft limit of 1,024, idle connections alone could starve
  // the API of descriptors.
  raise_fd_limit_logged("runnerd");
  std::optional<http::ServerOptions> options = server_options(interrupted);
  if (!options) return false;
  server_.emplace(router_, *options);

  // The order stop() reverses.
  server_->start();
  agent_->start();
  l2_poll_.start([this] {
    l2_networks_->poll_once();
    return std::chrono::milliseconds(std::chrono::seconds(config_.heartbeat_interval_seconds));
  });

  std::string listening;
  for (const auto& a : server_->addresses()) listening += (listening.empty() ? "" : ", ") + a;
  log::info("runnerd", "ready: API on " + listening + " port " + std::to_string(server_->port()) +
                           " (" + config_summary(config_, agent_->hostname()) + ")");
  return true;
}

void RunnerDaemon::stop() {
  l2_poll_.stop();
  if (agent_) agent_->stop();
  if (server_) server_->stop();
}

}  // namespace kohaku::runner
