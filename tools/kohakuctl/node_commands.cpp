#include "verbs.h"

#include <cstdio>

#include "command_support.h"
#include "reply_shape.h"
#include "table.h"

namespace kohakuctl {
namespace {

using kohaku::http::HttpClient;
using nlohmann::json;

// GET /api/nodes: a list of node objects (or {"nodes": [...]}, as older hosts answered).
json fetch_nodes(const HttpClient& c) {
  json j = checked(c.get("/api/nodes"));
  json nodes = j.is_object() && j.contains("nodes") ? j["nodes"] : j;
  if (!nodes.is_array())
    throw CommandError("unexpected reply to GET /api/nodes: expected a list of nodes, got " +
                       std::string(nodes.type_name()));
  for (const auto& n : nodes) expect_reply(n, "GET /api/nodes", {{"hostname", JsonKind::kString}});
  return nodes;
}

double number(const json& n, const char* key) {
  return n.contains(key) && n[key].is_number() ? n[key].get<double>() : 0.0;
}

// KohakuRiver's format_bytes: "15.6GB"; "-" when the node did not report it.
std::string bytes_cell(const json& v) {
  if (!v.is_number()) return "-";
  double b = v.get<double>();
  for (const char* unit : {"B", "KB", "MB", "GB", "TB"}) {
    if (b < 1024 && b > -1024) {
      char buf[64];
      std::snprintf(buf, sizeof buf, "%.1f%s", b, unit);
      return buf;
    }
    b /= 1024;
  }
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.1fPB", b);
  return buf;
}

std::string number_cell(const json& n, const char* key, const char* suffix = "") {
  if (!n.contains(key) || !n[key].is_number()) return "-";
  char buf[64];
  if (n[key].is_number_integer())
    std::snprintf(buf, sizeof buf, "%lld%s", static_cast<long long>(n[key].get<int64_t>()), suffix);
  else
    std::snprintf(buf, sizeof buf, "%.1f%s", n[key].get<double>(), suffix);
  return buf;
}

size_t gpu_count(const json& n) {
  return n.contains("gpu_info") && n["gpu_info"].is_array() ? n["gpu_info"].size() : 0;
}

bool online(const json& n) {
  return n.value("status", json()) == "online";
}

// What KohakuRiver's "Cluster Summary" panel adds up: available cores of online nodes only.
json summary_of(const json& nodes) {
  int64_t up = 0, down = 0, gpus = 0;
  double cores = 0, available = 0, mem_total = 0, mem_used = 0;
  for (const auto& n : nodes) {
    (online(n) ? up : down) += 1;
    cores += number(n, "total_cores");
    if (online(n)) available += number(n, "available_cores");
    mem_total += number(n, "memory_total_bytes");
    mem_used += number(n, "memory_used_bytes");
    gpus += static_cast<int64_t>(gpu_count(n));
  }
  return {{"nodes_online", up},
          {"nodes_offline", down},
          {"total_cores", static_cast<int64_t>(cores)},
          {"available_cores", static_cast<int64_t>(available)},
          {"memory_total_bytes", static_cast<int64_t>(mem_total)},
          {"memory_used_bytes", static_cast<int64_t>(mem_used)},
          {"total_gpus", gpus}};
}

void print_summary(std::ostream& out, const json& s) {
  print_key_values(
      out,
      {{"Nodes", cell(s["nodes_online"]) + " online / " + cell(s["nodes_offline"]) + " offline"},
       {"Cores", cell(s["available_cores"]) + " available / " + cell(s["total_cores"]) + " total"},
       {"Memory", bytes_cell(s["memory_used_bytes"]) + " used / " +
                      bytes_cell(s["memory_total_bytes"]) + " total"},
       {"GPUs", cell(s["total_gpus"]) + " total"}});
}

// KohakuRiver's node table, then where each node sits on the overlay.
void print_node_table(std::ostream& out, const json& nodes) {
  Table t({"Hostname", "Status", "Cores", "Available", "Memory", "GPUs", "URL", "Runner ID",
           "Overlay subnet"});
  for (const auto& n : nodes) {
    std::string memory = "-";
    if (number(n, "memory_total_bytes") > 0)
      memory = bytes_cell(n.value("memory_used_bytes", json(0))) + "/" +
               bytes_cell(n["memory_total_bytes"]);
    const size_t gpus = gpu_count(n);
    t.add_row(
        {field(n, "hostname"), field(n, "status"), field(n, "total_cores"),
         n.contains("available_cores") ? field(n, "available_cores") : field(n, "total_cores"),
         memory, gpus > 0 ? std::to_string(gpus) : "-", field(n, "url"), field(n, "runner_id"),
         field(n, "overlay_subnet")});
  }
  t.print(out);
}

void print_node_detail(std::ostream& out, const json& n) {
  std::string used = bytes_cell(n.value("memory_used_bytes", json()));
  if (n.contains("memory_percent") && n["memory_percent"].is_number())
    used += " (" + number_cell(n, "memory_percent", "%") + ")";
  print_key_values(out, {{"Hostname", field(n, "hostname")},
                         {"Status", field(n, "status")},
                         {"URL", field(n, "url")},
                         {"Physical IP", field(n, "physical_ip")},
                         {"Runner ID", field(n, "runner_id")},
                         {"Overlay subnet", field(n, "overlay_subnet")},
                         {"VXLAN device", field(n, "vxlan_device")},
                         {"Total cores", field(n, "total_cores")},
                         {"Cores in use", field(n, "cores_in_use")},
                         {"Available cores", field(n, "available_cores")},
                         {"CPU usage", number_cell(n, "cpu_percent", "%")},
                         {"Memory total", bytes_cell(n.value("memory_total_bytes", json()))},
                         {"Memory used", used},
                         {"Temperature avg", number_cell(n, "current_avg_temp", "C")},
                         {"Temperature max", number_cell(n, "current_max_temp", "C")},
                         {"Last heartbeat", field(n, "last_heartbeat")},
                         {"Registered at", field(n, "registered_at")}});
  if (n.contains("numa_topology") && n["numa_topology"].is_object() &&
      !n["numa_topology"].empty()) {
    Table numa({"NUMA node", "Cores"});
    for (const auto& [id, cores] : n["numa_topology"].items()) numa.add_row({id, cell(cores)});
    out << "\n";
    numa.print(out);
  }
  if (gpu_count(n) > 0) {
    Table gpus({"GPU", "Name", "Memory", "Utilization"});
    size_t i = 0;
    for (const auto& g : n["gpu_info"]) {
      const json& gj = g.is_object() ? g : json::object();
      gpus.add_row({std::to_string(i++), field(gj, "name"),
                    bytes_cell(gj.value("memory_total", json())),
                    number_cell(gj, "utilization", "%")});
    }
    out << "\n";
    gpus.print(out);
  }
}

const json& find_node(const json& nodes, const std::string& hostname) {
  for (const auto& n : nodes)
    if (n.value("hostname", std::string()) == hostname) return n;
  throw CommandError("node '" + hostname + "' not found");
}

}  // namespace

int node_summary(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  json nodes = fetch_nodes(c);
  json s = summary_of(nodes);
  if (inv.json) return print_json(out, s), 0;
  if (nodes.empty()) {
    out << "No nodes found.\n";
    return 0;
  }
  print_summary(out, s);
  return 0;
}

int node_list(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  json nodes = json::array();
  for (const auto& n : fetch_nodes(c))
    if (!inv.status || n.value("status", json()) == *inv.status) nodes.push_back(n);
  if (inv.json) return print_json(out, nodes), 0;
  if (nodes.empty()) {
    out << "No nodes found.\n";
    return 0;
  }
  print_node_table(out, nodes);
  out << "\n" << nodes.size() << " node(s)\n";
  return 0;
}

int node_status(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  json nodes = fetch_nodes(c);
  const json& n = find_node(nodes, inv.args.at(0));
  if (inv.json) return print_json(out, n), 0;
  print_node_detail(out, n);
  return 0;
}

int node_health(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  if (!inv.args.empty()) return node_status(inv, c, out);
  json nodes = fetch_nodes(c);
  json s = summary_of(nodes);
  if (inv.json) return print_json(out, json{{"summary", s}, {"nodes", nodes}}), 0;
  if (nodes.empty()) {
    out << "No nodes found.\n";
    return 0;
  }
  print_summary(out, s);
  out << "\n";
  print_node_table(out, nodes);
  return 0;
}

}  // namespace kohakuctl
