#include "host_api.h"

#include <memory>

#include "host/api/overlay_params.h"
#include "host/overlay/node_overlay_view.h"

namespace kohaku {

void register_host_api(http::Router& router, OverlayService& service, DatapathStatus datapath) {
  using http::Request;
  OverlayService* s = &service;

  router.get("/healthz", [](const Request&) { return nlohmann::json{{"status", "ok"}}; });

  // Runner lifecycle.
  router.post("/api/register", [s](const Request& r) {
    return s->register_runner(parse_register(r.json()), r.header("x-kohaku-runner-credential"));
  });
  router.put("/api/heartbeat/{hostname}", [s](const Request& r) {
    const auto& hostname = r.path_params.at("hostname");
    check_heartbeat(hostname, r.json());
    return s->heartbeat(hostname, r.header("x-kohaku-runner-credential"));
  });
  router.get("/api/nodes", [s](const Request&) { return s->nodes(); });
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
  router.post("/api/overlay/ip/reserve",
              [s](const Request& r) { return s->ip_reserve(parse_ip_reserve(r.query)); });
  router.post("/api/overlay/ip/release", [s](const Request& r) {
    return s->ip_release(parse_ip_release(r.query), r.header("x-kohaku-runner-credential"));
  });
  router.get("/api/overlay/ip/reservations",
             [s](const Request& r) { return s->ip_reservations(parse_ip_reservations(r.query)); });
  router.post("/api/overlay/ip/validate",
              [s](const Request& r) { return s->ip_validate(parse_ip_validate(r.query)); });
  router.post("/api/overlay/ip/use", [s](const Request& r) {
    return s->ip_use(parse_ip_use(r.query), r.header("x-kohaku-runner-credential"));
  });
  router.get("/api/overlay/ip/stats", [s](const Request&) { return s->ip_stats(); });
}

}  // namespace kohaku
