#pragma once
// Attaches network namespaces ("workloads": a process, a VM's tap namespace, anything without
// Docker) to the runner's bridge: a veth pair with one end inside the namespace (eth0 by
// default) holding an address of the bridge's subnet and a default route via the gateway.
// Overlay addresses come from the host (a caller's reservation token, or one the runner
// reserves) and are marked used there with the workload id as container id; detaching frees
// them there again. Everything is persisted so a restarted runner still owns its workloads.
#include <nlohmann/json.hpp>

#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/ipv4.h"
#include "common/netlink/netns.h"
#include "runner/overlay/host_api.h"
#include "runner/workloads/workload_address.h"
#include "runner/workloads/workload_store.h"

namespace kohaku::runner {

// Where new workloads go.
struct AttachNetwork {
  std::string kind;    // "overlay" or "default"
  std::string bridge;  // kohaku-overlay / kohakuriver-net
  Ipv4Cidr subnet;
  Ipv4Addr gateway;
  uint32_t mtu = 1500;
  bool host_managed = false;  // addresses come from (and return to) the host
};

// Named L2 networks (runner/l2/l2_network_agent.h) as workloads see them: the network to attach
// to, and addresses from the host's per-network IPAM keyed by workload id.
class NamedNetworks {
 public:
  virtual ~NamedNetworks() = default;
  // Throws DomainError(kNotFound) when this runner is not a member.
  virtual AttachNetwork attach_network(const std::string& name) = 0;
  virtual Ipv4Addr allocate(const std::string& name, const std::string& workload_id) = 0;
  // true when the host freed it (or holds nothing); false: retry later.
  virtual bool release(const std::string& name, const std::string& workload_id) = 0;
};

// A validated POST /api/workloads body (api/attach_request_json.h parses it).
struct AttachRequest {
  std::string netns;  // path, or empty
  int pid = 0;        // or a process whose namespace to use
  std::optional<std::string> token;
  std::string name;
  std::string interface = "eth0";
  std::string network;  // a named L2 network; empty: the runner's overlay/default network
};

class WorkloadManager {
 public:
  // Addresses Docker holds on a network; avoided when the runner allocates itself.
  using DockerAddresses = std::function<std::set<uint32_t>(const std::string& network)>;

  // Loads STATE_DIR's workloads; throws when the state file is corrupt.
  WorkloadManager(std::filesystem::path state_file, std::string runner_name,
                  std::string default_docker_network, DockerAddresses docker_addresses);

  // Host API used for overlay addresses; null until the runner has registered.
  void set_host(std::shared_ptr<const HostApi> host);
  // Network new workloads join; nullopt: none usable (attach answers 503 with `why`).
  void set_network(std::optional<AttachNetwork> network, std::string why = {});
  // Source of named L2 networks for {"network": NAME}; must outlive this object.
  void set_named_networks(NamedNetworks* named) { named_ = named; }

  // POST /api/workloads: network, namespace checks, address (workload_address.h), devices
  // (workload_device.h), persistence; whatever was done is undone when a later step fails.
  // Throws DomainError (kInvalid/kMalformed bad input, kConflict, kUnavailable no network/host).
  nlohmann::json attach(const AttachRequest& req);
  // DELETE /api/workloads/{id}. Throws DomainError(kNotFound) for an unknown id.
  nlohmann::json detach(const std::string& id);
  nlohmann::json list() const;
  nlohmann::json get(const std::string& id) const;

  // Heartbeat work: a workload whose host veth vanished (its namespace is gone) is dropped and
  // its address freed; the others are put back on their bridge and up (Docker or an operator
  // may have recreated the bridge); pending host releases are retried. Never throws.
  void repair();

  // After a registration: tells the host again that every overlay workload's address is in use
  // (idempotent there), so a host that lost or rebuilt its state does not hand them out twice.
  // Never throws; conflicts are logged.
  void reassert_addresses(const Ipv4Cidr& subnet);

  size_t count() const;
  // Every workload attached now (not those only waiting for the host to free their address).
  std::vector<Workload> current() const;

 private:
  void save_locked() const;                 // also publishes
  void publish_locked() const;              // refreshes snapshot_ from workloads_
  bool release_at_host(const Workload& w);  // true when the host confirmed (or has nothing)
  std::optional<Workload> find_locked(const std::string& id) const;
  // attach()'s steps.
  AttachNetwork network_for_locked(const AttachRequest& req) const;
  // Refuses the runner's own namespace, one attached already, and one not ours to own; returns
  // whether it has a default route already.
  bool check_namespace_locked(const netlink::Netns& ns, const std::string& interface) const;
  AddressSources address_sources_locked(const std::string& kind) const;

  WorkloadStore store_;
  std::string runner_name_;
  std::string default_docker_network_;
  DockerAddresses docker_addresses_;

  mutable std::mutex mu_;
  std::vector<Workload> workloads_;  // includes release_pending ones
  std::shared_ptr<const HostApi> host_;
  std::optional<AttachNetwork> network_;
  std::string network_why_;
  NamedNetworks* named_ = nullptr;

  // What list()/count() answer: kept apart from mu_ so the status endpoint never waits for an
  // attach that is talking to a slow host.
  mutable std::mutex snapshot_mu_;
  mutable nlohmann::json snapshot_ = nlohmann::json::array();
};

}  // namespace kohaku::runner
