#include "runner/workloads/workload_store.h"

#include <random>
#include <stdexcept>

#include "common/crash_safe_file.h"
#include "common/json_parse.h"

namespace kohaku::runner {

using nlohmann::json;

namespace {

constexpr int kFormatVersion = 1;

template <typename T>
T field(const json& j, const char* key) {
  if (!j.contains(key)) throw std::invalid_argument(std::string("workload: missing '") + key + "'");
  try {
    return j[key].get<T>();
  } catch (const json::exception&) {
    throw std::invalid_argument(std::string("workload: '") + key + "' has the wrong type");
  }
}

Ipv4Addr addr_field(const json& j, const char* key) {
  auto text = field<std::string>(j, key);
  auto addr = Ipv4Addr::try_parse(text);
  if (!addr) throw std::invalid_argument(std::string("workload: '") + key + "' is not IPv4");
  return *addr;
}

}  // namespace

wire::WorkloadReport Workload::report() const {
  return wire::WorkloadReport{.id = id,
                              .name = name,
                              .ip = ip,
                              .prefix = prefix,
                              .gateway = gateway,
                              .interface = interface,
                              .host_veth = host_veth,
                              .mtu = mtu,
                              .network = network,
                              .bridge = bridge,
                              .created_at_ms = created_at_ms,
                              .netns = netns,
                              .pid = pid};
}

json Workload::to_json() const {
  // The record is the report plus what only the runner needs; netns and pid are always written.
  json out = report().to_json();
  out["netns"] = netns;
  out["pid"] = pid;
  out["host_managed"] = host_managed;
  out["release_pending"] = release_pending;
  return out;
}

Workload Workload::from_json(const json& j) {
  if (!j.is_object()) throw std::invalid_argument("workload: not an object");
  Workload w;
  w.id = field<std::string>(j, "id");
  w.name = field<std::string>(j, "name");
  w.netns = field<std::string>(j, "netns");
  w.pid = field<int>(j, "pid");
  w.interface = field<std::string>(j, "interface");
  w.host_veth = field<std::string>(j, "host_veth");
  w.ip = addr_field(j, "ip");
  w.prefix = field<uint8_t>(j, "prefix");
  w.gateway = addr_field(j, "gateway");
  w.mtu = field<uint32_t>(j, "mtu");
  w.network = field<std::string>(j, "network");
  w.bridge = field<std::string>(j, "bridge");
  w.host_managed = field<bool>(j, "host_managed");
  w.created_at_ms = field<int64_t>(j, "created_at_ms");
  w.release_pending = j.value("release_pending", false);
  if (w.id.empty() || w.host_veth.empty() || w.interface.empty()) {
    throw std::invalid_argument("workload: empty id, host_veth or interface");
  }
  if (w.prefix > 32) throw std::invalid_argument("workload: prefix over 32");
  return w;
}

std::string new_workload_id() {
  std::random_device rd;
  std::uniform_int_distribution<int> digit(0, 15);
  std::string id = "wl-";
  for (int i = 0; i < 12; ++i) id += "0123456789abcdef"[digit(rd)];
  return id;
}

std::string host_veth_name(const std::string& workload_id) {
  std::string hex = workload_id.rfind("wl-", 0) == 0 ? workload_id.substr(3) : workload_id;
  return "kw" + hex.substr(0, 12);
}

std::vector<Workload> WorkloadStore::load() const {
  std::error_code ec;
  if (!std::filesystem::exists(file_, ec)) return {};
  const std::string text = read_whole_file(file_);
  const json doc = try_parse_json(text, kFileJsonLimits).value_or(json());
  if (!doc.is_object() || !doc.contains("workloads") || !doc["workloads"].is_array()) {
    throw std::runtime_error(file_.string() + ": not a workload state file");
  }
  if (doc.value("version", 0) != kFormatVersion) {
    throw std::runtime_error(file_.string() + ": unsupported version " +
                             doc.value("version", json(nullptr)).dump());
  }
  std::vector<Workload> out;
  for (const auto& entry : doc["workloads"]) {
    try {
      out.push_back(Workload::from_json(entry));
    } catch (const std::invalid_argument& e) {
      throw std::runtime_error(file_.string() + ": " + e.what());
    }
  }
  return out;
}

void WorkloadStore::save(const std::vector<Workload>& workloads) const {
  json list = json::array();
  for (const auto& w : workloads) list.push_back(w.to_json());
  std::filesystem::create_directories(file_.parent_path());
  write_file_atomically(file_, json{{"version", kFormatVersion}, {"workloads", list}}.dump(2));
}

}  // namespace kohaku::runner
