// kohaku-hostd: the Host's control plane. Loads host_config.py (+ --set), restores the overlay
// state from STATE_DIR, serves the HTTP API and runs the periodic cleanup until SIGTERM/SIGINT.
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <csignal>
#include <functional>
#include <iostream>
#include <memory>
#include <optional>
#include <string>

#include "common/daemon_args.h"
#include "common/fd_limit.h"
#include "common/http_server.h"
#include "common/log.h"
#include "common/netlink/address.h"
#include "host/api/api_token.h"
#include "host/api/host_api.h"
#include "host/api/l2_network_api.h"
#include "host/datapath/host_datapath_mode.h"
#include "host/datapath/host_tunnels.h"
#include "host/host_config.h"
#include "host/overlay/overlay_service.h"

namespace {

constexpr std::string_view kProgram = "kohaku-hostd";

// `active`: the datapath actually running, when it differs from the configured one (fallback).
std::string config_summary(const kohaku::HostConfig& c,
                           std::optional<kohaku::Datapath> active = std::nullopt) {
  std::string s = "overlay=" + std::string(c.overlay_enabled ? "enabled" : "disabled");
  s += " subnet=" + c.overlay_subnet.to_string();
  s += " host_reachable_address=" + c.host_reachable_address.to_string();
  s += " vxlan_id=" + std::to_string(c.overlay_vxlan_id);
  s += " vxlan_port=" + std::to_string(c.overlay_vxlan_port);
  s += " mtu=" + std::to_string(c.overlay_mtu);
  s += " heartbeat=" + std::to_string(c.heartbeat_interval_seconds) + "s x" +
       std::to_string(c.heartbeat_timeout_factor);
  s += " cleanup_every=" + std::to_string(c.cleanup_check_interval_seconds) + "s";
  s += " state_dir=" + c.state_dir;
  s += " datapath=" + std::string(kohaku::datapath_name(c.overlay_datapath));
  if (active && *active != c.overlay_datapath)
    s += " (active: " + std::string(kohaku::datapath_name(*active)) + ")";
  s += " auth=" + std::string(c.api_auth_off ? "off" : "bearer-token");
  return s;
}

int run(const kohaku::DaemonArgs& args) {
  using namespace kohaku;
  HostConfig config;
  try {
    config = load_host_config(args);
  } catch (const std::exception& e) {
    std::cerr << kProgram << ": " << e.what() << "\n";
    return 2;
  }

  // The tunnels send from HOST_REACHABLE_ADDRESS (their `local`): an address no interface
  // here holds (a typo, another machine's, a NAT's public address) would give tunnels that
  // never carry a packet, so refuse it like any other bad value.
  if (config.overlay_enabled) {
    std::optional<int> owner;
    std::string why = "no interface holds it";
    try {
      owner = netlink::find_address_owner(config.host_reachable_address);
    } catch (const std::exception& e) {
      why = std::string("cannot list the addresses: ") + e.what();
    }
    if (!owner) {
      std::cerr << kProgram << ": HOST_REACHABLE_ADDRESS = '"
                << config.host_reachable_address.to_string()
                << "' is not an address of this machine (" << why
                << "): the tunnels to the runners send from it. Set it to the address of this "
                   "machine that the runners reach\n";
      return 2;
    }
  }

  std::unique_ptr<OverlayService> service;
  try {
    service = std::make_unique<OverlayService>(config);
  } catch (const std::exception& e) {
    log::error("hostd",
               std::string("cannot restore state from ") + config.state_dir + ": " + e.what());
    return 1;
  }

  // Secure by default: without a configured token, one generated at the first start (the
  // service has created STATE_DIR by now).
  if (config.api_auth_off) {
    log::warn("hostd",
              "OVERLAY_API_TOKEN is set empty: every mutating route is open to whoever reaches "
              "HOST_PORT (docs/security.md)");
  } else if (config.overlay_api_token.empty()) {
    try {
      ApiToken t = load_or_create_api_token(config.state_dir);
      config.overlay_api_token = t.token;
      log::info("hostd",
                std::string(t.created ? "generated the API token in " : "API token from ") +
                    t.file.string() +
                    ": runners need it as OVERLAY_API_TOKEN; kohakuctl on this machine "
                    "reads it from there");
    } catch (const std::exception& e) {
      log::error("hostd", e.what());
      return 1;
    }
  }

  // The network side: vxkr<id> devices (and, with the BPF datapath, the routing maps) follow
  // the allocations. It reconciles with the restored state before the API serves anything.
  std::optional<HostDatapathMode> datapath;
  std::optional<HostTunnels> tunnels;
  if (config.overlay_enabled) {
    try {
      datapath.emplace(config);
      tunnels.emplace(config, &*datapath);
      tunnels->start(*service);
    } catch (const std::exception& e) {
      log::error("hostd", std::string("cannot set up the overlay network: ") + e.what());
      return 1;
    }
    service->set_observer(&*tunnels);
  }

  http::Router router;
  router.set_bearer_token(config.overlay_api_token);
  router.set_auth_hint(
      "the host's token is OVERLAY_API_TOKEN in its config, or else the file api_token in its "
      "STATE_DIR; runners take it as OVERLAY_API_TOKEN, kohakuctl as --token or $KOHAKU_TOKEN");
  HostApiOptions api_options;
  if (datapath) api_options.datapath = [&datapath] { return datapath->status(); };
  api_options.runner_routes_open = config.allow_runners_without_token;
  if (config.allow_runners_without_token && !config.api_auth_off)
    log::warn("hostd",
              "ALLOW_RUNNERS_WITHOUT_TOKEN: anyone who reaches HOST_PORT can register runners "
              "and send heartbeats without the API token (docs/security.md)");
  register_host_api(router, *service, std::move(api_options));
  // Named L2 networks (docs/l2-networks.md): routes, state and the push to member runners.
  auto l2_networks = make_l2_networks(router, config, *service);
  if (!l2_networks) return 1;

  // Before serving: with the common soft limit of 1,024, idle connections alone could starve
  // the API of descriptors.
  raise_fd_limit_logged("hostd");
  http::ServerOptions options;
  options.address = config.host_bind_ip.to_string();
  options.port = config.host_port;
  std::optional<http::HttpServer> server;
  try {
    server.emplace(router, options);
  } catch (const std::exception& e) {
    log::error("hostd", e.what());
    return 1;
  }
  server->start();
  log::info(
      "hostd",
      "serving the API on " + server->address() + ":" + std::to_string(server->port()) + " (" +
          config_summary(config, datapath ? std::optional(datapath->active()) : std::nullopt) +
          ")");

  boost::asio::io_context ioc;
  boost::asio::signal_set signals(ioc, SIGINT, SIGTERM);
  signals.async_wait([&](const boost::system::error_code& ec, int signo) {
    if (ec) return;
    log::info("hostd", std::string("received ") + (signo == SIGTERM ? "SIGTERM" : "SIGINT") +
                           ", shutting down");
    ioc.stop();
  });

  boost::asio::steady_timer timer(ioc);
  const auto interval = std::chrono::seconds(config.cleanup_check_interval_seconds);
  std::function<void()> schedule_tick = [&] {
    timer.expires_after(interval);
    timer.async_wait([&](const boost::system::error_code& ec) {
      if (ec) return;
      try {
        service->tick();
        // Devices deleted or changed behind our back come back within one interval.
        if (tunnels) tunnels->reconcile(service->allocations());
      } catch (const std::exception& e) {
        // Keep serving: a failed cleanup pass is retried on the next tick.
        log::error("hostd", std::string("periodic cleanup failed: ") + e.what());
      }
      schedule_tick();
    });
  };
  schedule_tick();

  ioc.run();
  server->stop();
  log::info("hostd", "stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kohaku::daemon_main(argc, argv, kProgram, "host_config.py", run);
}
