#pragma once
// What the Docker network on the runner's bridge must look like, as Engine API JSON, and how an
// existing network (GET /networks/{id}) differs from it. Pure functions: no Docker needed.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "common/ipv4.h"

namespace kohaku::runner {

// Every network the runner creates carries this label; one without it is never changed.
inline constexpr const char* kManagedByLabel = "org.kohaku.managed-by";
inline constexpr const char* kManagedByValue = "kohaku-runnerd";

struct DockerNetworkSpec {
  std::string name;    // e.g. "kohakuriver-overlay"
  std::string bridge;  // Linux bridge Docker attaches containers to, e.g. "kohaku-overlay"
  Ipv4Cidr subnet;
  Ipv4Addr gateway;
  uint32_t mtu = 1500;
  // Where Docker picks addresses for containers started without --ip. Kept away from the part
  // of the subnet the host hands out first, so the two allocators rarely meet; --ip still
  // accepts any address of the subnet. Unset (prefix 0): the whole subnet.
  Ipv4Cidr ip_range{};
  // Addresses Docker must never hand out, e.g. {"kohaku-host": <subnet>+254}.
  std::map<std::string, Ipv4Addr> excluded;
  // false for the fallback network, which masquerades like any Docker bridge network.
  bool masquerade = false;
  // Labels besides kManagedByLabel (e.g. which named network a network belongs to).
  std::map<std::string, std::string> labels;
};

// The upper half of `subnet` (prefix 0, meaning unset, for a /31 or /32).
Ipv4Cidr upper_half(const Ipv4Cidr& subnet);

// The overlay network's spec: bridge, subnet/gateway, MTU, the host's .254 address excluded,
// dynamic addresses from the upper half of the subnet.
DockerNetworkSpec overlay_network_spec(std::string name, std::string bridge, Ipv4Cidr subnet,
                                       Ipv4Addr gateway, Ipv4Addr host_address, uint32_t mtu);

// Body of POST /networks/create.
nlohmann::json build_create_request(const DockerNetworkSpec& spec);

// How an existing network differs. `fatal` differences make it unusable (another bridge, subnet
// or gateway, not a bridge network): it must be recreated even if containers are attached.
// `soft` ones (MTU, ip range, excluded addresses, icc/masquerade options) are fixed by recreating
// it only once no container uses it.
struct NetworkDiff {
  std::vector<std::string> fatal;
  std::vector<std::string> soft;
  bool matches() const { return fatal.empty() && soft.empty(); }
  std::string describe() const;  // "; "-joined, fatal first
};
NetworkDiff compare_network(const DockerNetworkSpec& spec, const nlohmann::json& inspected);

// Fields of Engine API answers: the string at `key` of an object (empty when absent or not a
// string), the 12-character id `docker ps` shows, and the Linux bridge a bridge network sits on
// (com.docker.network.bridge.name).
std::string docker_string_at(const nlohmann::json& object, const char* key);
std::string docker_short_id(const std::string& id);
std::string docker_network_bridge(const nlohmann::json& network);

// Container id -> IPv4 address of every endpoint in an inspected network's "Containers".
// Endpoints without a parsable IPv4 address are skipped.
std::map<std::string, Ipv4Addr> container_addresses(const nlohmann::json& inspected);

}  // namespace kohaku::runner
