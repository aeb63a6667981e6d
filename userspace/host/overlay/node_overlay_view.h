#pragma once
// One runner's overlay as both ends see it: the host's record of the node and the runner's own
// /api/overlay/status (subnet, vxlan0 and bridge state, workloads, Docker containers), fetched
// from the runner so an operator needs to reach only the host.
#include <nlohmann/json.hpp>

#include <string>

#include "host/overlay/overlay_service.h"
#include "host/overlay/runner_calls.h"

namespace kohaku {

// {hostname, node: <host's record>, runner: <runner's status>}. DomainError kNotFound for an
// unknown node, 502 when the runner does not answer (the host's record is then in the error text),
// 503 when too many requests already wait for runners. The call to the runner goes through `calls`.
nlohmann::json node_overlay_view(OverlayService& service, RunnerCalls& calls,
                                 const std::string& hostname);

}  // namespace kohaku
