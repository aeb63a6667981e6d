#include "runner/docker/docker_network_reconcile.h"

#include "common/log.h"

namespace kohaku::runner {

using nlohmann::json;

namespace {
constexpr std::string_view kLog = "docker";
}  // namespace

std::string reconcile_existing_network(const DockerClient& docker, const DockerNetworkSpec& spec,
                                       std::optional<json>& inspected, bool may_recreate,
                                       const std::function<void(const std::string&)>& left_alone) {
  const NetworkDiff diff = compare_network(spec, *inspected);
  if (diff.matches()) return "ok";
  const auto attached = container_addresses(*inspected);
  const std::string id = docker_string_at(*inspected, "Id");
  if (!may_recreate) {
    left_alone("network " + spec.name + " differs (" + diff.describe() + "); left as it is");
    return "ok (differs: " + diff.describe() + ")";
  }
  if (!diff.fatal.empty()) {
    // Unusable as it is (containers would sit on the wrong bridge or subnet): they are
    // disconnected rather than left broken.
    log::warn(kLog, "network " + spec.name + " is unusable (" + diff.describe() +
                        "); recreating it, detaching " + std::to_string(attached.size()) +
                        " container(s)");
    for (const auto& [cid, ip] : attached) docker.disconnect_container(id, cid);
    docker.remove_network(id);
    inspected.reset();
    return "recreated";
  }
  if (attached.empty()) {
    log::warn(kLog, "network " + spec.name + " differs (" + diff.describe() +
                        "); recreating it while no container uses it");
    docker.remove_network(id);
    inspected.reset();
    return "recreated";
  }
  left_alone("network " + spec.name + " differs (" + diff.describe() + ") but " +
             std::to_string(attached.size()) +
             " container(s) use it; fixing it once they are gone");
  return "ok (differs: " + diff.describe() + ")";
}

}  // namespace kohaku::runner
