#pragma once
// The runner's conversation with kohaku-hostd: which physical address it registers with, the
// register body (VXLAN id base, port and MTU included so the host can refuse a mismatch), and
// the register answer.
#include <nlohmann/json.hpp>

#include <optional>
#include <string>

#include "common/ipv4.h"
#include "runner/overlay/host_api.h"
#include "runner/runner_config.h"

namespace kohaku::runner {

// RUNNER_BIND_IP when set; for 0.0.0.0 the source address the kernel picks to reach
// HOST_ADDRESS (a connected UDP socket's local address: no packet is sent). HOST_ADDRESS may be
// a name. Throws std::runtime_error naming the host when it cannot be resolved or routed.
Ipv4Addr physical_ip(const RunnerConfig& config);

// "http://<physical ip>:<RUNNER_PORT>"
std::string runner_url(Ipv4Addr physical, uint16_t port);

nlohmann::json build_register_body(const RunnerConfig& config, const std::string& hostname,
                                   Ipv4Addr physical);

// KohakuRiver's heartbeat metrics this runner can tell from /proc/meminfo: memory_total_bytes,
// memory_used_bytes (total minus MemAvailable) and memory_percent, shown by the host's
// /api/nodes (its `node summary` adds them up). Empty when /proc/meminfo cannot be read.
nlohmann::json memory_metrics(const std::string& meminfo_path = "/proc/meminfo");

// The register answer's overlay part; throws std::invalid_argument when the overlay is absent
// or malformed (e.g. the host runs with the overlay disabled).
OverlayAssignment parse_register_answer(const nlohmann::json& answer);
// When the answer (of register or heartbeat) registers us without an overlay, `overlay` null or
// absent (the host's pool is full of active runners, or its overlay is off: what KohakuRiver's
// runners read as "use kohakuriver-net"), why, in the host's words when it gave them.
std::optional<std::string> no_overlay_reason(const nlohmann::json& answer);

// When the host states its VXLAN parameters, they must equal ours: a description of the first
// difference, or empty.
std::string parameter_mismatch(const OverlayAssignment& assignment, const RunnerConfig& config);

// RUNNER_HOSTNAME, or gethostname() when empty.
std::string runner_hostname(const RunnerConfig& config);

}  // namespace kohaku::runner
