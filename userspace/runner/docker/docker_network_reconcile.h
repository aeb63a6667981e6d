#pragma once
// The rule for an existing Docker network that differs from its spec, shared by the overlay's
// Docker network (docker_network_sync.h) and the named networks' (l2_docker_networks.h).
#include <nlohmann/json.hpp>

#include <functional>
#include <optional>
#include <string>

#include "runner/docker/docker_client.h"
#include "runner/docker/docker_network_spec.h"

namespace kohaku::runner {

// Brings an existing network (`inspected`, from inspect_network) in line with `spec`:
//  - no difference: "ok";
//  - a fatal difference (another bridge, subnet, gateway, driver): its containers are
//    disconnected and it is removed, "recreated";
//  - a soft difference (MTU, ip range, options) and no container on it: removed, "recreated";
//  - a soft difference while containers use it, or any difference when !may_recreate: left as
//    it is, "ok (differs: ...)", and `left_alone` gets the message to log (callers log it once).
// When the network was removed `inspected` is reset: the caller creates it from `spec`.
// Throws DockerError when Docker refuses a call.
std::string reconcile_existing_network(const DockerClient& docker, const DockerNetworkSpec& spec,
                                       std::optional<nlohmann::json>& inspected, bool may_recreate,
                                       const std::function<void(const std::string&)>& left_alone);

}  // namespace kohaku::runner
