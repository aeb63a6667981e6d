#pragma once
// Turns the query strings and JSON bodies of the host's overlay routes into the typed requests
// OverlayService takes (host/overlay/overlay_requests.h). Everything malformed is refused here
// with ApiError(kInvalidRequest, 422) naming the parameter, before the service is called.
#include <nlohmann/json.hpp>

#include <string>

#include "common/http_router.h"
#include "host/overlay/overlay_requests.h"

namespace kohaku {

using QueryParams = http::Params;

// POST /api/register: the body must be an object with `hostname` and `url` strings; vxlan_id,
// vxlan_port and mtu, when present, integers; KohakuRiver's total_cores, total_ram_bytes
// (integers), numa_topology (an object) and gpu_info (an array) of their types when present;
// every other field is kept in `details`.
RegisterRequest parse_register(const nlohmann::json& body);
// PUT /api/heartbeat/{hostname}: the name must be a hostname and the body an object (what
// KohakuRiver runners send: their task list and resource use) whose KohakuRiver fields have
// their types. Returns those of its fields the host shows (memory, CPU, GPUs...).
nlohmann::json parse_heartbeat(const std::string& hostname, const nlohmann::json& body);

// /api/overlay/ip/...: parameters travel in the query string, as in KohakuRiver.
IpAvailableRequest parse_ip_available(const QueryParams& q);  // limit 1..1000, runner
IpReserveRequest parse_ip_reserve(const QueryParams& q);      // runner, ttl 60..1800, ip
IpReleaseRequest parse_ip_release(const QueryParams& q);      // token | container_id (+ runner)
IpReservationsRequest parse_ip_reservations(const QueryParams& q);  // include_used, runner
IpValidateRequest parse_ip_validate(const QueryParams& q);          // token, runner
IpUseRequest parse_ip_use(const QueryParams& q);  // container_id + token | runner and ip

}  // namespace kohaku
