#pragma once
// One Docker network per named L2 network this runner is a member of, when a Docker engine
// answers (docs/l2-networks.md, "Docker networks"): `kohaku-<network>`, bridge driver on the
// network's own bridge (kbr-<name>), its subnet, gateway and MTU, no Docker masquerade (outbound
// NAT per network is the runner's datapath), labelled as ours. Docker's IPAM runs on every
// member runner, so each one is confined (IPRange) to an address block the host reserved for
// this runner (POST /api/networks/{name}/ip/block): blocks are disjoint and the host's ordinary
// allocations never enter one, so no two workloads anywhere share an address.
//
// The Docker work runs on this object's own thread from the latest snapshot of applied
// networks: the L2 agent calls update() after every push, removal and poll, and Docker calls may
// block for seconds (timeouts 10 s), which must hold up neither the host's push nor the
// heartbeat. A burst of snapshots collapses into one pass over the newest.
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/ipv4.h"
#include "runner/docker/docker_client.h"
#include "runner/docker/docker_network_spec.h"
#include "runner/l2/l2_network_agent.h"
#include "runner/runner_config.h"

namespace kohaku::runner {

// Label naming the L2 network a Docker network belongs to.
inline constexpr const char* kL2NetworkLabel = "org.kohaku.l2-network";

// "kohaku-<network>"
std::string l2_docker_network_name(const std::string& network);

// The Docker network for `view`, Docker's addresses confined to `block`.
DockerNetworkSpec l2_docker_network_spec(const L2NetworkView& view, const Ipv4Cidr& block);

// The block in the host's answer to POST /api/networks/{name}/ip/block, checked to be a block of
// at least 4 addresses inside `subnet`. Throws std::invalid_argument saying what is wrong.
Ipv4Cidr parse_block_answer(const nlohmann::json& answer, const Ipv4Cidr& subnet);

// A Docker network (GET /networks entry or inspect answer) created by kohaku-runnerd.
bool docker_network_is_ours(const nlohmann::json& network);
// The L2 network an inspected/listed Docker network of ours belongs to, if any.
std::optional<std::string> docker_network_l2_label(const nlohmann::json& network);

class L2DockerNetworks {
 public:
  L2DockerNetworks(const RunnerConfig& config, std::string hostname);
  ~L2DockerNetworks();  // stop()
  L2DockerNetworks(const L2DockerNetworks&) = delete;
  L2DockerNetworks& operator=(const L2DockerNetworks&) = delete;

  void start();
  // Waits for a pass in progress; Docker networks stay as they are.
  void stop();

  // The networks now applied (the L2 agent's listener). Only stores them and wakes the thread.
  void update(std::vector<L2NetworkView> applied);

  // One pass over `applied` (what the thread runs). Never throws; results land in status().
  void sync_once(const std::vector<L2NetworkView>& applied);

  // [{network, docker_network, bridge, block, state, error, network_id, containers}]
  nlohmann::json status() const;

 private:
  struct Entry {
    std::string network;
    std::string docker_network;
    std::string bridge;
    std::optional<Ipv4Cidr> block;
    std::string state;  // created, recreated, ok, ok (differs: ...), waiting-for-bridge, no-docker,
                        // error
    std::string error;
    std::string network_id;
    nlohmann::json containers = nlohmann::json::array();
  };
  struct CachedBlock {
    Ipv4Cidr subnet;
    Ipv4Cidr block;
    std::chrono::steady_clock::time_point fetched;
  };

  void run();
  Entry ensure(const L2NetworkView& view, const nlohmann::json& listed);
  Ipv4Cidr block_for(const L2NetworkView& view);
  void remove_docker_network(const nlohmann::json& network, const std::string& why);
  void note(const std::string& key, const std::string& message, bool error);

  const RunnerConfig config_;
  const std::string hostname_;
  DockerClient docker_;

  // Pass state: only the pass (one at a time) touches these.
  std::map<std::string, CachedBlock> blocks_;
  std::set<std::string> seen_;                 // networks applied at some point in this process
  std::map<std::string, std::string> logged_;  // last message logged per key (log once)

  mutable std::mutex mu_;  // guards what status() reads
  bool available_ = false;
  std::map<std::string, Entry> entries_;

  std::mutex wake_mu_;
  std::condition_variable wake_cv_;
  std::optional<std::vector<L2NetworkView>> pending_;
  std::mutex pass_mu_;  // one pass at a time (the thread, or a direct sync_once)
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kohaku::runner
