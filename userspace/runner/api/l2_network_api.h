#pragma once
// kohaku-runnerd's routes for named L2 networks, driven by the host:
//   PUT    /api/l2/networks/{name}    the host's view {vni, subnet, gateway, mtu, port, peers,
//                                     outbound_nat, revision}: create/repair the devices
//   DELETE /api/l2/networks/{name}[?revision=N]    leave: remove bridge and vxlan device
//   GET    /api/l2/networks           what is applied, with the FDB flood destinations
#include "common/http_router.h"
#include "runner/l2/l2_network_agent.h"

namespace kohaku::runner {

// `agent` must outlive the router.
void add_l2_network_routes(http::Router& router, L2NetworkAgent& agent);

}  // namespace kohaku::runner
