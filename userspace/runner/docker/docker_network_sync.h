#pragma once
// Keeps the Docker network on the runner's bridge as DockerNetworkSpec says (created when
// missing, recreated when it points at another bridge/subnet, soft differences fixed once it is
// empty), and keeps the host's record of the addresses Docker's containers hold on it: every
// address is reported as used, and released when its container goes. What was reported is
// persisted so containers that vanished while the runner was down are still released.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "runner/docker/docker_client.h"
#include "runner/docker/docker_network_spec.h"
#include "runner/overlay/host_api.h"

namespace kohaku::runner {

// What to tell the host, given what it was told (container id -> IP) and what Docker shows now.
struct ReportPlan {
  std::map<std::string, Ipv4Addr> use;  // new containers, or ones whose address changed
  std::set<std::string> release;        // containers gone, or whose address changed
};
ReportPlan plan_reports(const std::map<std::string, Ipv4Addr>& reported,
                        const std::map<std::string, Ipv4Addr>& current);

class DockerNetworkSync {
 public:
  // reported_file: where the addresses reported to the host are kept across restarts.
  DockerNetworkSync(std::string docker_socket, std::filesystem::path reported_file);

  // One pass: ping Docker, then create/repair the network. Never throws; failures land in
  // status(). Returns true when the network was created or recreated in this pass (Docker may
  // have deleted and recreated the bridge, so the caller re-applies the bridge's ports).
  // may_recreate false: only create a missing network, never replace one (the fallback network
  // may be the operator's own).
  bool ensure(const DockerNetworkSpec& spec, bool may_recreate = true);

  // One reporting pass against the host for the network ensure() manages. Never throws.
  void report(const HostApi& host, const std::string& runner);

  // The next report() tells the host about every container again, not only changes (after a
  // registration: the host may have lost its state).
  void reassert() {
    std::lock_guard lock(mu_);
    reassert_ = true;
  }

  // Container addresses Docker holds on `network` (empty when Docker is not there): used to
  // avoid them when the runner picks addresses itself.
  std::set<uint32_t> addresses_on(const std::string& network) const;

  nlohmann::json status() const;

 private:
  void save_reported() const;

  DockerClient docker_;
  std::filesystem::path reported_file_;

  mutable std::mutex mu_;
  std::optional<DockerNetworkSpec> spec_;
  bool docker_available_ = false;
  std::string network_id_;
  std::string state_ = "unknown";  // "ok", "created", "recreated", "no-docker", "error"
  std::string error_;
  std::string pending_soft_diff_;  // logged once while containers keep the network busy
  std::map<std::string, Ipv4Addr> containers_;  // last seen on the network
  std::map<std::string, std::string> container_names_;
  std::map<std::string, Ipv4Addr> reported_;      // told to the host as used
  std::map<std::string, std::string> conflicts_;  // container id -> host's refusal
  bool reassert_ = false;
};

}  // namespace kohaku::runner
