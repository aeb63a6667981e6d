#include "runner/runner_api.h"

namespace kohaku::runner {

using nlohmann::json;

void add_runner_routes(http::Router& router, RunnerAgent& agent) {
  router.get("/healthz", [&agent](const http::Request&) {
    return json{{"status", "ok"}, {"hostname", agent.hostname()}};
  });
  router.get("/api/overlay/status", [&agent](const http::Request&) { return agent.status(); });
  router.get("/api/workloads", [&agent](const http::Request&) {
    return json{{"workloads", agent.workloads().list()}};
  });
  router.post("/api/workloads",
              [&agent](const http::Request& req) { return agent.workloads().attach(req.json()); });
  router.get("/api/workloads/{id}", [&agent](const http::Request& req) {
    return agent.workloads().get(req.path_params.at("id"));
  });
  router.del("/api/workloads/{id}", [&agent](const http::Request& req) {
    return agent.workloads().detach(req.path_params.at("id"));
  });
}

}  // namespace kohaku::runner
