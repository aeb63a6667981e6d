#pragma once
// The typed requests OverlayService takes. The API layer (host/api/overlay_params.h) builds them
// from query strings and bodies, rejecting malformed ones (400) before the service sees them;
// the service checks what needs its state (names known, addresses free, credentials right).
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

#include "common/api_error.h"
#include "common/domain_error.h"
#include "common/ipv4.h"
#include "common/wire/names.h"

namespace kohaku {

// A hostname from a body, a path or a query, as the text to use: DomainError kInvalid naming
// `field` and the rule it breaks. Both layers use it: the API for what it parses, the service for
// the names it looks up.
inline std::string checked_name(const std::string& field, const std::string& text) {
  try {
    return Hostname::parse(text).str();
  } catch (const InvalidName& e) {
    throw DomainError(ErrorKind::kMalformed, "'" + field + "': " + e.what());
  }
}

// POST /api/register. hostname and url are well-formed (common/wire/names.h), hostname is not a
// reserved runner_<id> name, and physical_ip (the url's host) is a unicast address.
struct RegisterRequest {
  std::string hostname;
  std::string url;
  Ipv4Addr physical_ip;
  // What the runner is configured with; must match the host's when the overlay is enabled.
  std::optional<int64_t> vxlan_id, vxlan_port, mtu;
  nlohmann::json details = nlohmann::json::object();  // every other body field, kept as sent
};

// GET /api/overlay/ip/available
struct IpAvailableRequest {
  size_t limit = 100;
  std::optional<std::string> runner;  // hostname or runner_<id>; all runners when absent
};

// POST /api/overlay/ip/reserve
struct IpReserveRequest {
  std::string runner;
  int64_t ttl_seconds = 300;
  std::optional<Ipv4Addr> ip;  // a specific address; the lowest free one when absent
};

// POST /api/overlay/ip/release: exactly one of token and container_id; releasing by container
// needs runner (and its credential).
struct IpReleaseRequest {
  std::optional<std::string> token;
  std::optional<std::string> container_id;
  std::optional<std::string> runner;
};

// GET /api/overlay/ip/reservations
struct IpReservationsRequest {
  bool include_used = true;  // KohakuRiver's default
  std::optional<std::string> runner;
};

// POST /api/overlay/ip/validate
struct IpValidateRequest {
  std::string token;
  std::optional<std::string> runner;
};

// POST /api/overlay/ip/use: by token (runner optional, then it must own it), or by runner + ip.
struct IpUseRequest {
  std::string container_id;
  std::optional<std::string> token;
  std::optional<std::string> runner;
  std::optional<Ipv4Addr> ip;  // set exactly when token is absent
};

}  // namespace kohaku
