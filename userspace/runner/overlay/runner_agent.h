#pragma once
// The runner's control loop: register with the host (retrying; a refusal is logged with the
// host's words and retried slowly), heartbeat, re-register when the host forgot us (404) or
// came back after an outage, and after each of those re-apply the overlay; on every heartbeat
// repair the bridge/vxlan0/route, the workloads' ports and the Docker network, and report
// Docker's container addresses to the host. When the overlay is disabled or cannot be set up,
// new workloads go to the default network and status() says why.
#include <nlohmann/json.hpp>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "common/firewalld.h"
#include "common/periodic_thread.h"
#include "runner/datapath/fast_path_sources.h"
#include "runner/datapath/runner_datapath_mode.h"
#include "runner/docker/docker_network_sync.h"
#include "runner/l2/l2_docker_networks.h"
#include "runner/l2/l2_network_agent.h"
#include "runner/overlay/host_api.h"
#include "runner/overlay/overlay_setup.h"
#include "runner/overlay/runner_credential.h"
#include "runner/runner_config.h"
#include "runner/workloads/workload_manager.h"

namespace kohaku::runner {

class RunnerAgent {
 public:
  // Loads persisted workloads (throws when the state is corrupt). Starts nothing yet.
  explicit RunnerAgent(RunnerConfig config);
  ~RunnerAgent();  // stop()
  RunnerAgent(const RunnerAgent&) = delete;
  RunnerAgent& operator=(const RunnerAgent&) = delete;

  void start();  // the loop runs on its own thread, the named Docker networks on another
  // Ends the loop, then the named Docker networks' thread. Devices, workloads and the Docker
  // network stay as they are. Idempotent.
  void stop();

  WorkloadManager& workloads() { return workloads_; }
  RunnerDatapathMode& datapath() { return datapath_; }
  // The L2 agent's listener (the networks it has applied): outbound NAT for their subnets and
  // their Docker networks follow. Never throws; returns without waiting for Docker (the Docker
  // networks follow on their own thread).
  void named_networks_changed(const std::vector<L2NetworkView>& applied);
  // GET /api/overlay/status
  nlohmann::json status() const;
  const std::string& hostname() const { return hostname_; }
  // The credential the host issued to this runner (empty before the first registration); the
  // host presents it on its calls to this runner's mutating routes. Thread-safe.
  std::string runner_credential() const { return host_->runner_credential(); }

 private:
  // kNoAllocation: registered, but the host gave no overlay (its pool is full of active
  // runners): workloads use the default network until a heartbeat tells us to register again.
  enum class State { kDisabled, kRegistering, kRefused, kActive, kSetupFailed, kNoAllocation };
  static std::string_view state_name(State s);

  // One pass of the loop, never throws; returns how long to wait before the next.
  std::chrono::milliseconds pass();
  std::chrono::seconds step();  // pass() without the catch
  bool try_register();
  // A heartbeat answer carrying the overlay block: adopt a changed host address at once.
  void follow_heartbeat_answer(
      const nlohmann::json& answer);  // true: registered and overlay applied
  void apply_current_overlay(bool announce);
  void keep_issued_credential(const nlohmann::json& register_answer);
  void use_default_network(const std::string& why);
  void sync_docker();  // runner_agent_docker.cpp
  // The fast path's workloads: ours and Docker's on the kohaku bridges (runner_agent_docker.cpp).
  void refresh_fast_path();
  void set_state(State state, const std::string& reason);
  std::pair<State, std::string> current_state() const;

  const RunnerConfig config_;
  const std::string hostname_;
  std::shared_ptr<HostApi> host_;
  RunnerCredentialFile credential_file_;
  DockerNetworkSync docker_;
  WorkloadManager workloads_;
  RunnerDatapathMode datapath_;
  DockerWorkloadFinder docker_finder_;  // heartbeat thread only
  L2DockerNetworks l2_docker_;          // a Docker network per named network (own thread)
  FirewalldZones firewall_{"overlay"};  // kohaku-overlay and vxlan0 in the trusted zone

  // Loop-thread state (status() reads it under mu_).
  mutable std::mutex mu_;
  State state_ = State::kRegistering;
  std::string reason_;
  std::optional<Ipv4Addr> physical_;
  std::optional<OverlayAssignment> assignment_;
  std::optional<OverlayPlan> plan_;
  std::optional<DefaultNetworkPlan> default_plan_;
  std::atomic<bool> registered_ = false;  // written by the loop, read by status()
  bool host_unreachable_ = false;
  bool registration_refused_ = false;  // the last attempt got a 4xx or an unusable answer
  int heartbeats_since_register_ = 0;
  int registrations_ = 0;
  int64_t last_heartbeat_ms_ = 0;
  int64_t last_register_ms_ = 0;
  std::vector<nlohmann::json> recent_repairs_;  // newest last, bounded

  PeriodicThread loop_;  // last: stopped (by ~RunnerAgent) before anything it uses goes
};

}  // namespace kohaku::runner
