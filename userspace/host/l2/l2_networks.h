#pragma once
// Named L2 VXLAN networks (the kcore model): a network is one subnet spread over member runners,
// each holding bridge kbr-<name> and vxlan<VNI> with one flood FDB entry per other member.
// This registry holds the networks, their members and their cluster-wide IPAM:
//  - names match [A-Za-z0-9_-]{1,64} and are not "default";
//  - VNI = 10000 + djb2(name) % 6000 unless given; a VNI another network holds, or one in the
//    hub-and-spoke range [OVERLAY_VXLAN_ID+1 .. OVERLAY_VXLAN_ID+max runner id], is refused;
//  - creating the same spec again is a no-op, another spec under an existing name is 409;
//  - a runner registered with vxlan_disabled cannot be a member (412 naming it);
//  - an address is never held twice; a released one is reused only after the quarantine;
//  - a member runner with Docker gets one aligned address block per network (Calico's block
//    affinity): Docker's IPAM on that runner hands out only addresses of its block, and ordinary
//    allocations never do, so no address is held twice across runners.
// Persisted under STATE_DIR/l2-networks/ with StateStore (snapshot + checksummed journal).
// Thread-safe. Errors are DomainError (kind + message). Request bodies are parsed by the API
// layer (host/api/l2_network_request.h); the registry takes typed requests. Its parts:
// l2_networks.cpp (networks and members), l2_network_ipam.cpp (addresses and Docker blocks),
// l2_network_state.cpp (snapshot and journal), l2_network_views.cpp (what routes and runners see).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/domain_error.h"
#include "common/ipv4.h"
#include "common/wire/l2_network_view.h"
#include "host/l2/l2_network_name.h"
#include "host/state/state_store.h"

namespace kohaku {

// What the registry needs to know about a runner (from the host's node table).
struct L2RunnerInfo {
  std::string hostname;
  Ipv4Addr physical_ip;
  std::string url;
  bool vxlan_disabled = false;
  std::string credential;  // presented as the bearer token on pushes to the runner
};
using L2RunnerLookup = std::function<std::optional<L2RunnerInfo>(const std::string& name)>;

struct L2NetworkSpec {
  Ipv4Cidr subnet;
  Ipv4Addr gateway;
  uint32_t vni = 0;
  bool outbound_nat = true;
  bool operator==(const L2NetworkSpec&) const = default;
};

// A request to create a network, as host/api/l2_network_request.h parses it from the route's
// body: a name that validate_l2_network_name accepts, a /8../30 subnet, a gateway that is a host
// address of it and a VNI 1..2^24-1. An omitted field takes its default (see create()).
struct L2NetworkCreate {
  std::string name;
  Ipv4Cidr subnet;
  std::optional<Ipv4Addr> gateway;
  std::optional<uint32_t> vni;
  std::optional<bool> outbound_nat;
  std::optional<std::set<std::string>> runners;  // the initial members
};

struct L2Lease {
  std::string container_id;
  std::string runner;
  int64_t allocated_ms = 0;
};

// An aligned CIDR block of a network's subnet owned by one runner (for its Docker network).
struct L2Block {
  Ipv4Cidr cidr;
  int64_t allocated_ms = 0;
};

struct L2Network {
  std::string name;
  L2NetworkSpec spec;
  std::set<std::string> members;
  std::map<uint32_t, L2Lease> leases;      // ip -> holder
  std::map<uint32_t, int64_t> quarantine;  // ip -> released at (ms)
  std::map<std::string, L2Block> blocks;   // runner -> its Docker address block
  uint32_t cursor = 0;                     // next address to try (round robin)
  int64_t created_ms = 0;
  uint64_t revision = 0;  // registry revision of the last spec/membership change
};

// A change that member runners must hear about: networks touched, with the runners whose view
// changed (members before and after).
struct L2Change {
  std::string network;
  std::set<std::string> runners;
};

class L2NetworkRegistry {
 public:
  struct Options {
    std::filesystem::path state_dir;               // holds l2-networks/
    uint32_t hub_vni_first = 0, hub_vni_last = 0;  // hub-and-spoke range (empty when first > last)
    std::optional<Ipv4Cidr> overlay_network;       // routed overlay; L2 subnets must not overlap
    uint32_t mtu = 1450;
    uint16_t vxlan_port = 4789;
    int64_t quarantine_ms = 300'000;
    // Addresses per Docker block (power of two >= 4); halved down to 4 when no free block of
    // this size is left.
    uint32_t docker_block_size = 32;
  };
  using Clock = std::function<int64_t()>;
  using Listener = std::function<void(const L2Change&)>;

  L2NetworkRegistry(Options options, L2RunnerLookup lookup, Clock clock);

  // Called after every membership/spec change, outside the lock.
  void set_listener(Listener listener);

  // The routes' answers (see host/api/l2_network_api.h).
  nlohmann::json create(const L2NetworkCreate& request);
  nlohmann::json list(const std::optional<std::string>& runner) const;
  nlohmann::json get(const std::string& name) const;
  nlohmann::json remove(const std::string& name, bool force);
  nlohmann::json join(const std::string& name, const std::string& runner);
  nlohmann::json leave(const std::string& name, const std::string& runner, bool force);
  nlohmann::json allocate(const std::string& name, const std::string& runner,
                          const std::string& container_id);
  nlohmann::json release(const std::string& name, const std::optional<std::string>& ip,
                         const std::optional<std::string>& container_id);
  // POST /api/networks/{name}/ip/block?runner=: the runner's address block (idempotent).
  nlohmann::json allocate_block(const std::string& name, const std::string& runner);

  // What runner `runner` should have for `network` right now (the PUT body for it), or nullopt
  // when it is not a member (then the runner should drop it).
  std::optional<wire::L2NetworkView> runner_view(const std::string& network,
                                                 const std::string& runner) const;
  uint64_t revision() const;

 private:
  nlohmann::json network_json(const L2Network& n, bool with_leases) const;
  wire::L2NetworkView runner_view_locked(const L2Network& n, const std::string& runner) const;
  L2Network& find_locked(const std::string& name);
  const L2Network& find_locked(const std::string& name) const;
  L2RunnerInfo require_member_candidate(const std::string& runner) const;
  bool in_block_locked(const L2Network& n, uint32_t ip) const;
  bool block_free_locked(const L2Network& n, uint32_t base, uint32_t size, int64_t now) const;
  void release_block_locked(L2Network& n, const std::string& runner, int64_t now);
  void journal_network_locked(const L2Network& n);
  void commit_locked();
  void notify(const std::vector<L2Change>& changes);
  void load();
  static nlohmann::json to_state(const L2Network& n);
  static L2Network from_state(const nlohmann::json& j);

  Options options_;
  L2RunnerLookup lookup_;
  Clock clock_;
  mutable std::mutex mu_;
  std::map<std::string, L2Network> networks_;
  uint64_t revision_ = 0;
  std::unique_ptr<StateStore> store_;
  std::mutex listener_mu_;
  Listener listener_;
};

}  // namespace kohaku
