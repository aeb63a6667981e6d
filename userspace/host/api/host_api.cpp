#include "host_api.h"

#include <memory>

#include "host/api/overlay_params.h"
#include "host/overlay/node_overlay_view.h"

namespace kohaku {

using nlohmann::json;

void register_host_api(http::Router& router, OverlayService& service, HostApiOptions options) {
  using http::Request;
  OverlayService* s = &service;
  DatapathStatus datapath = std::move(options.datapath);
  // KohakuRiver's runners send no token; the operator may open just these two routes to them.
  const http::Access runner_access =
      options.runner_routes_open ? http::Access::kOpen : http::Access::kMutating;

  router.get("/healthz", [](const Request&) { return nlohmann::json{{"status", "ok"}}; });

  // Runner lifecycle.
  router.add("POST", "/api/register", runner_access, [s](const Request& r) {
    return s->register_runner(parse_register(r.json()), r.header("x-kohaku-runner-credential"));
  });
  // The busy changes answer once their journal record is durable without holding a thread
  // meanwhile (deferred routes, common/http_router.h); the rest wait on the handler pool.
  router.add_deferred(
      "PUT", "/api/heartbeat/{hostname}", runner_access, [s](const Request& r, http::Reply reply) {
        const auto& hostname = r.path_params.at("hostname");
        json metrics = parse_heartbeat(hostname, r.json());
        s->heartbeat(hostname, r.header("x-kohaku-runner-credential"), metrics, std::move(reply));
      });
  router.get("/api/nodes", [s](const Request&) { return s->nodes(); });
  // KohakuRiver's cluster health (its `node health`); the same nodes, health fields only.
  router.get("/api/health", [s](const Request& r) {
    auto it = r.query.find("hostname");
    std::optional<std::string> hostname;
    if (it != r.query.end() && !it->second.empty()) hostname = it->second;
    return s->health(hostname);
  });
  auto calls = std::make_shared<RunnerCalls>();
  router.get("/api/nodes/{hostname}/overlay", [s, calls](const Request& r) {
    return node_overlay_view(*s, *calls, r.path_params.at("hostname"));
  });

  // Overlay allocations.
  router.get("/api/overlay/status", [s, datapath](const Request&) {
    auto status = s->overlay_status();
    if (datapath && status.value("enabled", false)) status["datapath"] = datapath();
    return status;
  });
  router.post("/api/overlay/release/{runner}",
              [s](const Request& r) { return s->release_runner(r.path_params.at("runner")); });
  router.post("/api/overlay/cleanup", [s](const Request&) { return s->cleanup(); });

  // Container IP reservations; parameters travel in the query string as in KohakuRiver.
  router.get("/api/overlay/ip/available",
             [s](const Request& r) { return s->ip_available(parse_ip_available(r.query)); });
  router.get("/api/overlay/ip/info/{runner}",
             [s](const Request& r) { return s->ip_info(r.path_params.at("runner")); });
  router.post_deferred("/api/overlay/ip/reserve", [s](const Request& r, http::Reply reply) {
    s->ip_reserve(parse_ip_reserve(r.query), std::move(reply));
  });
  router.post_deferred("/api/overlay/ip/release", [s](const Request& r, http::Reply reply) {
    s->ip_release(parse_ip_release(r.query), r.header("x-kohaku-runner-credential"),
                  std::move(reply));
  });
  router.get("/api/overlay/ip/reservations",
             [s](const Request& r) { return s->ip_reservations(parse_ip_reservations(r.query)); });
  router.post("/api/overlay/ip/validate",
              [s](const Request& r) { return s->ip_validate(parse_ip_validate(r.query)); });
  router.post_deferred("/api/overlay/ip/use", [s](const Request& r, http::Reply reply) {
    s->ip_use(parse_ip_use(r.query), r.header("x-kohaku-runner-credential"), std::move(reply));
  });
  router.get("/api/overlay/ip/stats", [s](const Request&) { return s->ip_stats(); });
}

}  // namespace kohaku
