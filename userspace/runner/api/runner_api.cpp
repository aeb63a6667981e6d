#include "runner/api/runner_api.h"

#include "common/api_error.h"
#include "runner/api/attach_request_json.h"
#include "runner/datapath/deny_rule_json.h"

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
  router.post("/api/workloads", [&agent](const http::Request& req) {
    return agent.workloads().attach(attach_request_from_json(req.json()));
  });
  router.get("/api/workloads/{id}", [&agent](const http::Request& req) {
    return agent.workloads().get(req.path_params.at("id"));
  });
  router.del("/api/workloads/{id}", [&agent](const http::Request& req) {
    return agent.workloads().detach(req.path_params.at("id"));
  });

  // Deny rules of the BPF forward filter and masquerade (docs/bpf-runner-nat.md).
  router.get("/api/policy/deny",
             [&agent](const http::Request&) { return agent.datapath().deny_rules(); });
  router.post("/api/policy/deny", [&agent](const http::Request& req) {
    DenyRule rule = deny_rule_from_json(req.json());
    bool added = agent.datapath().add_deny_rule(rule);
    return json{{"rule", rule.to_string()}, {"added", added}};
  });
  router.del("/api/policy/deny", [&agent](const http::Request& req) {
    DenyRule rule = deny_rule_from_json(req.json());
    if (!agent.datapath().remove_deny_rule(rule))
      throw ApiError(404, "no deny rule " + rule.to_string());
    return json{{"rule", rule.to_string()}, {"removed", true}};
  });
}

}  // namespace kohaku::runner
