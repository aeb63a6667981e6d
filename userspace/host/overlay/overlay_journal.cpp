#include "host/overlay/overlay_journal.h"

#include <stdexcept>

#include "common/json_parse.h"
#include "common/log.h"

namespace kohaku::overlay_journal {

using nlohmann::json;

namespace {

constexpr const char* kComponent = "overlay";

void apply(const json& change, RunnerRegistry& registry, IpReservationBook& book) {
  const std::string op = change.at("op").get<std::string>();
  if (op == "put_node") {
    registry.put(RunnerRegistry::from_json(change.at("node")));
  } else if (op == "del_node") {
    registry.erase(change.at("hostname").get<std::string>());
  } else if (op == "put_ip") {
    book.put(IpReservationBook::from_json(change.at("entry")));
  } else if (op == "del_ip") {
    book.erase(json_integer_at<uint32_t>(change, "runner_id"),
               Ipv4Addr::parse(change.at("ip").get<std::string>()));
  } else {
    throw std::invalid_argument("unknown change '" + op + "'");
  }
}

void load_snapshot(const json& snapshot, const SubnetScheme& scheme, RunnerRegistry& registry,
                   IpReservationBook& book) {
  std::string saved = snapshot.value("subnet_config", "");
  for (const auto& n : snapshot.at("nodes")) registry.put(RunnerRegistry::from_json(n));
  if (saved != scheme.to_string()) {
    log::warn(kComponent, "OVERLAY_SUBNET changed from " + saved + " to " + scheme.to_string() +
                              ": runners keep their ids, " +
                              std::to_string(snapshot.at("ips").size()) +
                              " IP reservations of the old layout are dropped");
    return;
  }
  for (const auto& e : snapshot.at("ips")) book.put(IpReservationBook::from_json(e));
}

}  // namespace

json snapshot(const SubnetScheme& scheme, const RunnerRegistry& registry,
              const IpReservationBook& book) {
  json nodes = json::array(), ips = json::array();
  for (const auto& a : registry.nodes()) nodes.push_back(RunnerRegistry::to_json(a));
  for (const auto& a : registry.allocations())
    if (a.placeholder) nodes.push_back(RunnerRegistry::to_json(a));
  for (const auto& e : book.all()) ips.push_back(IpReservationBook::to_json(e));
  return {{"subnet_config", scheme.to_string()}, {"nodes", nodes}, {"ips", ips}};
}

Batch take_batch(RunnerRegistry& registry, IpReservationBook& book) {
  Batch batch;
  json changes = json::array();
  for (const auto& hostname : registry.take_dirty()) {
    if (const auto* a = registry.find_hostname(hostname)) {
      changes.push_back({{"op", "put_node"}, {"node", RunnerRegistry::to_json(*a)}});
      batch.last_used.emplace_back(hostname, a->last_used_ms);
    } else {
      changes.push_back({{"op", "del_node"}, {"hostname", hostname}});
      batch.last_used.emplace_back(hostname, std::nullopt);
    }
  }
  for (const auto& [runner_id, ip] : book.take_dirty()) {
    if (const auto* e = book.find(runner_id, Ipv4Addr{ip}))
      changes.push_back({{"op", "put_ip"}, {"entry", IpReservationBook::to_json(*e)}});
    else
      changes.push_back(
          {{"op", "del_ip"}, {"runner_id", runner_id}, {"ip", Ipv4Addr{ip}.to_string()}});
  }
  if (!changes.empty()) batch.record = {{"op", "batch"}, {"changes", std::move(changes)}};
  return batch;
}

void replay(StateStore& store, const SubnetScheme& scheme, RunnerRegistry& registry,
            IpReservationBook& book) {
  json snapshot = store.take_snapshot();
  if (!snapshot.is_null()) {
    try {
      load_snapshot(snapshot, scheme, registry, book);
    } catch (const std::exception& e) {
      throw std::runtime_error("snapshot " + (store.dir() / StateStore::kSnapshotName).string() +
                               " cannot be loaded: " + e.what());
    }
  }
  size_t index = 0;
  for (const auto& record : store.take_records()) {
    try {
      if (record.at("op") != "batch") throw std::invalid_argument("unknown record type");
      for (const auto& change : record.at("changes")) apply(change, registry, book);
    } catch (const std::exception& e) {
      throw std::runtime_error("journal " + (store.dir() / StateStore::kJournalName).string() +
                               " record " + std::to_string(index) + " (seq " +
                               record.value("seq", json()).dump() +
                               ") cannot be applied: " + e.what());
    }
    ++index;
  }
}

}  // namespace kohaku::overlay_journal
