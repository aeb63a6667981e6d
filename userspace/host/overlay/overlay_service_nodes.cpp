// GET /api/nodes and GET /api/health: the registered nodes with KohakuRiver's fields, so its
// clients (`node list`, `node summary`, `node health`, dashboards) read them unchanged.
#include <algorithm>

#include "common/wire/names.h"
#include "host/overlay/overlay_service.h"
#include "host/overlay/overlay_service_impl.h"

namespace kohaku {

using nlohmann::json;

namespace {

// The heartbeat fields KohakuRiver's runners report (host/api/overlay_params.cpp checks their
// types) and KohakuRiver's /api/nodes shows, null until the first heartbeat brings them.
constexpr const char* kMetricFields[] = {
    "cpu_percent",      "memory_percent",   "memory_used_bytes", "memory_total_bytes",
    "current_avg_temp", "current_max_temp", "runner_version",
};

json field_or(const json& object, const char* key, json fallback) {
  auto it = object.find(key);
  return it == object.end() || it->is_null() ? fallback : *it;
}

// One node as KohakuRiver's /api/nodes entry, plus this host's overlay fields.
json node_json(const RunnerAllocation& a, const json& metrics, bool overlay_enabled,
               const std::string& no_overlay_reason) {
  const json details = a.details.is_object() ? a.details : json::object();
  json n = details;  // everything the runner registered with, as sent
  n["hostname"] = a.hostname;
  n["url"] = a.url;
  const int64_t total_cores = details.value("total_cores", int64_t{0});
  n["total_cores"] = total_cores;
  n["status"] = a.is_active ? "online" : "offline";
  // No tasks run through this host: nothing holds cores. KohakuRiver shows "N/A" and 0 for an
  // offline node.
  n["cores_in_use"] = a.is_active ? json(0) : json("N/A");
  n["available_cores"] = a.is_active ? total_cores : 0;
  n["last_heartbeat"] = iso_time(a.last_used_ms);
  n["registered_at"] = iso_time(a.created_ms);
  n["numa_topology"] = field_or(details, "numa_topology", json::object());
  // The heartbeat's GPU list replaces the registered one when it has any (as KohakuRiver).
  json gpus = field_or(details, "gpu_info", json::array());
  if (auto hb = metrics.find("gpu_info"); hb != metrics.end() && hb->is_array() && !hb->empty())
    gpus = *hb;
  n["gpu_info"] = gpus;
  for (const char* key : kMetricFields) n[key] = field_or(metrics, key, nullptr);
  // Before the first heartbeat the registration's total RAM is the best answer.
  if (n["memory_total_bytes"].is_null())
    n["memory_total_bytes"] = field_or(details, "total_ram_bytes", nullptr);
  n["vm_capable"] = field_or(metrics, "vm_capable", false);
  n["vfio_gpus"] = field_or(metrics, "vfio_gpus", json::array());
  n["physical_ip"] = a.physical_ip.to_string();
  n["runner_id"] = a.has_overlay() ? json(a.id) : json(nullptr);
  n["overlay_subnet"] = a.has_overlay() ? json(a.subnet.to_string()) : json(nullptr);
  n["vxlan_device"] = a.has_overlay() ? json(host_vxlan_device_name(a.id)) : json(nullptr);
  if (overlay_enabled && !a.has_overlay() && a.is_active) n["overlay_reason"] = no_overlay_reason;
  return n;
}

json health_json(const json& node) {
  json h;
  for (const char* key : {"hostname", "status", "last_heartbeat", "cpu_percent", "memory_percent",
                          "memory_used_bytes", "memory_total_bytes", "total_cores", "numa_topology",
                          "current_avg_temp", "current_max_temp", "gpu_info"})
    h[key] = node.value(key, json());
  return h;
}

double number_or_zero(const json& j) {
  return j.is_number() ? j.get<double>() : 0.0;
}

// KohakuRiver's aggregate over every node (CPU weighted by cores).
json aggregate_json(const json& nodes, const json& now) {
  int64_t total = 0, online = 0, cores = 0, mem_total = 0, mem_used = 0;
  double cpu = 0, max_avg_temp = 0, max_max_temp = 0;
  std::string last = now.is_string() ? now.get<std::string>() : std::string();
  for (const auto& n : nodes) {
    ++total;
    if (n["status"] == "online") ++online;
    const int64_t c = n["total_cores"].is_number_integer() ? n["total_cores"].get<int64_t>() : 0;
    cores += c;
    mem_total += static_cast<int64_t>(number_or_zero(n["memory_total_bytes"]));
    mem_used += static_cast<int64_t>(number_or_zero(n["memory_used_bytes"]));
    cpu += number_or_zero(n["cpu_percent"]) * static_cast<double>(c);
    max_avg_temp = std::max(max_avg_temp, number_or_zero(n["current_avg_temp"]));
    max_max_temp = std::max(max_max_temp, number_or_zero(n["current_max_temp"]));
    if (n["last_heartbeat"].is_string() && n["last_heartbeat"].get<std::string>() > last)
      last = n["last_heartbeat"].get<std::string>();
  }
  return {{"totalNodes", total},
          {"onlineNodes", online},
          {"totalCores", cores},
          {"totalMemBytes", mem_total},
          {"usedMemBytes", mem_used},
          {"avgCpuPercent", cores > 0 ? cpu / static_cast<double>(cores) : 0.0},
          {"avgMemPercent",
           mem_total > 0 ? static_cast<double>(mem_used) / static_cast<double>(mem_total) * 100.0
                         : 0.0},
          {"maxAvgCpuTemp", max_avg_temp},
          {"maxMaxCpuTemp", max_max_temp},
          {"lastUpdated", last}};
}

}  // namespace

json OverlayService::nodes() {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  m.refresh(m.clock());
  m.commit(false);
  json out = json::array();
  const std::string reason = m.registry.pool_full_reason();
  for (const auto& a : m.registry.nodes()) {
    auto it = m.metrics.find(a.hostname);
    out.push_back(node_json(a, it == m.metrics.end() ? json::object() : it->second,
                            m.config.overlay_enabled, reason));
  }
  return out;
}

json OverlayService::health(const std::optional<std::string>& hostname) {
  if (hostname) checked_name("hostname", *hostname);
  json all = nodes();
  if (hostname) {
    for (const auto& n : all)
      if (n["hostname"] == *hostname) return json::array({health_json(n)});
    throw DomainError(ErrorKind::kNotFound, "Node " + *hostname + " not found in health data.");
  }
  // KohakuRiver keeps 60 one-second samples; this host answers with the one sample of now
  // (the shapes are the same: a list of samples of the node list, and of the aggregate).
  json sample = json::array();
  for (const auto& n : all) sample.push_back(health_json(n));
  return {{"nodes", json::array({sample})},
          {"aggregate", json::array({aggregate_json(all, iso_time(impl_->clock()))})}};
}

}  // namespace kohaku
