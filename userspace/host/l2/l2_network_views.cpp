#include "host/l2/l2_networks.h"

// What the registry shows: a network as the routes list it, and a member runner's view of it
// (common/wire/l2_network_view.h) as pushed to and polled by the runner.

namespace kohaku {

using nlohmann::json;

json L2NetworkRegistry::network_json(const L2Network& n, bool with_leases) const {
  const int64_t now = clock_();
  json members = json::array();
  for (const auto& m : n.members) {
    auto info = lookup_(m);
    members.push_back({{"runner", m},
                       {"physical_ip", info ? json(info->physical_ip.to_string()) : json(nullptr)},
                       {"registered", info.has_value()}});
  }
  size_t quarantined = 0;
  for (const auto& [ip, ms] : n.quarantine) quarantined += now - ms < options_.quarantine_ms;
  json blocks = json::array();
  for (const auto& [runner, b] : n.blocks)
    blocks.push_back({{"runner", runner}, {"cidr", b.cidr.to_string()}});
  json j = {{"name", n.name},
            {"subnet", n.spec.subnet.to_string()},
            {"gateway", n.spec.gateway.to_string()},
            {"vni", n.spec.vni},
            {"outbound_nat", n.spec.outbound_nat},
            {"mtu", options_.mtu},
            {"vxlan_device", "vxlan" + std::to_string(n.spec.vni)},
            {"members", members},
            {"allocated", n.leases.size()},
            {"quarantined", quarantined},
            {"blocks", blocks},
            {"revision", n.revision}};
  if (with_leases) {
    json leases = json::array();
    for (const auto& [ip, l] : n.leases)
      leases.push_back({{"ip", Ipv4Addr{ip}.to_string()},
                        {"container_id", l.container_id},
                        {"runner", l.runner}});
    j["leases"] = leases;
  }
  return j;
}

wire::L2NetworkView L2NetworkRegistry::runner_view_locked(const L2Network& n,
                                                          const std::string& runner) const {
  wire::L2NetworkView v;
  std::optional<L2RunnerInfo> self = lookup_(runner);
  for (const auto& m : n.members) {
    if (m == runner) continue;
    auto info = lookup_(m);
    // A member the host no longer knows (released) has no address to send to.
    if (!info) continue;
    // Two runners behind one address would make the device flood to itself.
    if (self && info->physical_ip == self->physical_ip) continue;
    v.peers.push_back(info->physical_ip);
  }
  v.name = n.name;
  v.vni = n.spec.vni;
  v.subnet = n.spec.subnet;
  v.gateway = n.spec.gateway;
  v.mtu = options_.mtu;
  v.port = options_.vxlan_port;
  v.outbound_nat = n.spec.outbound_nat;
  v.revision = revision_;
  return v;
}

std::optional<wire::L2NetworkView> L2NetworkRegistry::runner_view(const std::string& network,
                                                                  const std::string& runner) const {
  std::lock_guard lock(mu_);
  auto it = networks_.find(network);
  if (it == networks_.end() || !it->second.members.count(runner)) return std::nullopt;
  return runner_view_locked(it->second, runner);
}

}  // namespace kohaku
