#include "verbs.h"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <iostream>
#include <map>
#include <stdexcept>
#include <vector>

#include "command_support.h"
#include "common/http_router.h"
#include "common/wire/workload_report.h"
#include "reply_shape.h"
#include "table.h"

namespace kohakuctl {
namespace {

using kohaku::http::ClientResponse;
using kohaku::http::HttpClient;
using kohaku::http::percent_encode;
using kohaku::http::with_query;
using nlohmann::json;

// The non-zero counters of one reason map ("passed" or "dropped") as "name=count ...".
std::string nonzero_reasons(const json& reasons) {
  std::string s;
  if (!reasons.is_object()) return s;
  for (const auto& [name, count] : reasons.items())
    if (count.is_number() && count != 0) s += (s.empty() ? "" : " ") + name + "=" + cell(count);
  return s;
}

// The runner fast path's view of one workload (docs/bpf-runner-fast-path.md), by address:
// which path its packets take and its counters, as the Path/Forwarded/Delivered/Passed/Dropped
// cells of the workload table.
class FastPathCells {
 public:
  explicit FastPathCells(const json& datapath) {
    if (!datapath.contains("fast_path_enabled")) return;  // kernel datapath, or an older runner
    enabled_ = datapath.value("fast_path_enabled", false);
    reported_ = true;
    for (const auto& e : datapath.value("fast_path", json::array()))
      if (e.is_object()) by_ip_[field(e, "ip")] = e;
  }

  std::vector<std::string> cells(const std::string& ip) const {
    if (!reported_) return {"kernel", "-", "-", "-", "-"};
    auto it = by_ip_.find(ip);
    if (it == by_ip_.end())
      return {enabled_ ? "bridge (not served)" : "bridge", "-", "-", "-", "-"};
    const json& e = it->second;
    const json c = e.value("counters", json::object());
    auto sum = [&](std::initializer_list<const char*> names) {
      uint64_t n = 0;
      for (const char* name : names) n += c.value(name, uint64_t{0});
      return std::to_string(n);
    };
    json drops = json::object();
    for (const char* reason : {"spoofed_mac", "spoofed_ip", "denied", "isolated"})
      drops[reason] = c.value(std::string("drop_") + reason, uint64_t{0});
    std::string dropped = nonzero_reasons(drops);
    return {"fast (" + field(e, "veth") + ")", sum({"fwd_fib", "fwd_neigh", "fwd_peer"}),
            sum({"delivered"}), sum({"pass_l2", "pass_local", "pass_kernel"}),
            dropped.empty() ? "0" : dropped};
  }

