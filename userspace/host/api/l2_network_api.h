#pragma once
// Routes of named L2 networks on the host (docs/l2-networks.md):
//   POST   /api/networks                       {name, subnet, gateway?, vni?, outbound_nat?,
//   runners?} GET    /api/networks[?runner=HOSTNAME]     all networks, or that runner's views (its
//   poll) GET    /api/networks/{name} DELETE /api/networks/{name}[?force=true] POST
//   /api/networks/{name}/members/{runner}    join DELETE
//   /api/networks/{name}/members/{runner}[?force=true]    leave POST
//   /api/networks/{name}/ip/allocate?runner=&container_id= POST
//   /api/networks/{name}/ip/release?ip=|container_id=
//   POST /api/networks/{name}/ip/block?runner=   the runner's Docker address block
// POST/DELETE are mutating (bearer token when configured).
#include <memory>

#include "common/http_router.h"
#include "host/host_config.h"
#include "host/l2/l2_network_push.h"
#include "host/l2/l2_networks.h"
#include "host/overlay/overlay_service.h"

namespace kohaku {

// The registry and the push worker, alive as long as the daemon serves.
struct L2Networks {
  std::unique_ptr<L2NetworkRegistry> registry;
  std::unique_ptr<L2NetworkPush> push;
};

// A runner as the host's node table knows it (physical IP, url, vxlan_disabled flag).
L2RunnerLookup l2_runner_lookup(OverlayService& service);

void register_l2_network_api(http::Router& router, L2NetworkRegistry& registry);

// Builds the registry (restoring STATE_DIR/l2-networks), the push worker and the routes.
// Returns null after logging why when the state cannot be loaded. `service` must outlive it.
std::unique_ptr<L2Networks> make_l2_networks(http::Router& router, const HostConfig& config,
                                             OverlayService& service);

}  // namespace kohaku
