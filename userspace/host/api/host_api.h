#pragma once
// The host's HTTP routes (KohakuRiver-compatible paths), each a thin call into OverlayService
// once overlay_params.h has parsed the query string or body into the typed request.
// GET routes are reads; every POST/PUT is mutating and needs the bearer token when one is set.
#include <functional>

#include <nlohmann/json.hpp>

#include "common/http_router.h"
#include "host/overlay/overlay_service.h"

namespace kohaku {

// The "datapath" object of /api/overlay/status (active datapath, counters); empty: not shown.
using DatapathStatus = std::function<nlohmann::json()>;

struct HostApiOptions {
  DatapathStatus datapath;
  // Registration and heartbeat without the bearer token (ALLOW_RUNNERS_WITHOUT_TOKEN).
  bool runner_routes_open = false;
};

// `service` (and whatever `options.datapath` refers to) must outlive the router.
void register_host_api(http::Router& router, OverlayService& service, HostApiOptions options = {});

}  // namespace kohaku
