// RunnerAgent's Docker side: the Docker network that follows the overlay (or the default network
// when there is none), the host's view of Docker's container addresses, and the Docker networks
// of named L2 networks. Apart from runner_agent.cpp so the control loop reads on its own.
#include "runner/overlay/runner_agent.h"

namespace kohaku::runner {

namespace {

DockerNetworkSpec default_network_spec(const RunnerConfig& config, const std::string& bridge) {
  DockerNetworkSpec spec;
  spec.name = config.docker_network_name;
  spec.bridge = bridge;
  spec.subnet = config.docker_network_subnet;
  spec.gateway = config.docker_network_gateway;
  spec.mtu = 1500;
  // Docker picks from the upper half, the runner's own workloads from the bottom up.
  spec.ip_range = upper_half(config.docker_network_subnet);
  if (spec.ip_range.prefix != 0) spec.excluded["kohaku-range-base"] = spec.ip_range.first();
  spec.masquerade = true;  // the fallback network reaches the outside like any Docker network
  return spec;
}

}  // namespace

void RunnerAgent::named_networks_changed(const std::vector<L2NetworkView>& applied) {
  datapath_.set_named_networks(applied);
  // Docker calls may take seconds: the L2 agent (which serves the host's push) must not wait.
  l2_docker_.update(applied);
}

void RunnerAgent::refresh_fast_path() {
  if (config_.overlay_datapath != Datapath::kBpf || !config_.overlay_enabled) return;
  datapath_.set_fast_path_workloads(kFastPathRunnerSource,
                                    own_fast_path_workloads(workloads_.current()));
  if (auto containers = docker_finder_.find(datapath_.fast_path_bridges()))
    datapath_.set_fast_path_workloads(kFastPathDockerSource, std::move(*containers));
}

void RunnerAgent::sync_docker() {
  std::optional<DockerNetworkSpec> spec;
  bool overlay;
  {
    std::lock_guard lock(mu_);
    overlay = state_ == State::kActive && assignment_.has_value();
    if (overlay) {
      spec = overlay_network_spec(config_.overlay_network_name, config_.overlay_bridge_name,
                                  assignment_->subnet, assignment_->gateway,
                                  assignment_->host_on_subnet, config_.overlay_mtu);
    } else if (default_plan_) {
      spec = default_network_spec(config_, default_plan_->bridge);
    }
  }
  if (!spec) return;
  if (docker_.ensure(*spec, overlay)) {
    // Docker may have deleted and recreated the bridge: put our side back at once.
    if (overlay) {
      apply_current_overlay(false);
    } else {
      use_default_network(current_state().second);
    }
  }
  if (overlay && registered_) docker_.report(*host_, hostname_);
}

}  // namespace kohaku::runner
