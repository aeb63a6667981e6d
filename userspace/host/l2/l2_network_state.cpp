#include "host/l2/l2_networks.h"

#include <algorithm>

#include "common/json_parse.h"

// The registry's persistence: the state snapshot of every network and the journal records
// replayed on top of it (StateStore under STATE_DIR/l2-networks/).

namespace kohaku {

using nlohmann::json;

json L2NetworkRegistry::to_state(const L2Network& n) {
  json leases = json::array();
  for (const auto& [ip, l] : n.leases)
    leases.push_back({{"ip", Ipv4Addr{ip}.to_string()},
                      {"container_id", l.container_id},
                      {"runner", l.runner},
                      {"allocated_ms", l.allocated_ms}});
  json quarantine = json::array();
  for (const auto& [ip, ms] : n.quarantine)
    quarantine.push_back({{"ip", Ipv4Addr{ip}.to_string()}, {"released_ms", ms}});
  json blocks = json::array();
  for (const auto& [runner, b] : n.blocks)
    blocks.push_back(
        {{"runner", runner}, {"cidr", b.cidr.to_string()}, {"allocated_ms", b.allocated_ms}});
  return {{"name", n.name},
          {"subnet", n.spec.subnet.to_string()},
          {"gateway", n.spec.gateway.to_string()},
          {"vni", n.spec.vni},
          {"outbound_nat", n.spec.outbound_nat},
          {"members", n.members},
          {"created_ms", n.created_ms},
          {"revision", n.revision},
          {"cursor", n.cursor},
          {"leases", leases},
          {"quarantine", quarantine},
          {"blocks", blocks}};
}

L2Network L2NetworkRegistry::from_state(const json& j) {
  L2Network n;
  n.name = j.at("name").get<std::string>();
  n.spec.subnet = Ipv4Cidr::parse(j.at("subnet").get<std::string>());
  n.spec.gateway = Ipv4Addr::parse(j.at("gateway").get<std::string>());
  n.spec.vni = json_integer_at<uint32_t>(j, "vni");
  n.spec.outbound_nat = j.at("outbound_nat").get<bool>();
  n.members = j.at("members").get<std::set<std::string>>();
  n.created_ms = json_integer_or<int64_t>(j, "created_ms", 0);
  n.revision = json_integer_or<uint64_t>(j, "revision", 0);
  n.cursor = json_integer_or<uint32_t>(j, "cursor", 0);
  for (const auto& l : j.value("leases", json::array()))
    n.leases[Ipv4Addr::parse(l.at("ip").get<std::string>()).value] = {
        l.at("container_id").get<std::string>(), l.at("runner").get<std::string>(),
        json_integer_or<int64_t>(l, "allocated_ms", 0)};
  for (const auto& q : j.value("quarantine", json::array()))
    n.quarantine[Ipv4Addr::parse(q.at("ip").get<std::string>()).value] =
        json_integer_at<int64_t>(q, "released_ms");
  // State written before Docker blocks existed has none.
  for (const auto& b : j.value("blocks", json::array()))
    n.blocks[b.at("runner").get<std::string>()] = {Ipv4Cidr::parse(b.at("cidr").get<std::string>()),
                                                   json_integer_or<int64_t>(b, "allocated_ms", 0)};
  return n;
}

void L2NetworkRegistry::load() {
  try {
    json snap = store_->take_snapshot();
    if (snap.is_object()) {
      revision_ = json_integer_or<uint64_t>(snap, "revision", 0);
      for (const auto& j : snap.value("networks", json::array())) {
        auto n = from_state(j);
        networks_[n.name] = std::move(n);
      }
    }
    for (const auto& r : store_->take_records()) {
      const std::string op = r.at("op").get<std::string>();
      revision_ = std::max(revision_, json_integer_or<uint64_t>(r, "revision", 0));
      if (op == "network") {
        // Spec and members; the IPAM part stays as replayed so far.
        auto n = from_state(r.at("network"));
        auto it = networks_.find(n.name);
        if (it != networks_.end()) {
          n.leases = std::move(it->second.leases);
          n.quarantine = std::move(it->second.quarantine);
          n.cursor = it->second.cursor;
          n.blocks = std::move(it->second.blocks);
        }
        networks_[n.name] = std::move(n);
      } else if (op == "delete") {
        networks_.erase(r.at("name").get<std::string>());
      } else if (op == "lease") {
        auto& n = networks_.at(r.at("name").get<std::string>());
        uint32_t ip = Ipv4Addr::parse(r.at("ip").get<std::string>()).value;
        n.leases[ip] = {r.at("container_id").get<std::string>(), r.at("runner").get<std::string>(),
                        json_integer_at<int64_t>(r, "ms")};
        n.quarantine.erase(ip);
        n.cursor = json_integer_at<uint32_t>(r, "cursor");
      } else if (op == "release") {
        auto& n = networks_.at(r.at("name").get<std::string>());
        uint32_t ip = Ipv4Addr::parse(r.at("ip").get<std::string>()).value;
        n.leases.erase(ip);
        n.quarantine[ip] = json_integer_at<int64_t>(r, "ms");
      } else if (op == "block") {
        auto& n = networks_.at(r.at("name").get<std::string>());
        const Ipv4Cidr cidr = Ipv4Cidr::parse(r.at("cidr").get<std::string>());
        for (auto q = n.quarantine.lower_bound(cidr.first().value);
             q != n.quarantine.end() && q->first <= cidr.last().value;)
          q = n.quarantine.erase(q);
        n.blocks[r.at("runner").get<std::string>()] = {cidr, json_integer_at<int64_t>(r, "ms")};
      } else if (op == "block_release") {
        auto& n = networks_.at(r.at("name").get<std::string>());
        release_block_locked(n, r.at("runner").get<std::string>(),
                             json_integer_at<int64_t>(r, "ms"));
      } else {
        throw std::runtime_error("unknown record op '" + op + "'");
      }
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot load L2 networks from " + store_->dir().string() + ": " +
                             e.what());
  }
  std::lock_guard lock(mu_);
  commit_locked();
  store_->compact([this] {
    json nets = json::array();
    for (const auto& [_, n] : networks_) nets.push_back(to_state(n));
    return json{{"revision", revision_}, {"networks", nets}};
  }());
}

void L2NetworkRegistry::journal_network_locked(const L2Network& n) {
  json state = to_state(n);
  state.erase("leases");
  state.erase("quarantine");
  state.erase("blocks");
  store_->append({{"op", "network"}, {"network", state}, {"revision", revision_}});
}

void L2NetworkRegistry::commit_locked() {
  if (!store_->compaction_due()) return;
  json nets = json::array();
  for (const auto& [_, n] : networks_) nets.push_back(to_state(n));
  store_->compact({{"revision", revision_}, {"networks", nets}});
}

}  // namespace kohaku
