#pragma once
// Every kohakuctl verb, grouped by the file that implements it; commands.cpp maps each canonical
// command to one. Each verb checks the reply's shape (reply_shape.h) and prints a table as
// KohakuRiver's CLI prints it (missing fields as "-"), or the API's JSON with --json.
#include <ostream>

#include "commands.h"
#include "common/http_client.h"

namespace kohakuctl {

// What every verb is: the parsed command line and a client of the host in, the exit status out.
using Verb = int(const Invocation& inv, const kohaku::http::HttpClient& c, std::ostream& out);

// node_commands.cpp: `node summary`, `node list`, `node status HOST`, `node health [HOST]`, all
// from GET /api/nodes.
Verb node_summary, node_list, node_status, node_health;

// overlay_commands.cpp (docs/api.md, "Overlay"): `node overlay` without HOST is the host's status
// panel and allocations, with HOST that runner's side; `node overlay-release`,
// `node overlay-cleanup`.
Verb node_overlay, overlay_release, overlay_cleanup;

// ip_commands.cpp: container IP reservations on the host (docs/api.md, "IP reservations").
Verb ip_reserve, ip_release, ip_list, ip_info, ip_available, ip_stats, ip_validate;

// network_commands.cpp: `kohakuctl network ...`, named L2 networks (docs/l2-networks.md).
Verb network_create, network_delete, network_list, network_show, network_join, network_leave;

}  // namespace kohakuctl
