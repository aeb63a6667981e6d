#pragma once
// kohaku-runnerd's HTTP routes: overlay status, workloads, health. Mutating routes need the
// bearer token when OVERLAY_API_TOKEN is set (the router enforces it).
#include "common/http_router.h"
#include "runner/overlay/runner_agent.h"

namespace kohaku::runner {

// Adds the runner's routes to `router`; `agent` must outlive it.
void add_runner_routes(http::Router& router, RunnerAgent& agent);

}  // namespace kohaku::runner
