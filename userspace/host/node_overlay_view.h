#pragma once
// One runner's overlay as both ends see it: the host's record of the node and the runner's own
// /api/overlay/status (subnet, vxlan0 and bridge state, workloads, Docker containers), fetched
// from the runner so an operator needs to reach only the host.
#include <nlohmann/json.hpp>

#include <string>

#include "host/overlay_service.h"

namespace kohaku {

// {hostname, node: <host's record>, runner: <runner's status>}. ApiError 404 for an unknown
// node, 502 when the runner does not answer (the host's record is then in the error text).
nlohmann::json node_overlay_view(OverlayService& service, const std::string& hostname);

}  // namespace kohaku
