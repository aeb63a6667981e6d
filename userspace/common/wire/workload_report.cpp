#include "common/wire/workload_report.h"

#include <stdexcept>
#include <string>

#include "common/json_parse.h"

namespace kohaku::wire {

using nlohmann::json;

namespace {

[[noreturn]] void bad(const std::string& why) {
  throw std::invalid_argument("workload report: " + why);
}

std::string string_at(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_string()) bad(std::string("'") + key + "' missing or not a string");
  return it->get<std::string>();
}

Ipv4Addr addr_at(const json& j, const char* key) {
  const std::string text = string_at(j, key);
  auto addr = Ipv4Addr::try_parse(text);
  if (!addr) bad(std::string("'") + key + "' is not an IPv4 address: " + text);
  return *addr;
}

template <class T>
T integer_at(const json& j, const char* key) {
  try {
    return json_integer_at<T>(j, key);
  } catch (const std::invalid_argument& e) {
    bad(e.what());
  }
}

}  // namespace

WorkloadReport WorkloadReport::from_json(const json& j) {
  if (!j.is_object()) bad("not an object");
  WorkloadReport r;
  r.id = string_at(j, "id");
  if (r.id.empty()) bad("'id' is empty");
  r.name = string_at(j, "name");
  r.ip = addr_at(j, "ip");
  r.prefix = integer_at<uint8_t>(j, "prefix");
  if (r.prefix > 32) bad("'prefix' over 32");
  r.gateway = addr_at(j, "gateway");
  r.interface = string_at(j, "interface");
  r.host_veth = string_at(j, "host_veth");
  r.mtu = integer_at<uint32_t>(j, "mtu");
  r.network = string_at(j, "network");
  r.bridge = string_at(j, "bridge");
  r.created_at_ms = integer_at<int64_t>(j, "created_at_ms");
  if (j.contains("netns")) r.netns = string_at(j, "netns");
  if (j.contains("pid")) r.pid = integer_at<int>(j, "pid");
  return r;
}

json WorkloadReport::to_json() const {
  json out = {{"id", id},
              {"name", name},
              {"ip", ip.to_string()},
              {"prefix", prefix},
              {"gateway", gateway.to_string()},
              {"interface", interface},
              {"host_veth", host_veth},
              {"mtu", mtu},
              {"network", network},
              {"bridge", bridge},
              {"created_at_ms", created_at_ms}};
  if (!netns.empty()) out["netns"] = netns;
  if (pid) out["pid"] = pid;
  return out;
}

std::vector<WorkloadReport> workload_reports_from_json(const json& list) {
  if (!list.is_array()) bad("the list is not an array");
  std::vector<WorkloadReport> out;
  for (size_t i = 0; i < list.size(); ++i) {
    try {
      out.push_back(WorkloadReport::from_json(list[i]));
    } catch (const std::invalid_argument& e) {
      throw std::invalid_argument("workloads[" + std::to_string(i) + "]: " + e.what());
    }
  }
  return out;
}

json to_json(const std::vector<WorkloadReport>& reports) {
  json out = json::array();
  for (const auto& r : reports) out.push_back(r.to_json());
  return out;
}

}  // namespace kohaku::wire
