// Fuzz target: the OVERLAY_SUBNET scheme parser ("BASE/PREFIX/NODE_BITS/SUBNET_BITS"). A spec is
// refused with std::invalid_argument or gives a scheme whose printed form parses back to the
// same layout, whose runner subnets lie inside the overlay network, and whose host addresses
// are not container addresses.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string_view>

#include "common/subnet_scheme.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view spec(reinterpret_cast<const char*>(data), size);
  std::optional<kohaku::SubnetScheme> scheme;
  try {
    scheme = kohaku::SubnetScheme::parse(spec);
  } catch (const std::invalid_argument&) {
    return 0;
  }
  auto again = kohaku::SubnetScheme::parse(scheme->to_string());
  if (again.to_string() != scheme->to_string()) std::abort();
  const auto network = scheme->overlay_network();
  if (!network.contains(scheme->host_overlay_ip())) std::abort();
  for (uint32_t id : {1u, 2u, scheme->max_runner_id()}) {
    if (!scheme->valid_runner_id(id)) continue;
    auto subnet = scheme->runner_subnet(id);
    if (!network.contains(subnet) || !subnet.contains(scheme->runner_gateway(id))) std::abort();
    if (scheme->is_container_ip(id, scheme->runner_gateway(id)) ||
        scheme->is_container_ip(id, scheme->host_ip_on_runner_subnet(id)))
      std::abort();
    if (scheme->container_ip_count(id) > 0 &&
        (!scheme->is_container_ip(id, scheme->first_container_ip(id)) ||
         !scheme->is_container_ip(id, scheme->last_container_ip(id))))
      std::abort();
  }
  return 0;
}
