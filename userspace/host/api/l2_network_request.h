#pragma once
// The body of POST /api/networks, checked field by field into the registry's typed request:
// every 400 of a malformed body is raised here, so the registry only sees well-formed requests.
#include <nlohmann/json.hpp>

#include "host/l2/l2_networks.h"

namespace kohaku {

// {name, subnet, gateway?, vni?, outbound_nat?, runners?}; unknown fields are refused.
// Throws ApiError(kInvalidRequest, 422) naming the field.
L2NetworkCreate parse_l2_network_create(const nlohmann::json& body);

}  // namespace kohaku