 private:
  bool reported_ = false;
  bool enabled_ = false;
  std::map<std::string, json> by_ip_;
};

// The named L2 networks a runner applies: the datapath's view (NAT, forward filter on the
// bridge) joined with its Docker network for the same name.
void print_named_networks(std::ostream& out, const json& datapath, const json& docker) {
  if (!datapath.is_array() || datapath.empty()) return;
  Table t({"Named network", "Subnet", "Outbound NAT", "Bridge", "Forward filter", "Docker network",
           "Docker block", "Docker state"});
  for (const auto& n : datapath) {
    std::string filter = "n/a (kernel datapath)";
    if (n.contains("filter_attached"))
      filter = n.value("filter_attached", false) ? "attached" : "missing";
    if (!n.value("bridge_exists", true)) filter = "no bridge";
    json d = json::object();
    for (const auto& candidate : docker)
      if (field(candidate, "network") == field(n, "name")) d = candidate;
    // Without an engine there is no Docker network to speak of.
    if (!d.empty() && field(d, "state") == "no-docker") d = json{{"state", "no Docker engine"}};
    std::string state = d.empty() ? "-" : field(d, "state");
    if (!d.empty() && d.value("error", json()).is_string())
      state += ": " + d["error"].get<std::string>();
    t.add_row({field(n, "name"), field(n, "subnet"), n.value("outbound_nat", true) ? "yes" : "no",
               field(n, "bridge"), filter, d.value("docker_network", std::string("-")),
               d.value("block", json()).is_string() ? field(d, "block") : "-", state});
  }
  out << "\n";
  t.print(out);
}

// Per-runner counters of one BPF stage, booked on the runner the packets came from.
void print_stage_counters(std::ostream& out, const json& counters, const std::string& title,
                          bool with_device) {
  std::vector<std::string> columns{"Runner", "ID"};
  if (with_device) columns.push_back("Device");
  for (const char* c :
       {"Forwarded", "Fwd bytes", "Passed", "Dropped", "Pass reasons", "Drop reasons"})
    columns.push_back(c);
  Table t(columns);
  for (const auto& c : counters.is_array() ? counters : json::array()) {
    std::string pass = nonzero_reasons(c.value("passed", json::object()));
    std::string drop = nonzero_reasons(c.value("dropped", json::object()));
    std::vector<std::string> row{
        c.value("runner_id", 0) == 0 && c.value("runner_name", json()).is_null()
            ? "(none)"
            : field(c, "runner_name"),
        field(c, "runner_id")};
    if (with_device) row.push_back(field(c, "device"));
    for (const std::string& v :
         {field(c, "forwarded_packets"), field(c, "forwarded_bytes"), field(c, "passed_packets"),
          field(c, "dropped_packets"), pass.empty() ? std::string("-") : pass,
          drop.empty() ? std::string("-") : drop})
      row.push_back(v);
    t.add_row(row);
  }
  out << "\n" << title << "\n";
  if (t.empty())
    out << "No counters\n";
  else
    t.print(out);
}

void print_datapath_counters(std::ostream& out, const json& dp) {
  if (dp.value("active", "") != "bpf") return;
  if (dp.contains("express") && dp["express"].is_object())
    print_stage_counters(out, dp["express"].value("counters", json::array()),
                         "Express stage counters on the uplink (by sending runner; (none): "
                         "frames of no runner)",
                         false);
  print_stage_counters(out, dp.value("counters", json::array()),
                       "BPF fast path counters on the tunnels (by ingress runner)", true);
}

// "tc on eth0 (auto: ...)", "off (OVERLAY_EXPRESS = off)".
std::string express_summary(const json& ex) {
  std::string s = field(ex, "active");
  if (ex.value("device", json()).is_string()) s += " on " + field(ex, "device");
  if (ex.value("program_id", json()).is_number() && s != "off")
    s += ", program " + field(ex, "program_id");
  if (ex.value("reason", json()).is_string()) s += " (" + field(ex, "reason") + ")";
  return s;
}

// "10.128.0.1/12": KohakuRiver's host answers host_ip with its prefix; a host that gives the bare
// address has its prefix in host_prefix or, failing that, in the overlay network's.
std::string host_ip_with_prefix(const json& j, const json& stats) {
  std::string ip = field(j, "host_ip");
  if (ip == "-" || ip.find('/') != std::string::npos) return ip;
  if (j.value("host_prefix", json()).is_number()) return ip + "/" + field(j, "host_prefix");
  const std::string network = field(stats, "overlay_network");
  if (auto slash = network.find('/'); slash != std::string::npos) return ip + network.substr(slash);
  return ip;
}

std::string bridge_name(const json& j, const json& stats) {
  if (j.value("bridge_name", json()).is_string()) return field(j, "bridge_name");
  return stats.value("bridge_name", json()).is_string() ? field(stats, "bridge_name") : "-";
}

int overlay_status(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  json j = checked(c.get("/api/overlay/status"));
  expect_reply(j, "GET /api/overlay/status", {{"enabled", JsonKind::kBool}});
  if (j["enabled"] == true)
    expect_reply(j, "GET /api/overlay/status",
                 {{"subnet_config", JsonKind::kString},
                  {"host_ip", JsonKind::kString},
                  {"allocations", JsonKind::kArray},
                  {"stats", JsonKind::kObject}});
  if (inv.json) return print_json(out, j), 0;
  bool enabled = j.value("enabled", false);
  if (!enabled) {
    out << "Overlay network is disabled on the host (OVERLAY_ENABLED = False)\n";
    return 0;
  }
  const json& stats = j.contains("stats") ? j["stats"] : json::object();
  const json& dp = j.contains("datapath") ? j["datapath"] : json::object();
  std::string datapath = field(dp, "active");
  if (dp.contains("requested") && dp["requested"] != dp.value("active", json()))
    datapath += " (requested " + field(dp, "requested") + ")";
  // KohakuRiver's "Overlay Network Status" panel, then this project's settings.
  KeyValues items{
      {"Subnet config", field(j, "subnet_config")},
      {"Host IP", host_ip_with_prefix(j, stats)},
      {"Bridge", bridge_name(j, stats)},
      {"Total allocations", field(stats, "total_allocations")},
      {"Active", field(stats, "active_allocations")},
      {"Inactive", field(stats, "inactive_allocations")},
      {"Available IDs", field(stats, "available_ids") + "/" + field(stats, "max_runners")},
      {"Overlay network", field(stats, "overlay_network")},
      {"VXLAN id base", field(stats, "base_vxlan_id")},
      {"VXLAN port", field(stats, "vxlan_port")},
      {"MTU", field(stats, "mtu")}};
  // Hosts from before the datapath integration do not report one.
  if (!dp.empty()) items.insert(items.begin(), {"Datapath", datapath});
  if (dp.contains("express") && dp["express"].is_object())
    items.insert(items.begin() + 1, {"Express stage", express_summary(dp["express"])});
  print_key_values(out, items);
  out << "\n";
  // KohakuRiver's "Runner Allocations" columns, then the tunnel device and last heartbeat.
  Table t({"Runner", "ID", "Subnet", "Gateway", "Physical IP", "Status", "Device", "Last used"});
  for (const auto& a : j.value("allocations", json::array()))
    t.add_row({field(a, "runner_name"), field(a, "runner_id"), field(a, "subnet"),
               field(a, "gateway"), field(a, "physical_ip"),
               a.value("is_active", json()) == true ? "Active" : "Inactive",
               field(a, "vxlan_device"), field(a, "last_used")});
  if (t.empty()) {
    out << "No overlay allocations\n";
  } else {
    out << "Runner Allocations\n";
    t.print(out);
  }
  // Registered while every id was held by an active runner: on their default network for now.
  const json without = j.value("without_overlay", json::array());
  if (without.is_array() && !without.empty()) {
    out << "\nRunners without an overlay allocation (on their default network until an id is "
           "free)\n";
    Table w({"Runner", "Physical IP", "Reason"});
    for (const auto& n : without)
      w.add_row({field(n, "hostname"), field(n, "physical_ip"), field(n, "reason")});
    w.print(out);
  }
  if (dp.contains("reason")) out << "\nDatapath fallback: " << field(dp, "reason") << "\n";
  if (dp.contains("error")) out << "\nDatapath error: " << field(dp, "error") << "\n";
  print_datapath_counters(out, dp);
  return 0;
}

// The runner's attached workloads, in the runner's own message (common/wire/workload_report.h).
std::vector<kohaku::wire::WorkloadReport> workload_reports(const json& runner,
                                                           const std::string& hostname) {
  try {
    return kohaku::wire::workload_reports_from_json(runner.value("workloads", json::array()));
  } catch (const std::invalid_argument& e) {
    throw CommandError("unexpected reply to GET /api/nodes/" + hostname + "/overlay: " + e.what());
  }
}

// One runner's side, fetched by the host from the runner: what it built and who is attached.
int overlay_runner(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  const std::string& hostname = inv.args[0];
  json j = checked(c.get("/api/nodes/" + percent_encode(hostname) + "/overlay"));
  if (inv.json) return print_json(out, j), 0;
  const json& r = j.contains("runner") ? j["runner"] : json::object();
  const json& vx = r.contains("vxlan") ? r["vxlan"] : json::object();
  const json& br = r.contains("bridge") ? r["bridge"] : json::object();
  auto device_state = [](const json& d) -> std::string {
    if (!d.value("exists", false)) return "missing";
    std::string s = d.value("up", false) ? "up" : "down";
    if (d.contains("drift") && d["drift"].is_array() && !d["drift"].empty())
      s += ", drift: " + d["drift"].dump();
    return s;
  };
  // The runner reports its datapath as a name or, with the BPF NAT, as an object.
  const json no_object = json::object();
  const json& dp = r.contains("datapath") && r["datapath"].is_object() ? r["datapath"] : no_object;
  std::string datapath = dp.empty() ? field(r, "datapath") : field(dp, "active");
  if (!dp.empty() && dp.value("requested", json()) != dp.value("active", json()))
    datapath += " (requested " + field(dp, "requested") + ")";
  if (dp.contains("uplink") && dp["uplink"].is_object())
    datapath += ", uplink " + field(dp["uplink"], "device") + " " + field(dp["uplink"], "address");
  if (dp.contains("conntrack") && dp["conntrack"].is_object())
    datapath +=
        ", conntrack " + field(dp["conntrack"], "entries") + "/" + field(dp["conntrack"], "max");
  KeyValues items{{"Runner", hostname + " (id " + field(r, "runner_id") + ")"},
                  {"State", field(r, "state") + (r.value("reason", json()).is_string()
                                                     ? " (" + r["reason"].get<std::string>() + ")"
                                                     : "")},
                  {"Subnet", field(r, "subnet")},
                  {"Gateway", field(r, "gateway")},
                  {"Host on subnet", field(r, "host_ip_on_runner_subnet")},
                  {"Physical IP", field(r, "physical_ip")},
                  {"Datapath", datapath},
                  {"VXLAN " + vx.value("name", std::string("vxlan0")),
                   device_state(vx) + ", VNI " + field(vx, "vni") + ", local " +
                       field(vx, "local") + ", remote " + field(vx, "remote") + ", port " +
                       field(vx, "port") + ", MTU " + field(vx, "mtu")},
                  {"Bridge " + br.value("name", std::string("kohaku-overlay")),
                   device_state(br) + ", MTU " + field(br, "mtu")}};
  print_key_values(out, items);
  out << "\n";
  Table t({"Container / workload", "ID", "IP", "Kind", "Path", "Forwarded", "Delivered", "Passed",
           "Dropped"});
  const FastPathCells fast(dp);
  auto add = [&](const std::string& name, const std::string& id, const std::string& ip,
                 const std::string& kind) {
    std::vector<std::string> row{name, id, ip, kind};
    for (auto& c : fast.cells(ip)) row.push_back(std::move(c));
    t.add_row(row);
  };
  for (const auto& w : workload_reports(r, hostname))
    add(w.name, w.id, w.ip.to_string(), "workload");
  const json& docker = r.contains("docker") ? r["docker"] : json::object();
  for (const auto& ctr : docker.value("containers", json::array()))
    add(field(ctr, "name"), field(ctr, "id"), field(ctr, "ip"), "docker");
  const json docker_named = docker.value("named_networks", json::array());
  for (const auto& n : docker_named)
    for (const auto& ctr : n.value("containers", json::array()))
      add(field(ctr, "name"), field(ctr, "id"), field(ctr, "ip"),
          "docker (" + field(n, "network") + ")");
  if (t.empty())
    out << "No containers or workloads attached\n";
  else
    t.print(out);
  print_named_networks(out, dp.value("named_networks", json::array()), docker_named);
  if (dp.contains("reason")) out << "\nDatapath fallback: " << field(dp, "reason") << "\n";
  if (dp.contains("counters") && dp["counters"].is_object()) {
    // Non-zero counters only: the full set is in --json.
    Table counters({"Masquerade / filter counter", "Value"});
    for (const auto& [name, value] : dp["counters"].items())
      if (!(value.is_number() && value.get<double>() == 0)) counters.add_row({name, value.dump()});
    out << "\n";
    if (counters.empty())
      out << "No masquerade or filter activity yet\n";
    else
      counters.print(out);
  }
  if (dp.contains("deny_rules") && dp["deny_rules"].is_array() && !dp["deny_rules"].empty()) {
    Table rules({"Deny rule", "Hits"});
    for (const auto& rule : dp["deny_rules"])
      rules.add_row({field(rule, "rule"), field(rule, "hits")});
    out << "\n";
    rules.print(out);
  }
  return 0;
}

}  // namespace

int node_overlay(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  return inv.args.empty() ? overlay_status(inv, c, out) : overlay_runner(inv, c, out);
}

int overlay_release(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  const std::string& runner = inv.args[0];
  confirm(inv, "release the overlay allocation of runner '" + runner + "'");
  json j = checked(c.post("/api/overlay/release/" + percent_encode(runner)));
  if (inv.json) return print_json(out, j), 0;
  if (j.value("released", false)) {
    out << "Released overlay allocation of " << field(j, "runner_name") << "\n";
    return 0;
  }
  out << "Not released: " << field(j, "reason") << "\n";
  return 1;
}

int overlay_cleanup(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  confirm(inv, "release every inactive runner's overlay allocation");
  json j = checked(c.post("/api/overlay/cleanup"));
  expect_reply(j, "POST /api/overlay/cleanup", {{"cleaned_count", JsonKind::kNumber}});
  if (inv.json) return print_json(out, j), 0;
  out << "Cleaned up " << field(j, "cleaned_count") << " inactive allocation(s)\n";
  return 0;
}

}  // namespace kohakuctl
