#pragma once
// The `overlay` block of the host's register and heartbeat answers: which runner id, subnet and
// tunnel parameters a runner uses. The host builds it (host/overlay/overlay_service.cpp) and the
// runner parses it (runner/overlay/host_link.cpp), so both ends share one definition of the
// field names and the checks. The shape is KohakuRiver's; do not rename fields.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>

#include "common/ipv4.h"

namespace kohaku::wire {

struct OverlayAssignment {
  uint32_t runner_id = 0;              // "runner_id", > 0
  Ipv4Cidr subnet;                     // "overlay_subnet": this runner's subnet
  Ipv4Addr gateway;                    // "overlay_gateway": bridge address, subnet+1
  Ipv4Addr host_overlay_ip;            // "host_overlay_ip": the host's anchor address
  Ipv4Addr host_physical_ip;           // "host_physical_ip": VXLAN remote
  Ipv4Cidr network;                    // "overlay_network_cidr": routed via host_on_subnet
  Ipv4Addr host_on_subnet;             // "host_ip_on_runner_subnet": the host's .254 on it
  std::optional<uint32_t> vxlan_id;    // "vxlan_id": this runner's VNI (base + id), when sent
  std::optional<uint16_t> vxlan_port;  // "vxlan_port"
  std::optional<uint32_t> mtu;         // "mtu"

  // Throws std::invalid_argument naming the field ("overlay answer: 'KEY' ...") when `overlay`
  // is incomplete, malformed, outside the protocol limits (common/wire/limits.h), or its gateway
  // or host address lies outside its subnet.
  static OverlayAssignment from_json(const nlohmann::json& overlay);
  // Absent optionals are left out.
  nlohmann::json to_json() const;
  bool operator==(const OverlayAssignment&) const = default;
};

// The field readers of the overlay answers (this block and the runner's reserve answer), with
// their one wording: std::invalid_argument "overlay answer: 'KEY' missing or not a string" / "is
// not an IPv4 address: TEXT".
std::string overlay_answer_string(const nlohmann::json& object, const char* key);
Ipv4Addr overlay_answer_addr(const nlohmann::json& object, const char* key);

}  // namespace kohaku::wire
