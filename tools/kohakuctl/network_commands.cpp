#include "verbs.h"

#include <sstream>
#include <string>

#include "command_support.h"
#include "common/http_router.h"
#include "table.h"

namespace kohakuctl {
namespace {

using kohaku::http::HttpClient;
using kohaku::http::percent_encode;
using nlohmann::json;

std::string network_path(const std::string& name) {
  return "/api/networks/" + percent_encode(name);
}

std::string members_cell(const json& n) {
  std::string s;
  for (const auto& m : n.value("members", json::array()))
    s += (s.empty() ? "" : ",") + m.value("runner", std::string("?"));
  return s.empty() ? "-" : s;
}

}  // namespace

int network_create(const Invocation& inv, const HttpClient& client, std::ostream& out) {
  const std::string& name = inv.args.at(0);
  json body = {{"name", name}, {"subnet", inv.subnet.value()}};
  if (inv.gateway) body["gateway"] = *inv.gateway;
  if (inv.vni) body["vni"] = std::stoll(*inv.vni);  // checked as a number by the parser
  if (inv.no_outbound_nat) body["outbound_nat"] = false;
  if (inv.runners) {
    json runners = json::array();
    std::stringstream ss(*inv.runners);
    for (std::string r; std::getline(ss, r, ',');)
      if (!r.empty()) runners.push_back(r);
    body["runners"] = runners;
  }
  json j = checked(client.post("/api/networks", body));
  if (inv.json) return print_json(out, j), 0;
  out << "Network '" << name << "' " << (j.value("created", false) ? "created" : "exists")
      << ": subnet " << field(j, "subnet") << ", gateway " << field(j, "gateway") << ", VNI "
      << field(j, "vni") << ", outbound NAT " << field(j, "outbound_nat") << ", members "
      << members_cell(j) << "\n";
  return 0;
}

int network_delete(const Invocation& inv, const HttpClient& client, std::ostream& out) {
  const std::string& name = inv.args.at(0);
  json j = checked(client.del(network_path(name) + (inv.force ? "?force=true" : "")));
  if (inv.json) return print_json(out, j), 0;
  out << "Network '" << name << "' deleted\n";
  return 0;
}

int network_list(const Invocation& inv, const HttpClient& client, std::ostream& out) {
  json j = checked(client.get("/api/networks"));
  if (inv.json) return print_json(out, j), 0;
  Table t({"NAME", "SUBNET", "GATEWAY", "VNI", "OUTBOUND NAT", "MEMBERS", "ALLOCATED"});
  for (const auto& n : j.value("networks", json::array()))
    t.add_row({field(n, "name"), field(n, "subnet"), field(n, "gateway"), field(n, "vni"),
               field(n, "outbound_nat"), members_cell(n), field(n, "allocated")});
  if (t.empty())
    out << "No L2 networks.\n";
  else
    t.print(out);
  return 0;
}

int network_show(const Invocation& inv, const HttpClient& client, std::ostream& out) {
  json j = checked(client.get(network_path(inv.args.at(0))));
  if (inv.json) return print_json(out, j), 0;
  print_key_values(out, {{"Name", field(j, "name")},
                         {"Subnet", field(j, "subnet")},
                         {"Gateway", field(j, "gateway")},
                         {"VNI", field(j, "vni")},
                         {"VXLAN device", field(j, "vxlan_device")},
                         {"MTU", field(j, "mtu")},
                         {"Outbound NAT", field(j, "outbound_nat")},
                         {"Allocated", field(j, "allocated")},
                         {"Quarantined", field(j, "quarantined")}});
  out << "\n";
  Table m({"MEMBER", "PHYSICAL IP", "REGISTERED"});
  for (const auto& r : j.value("members", json::array()))
    m.add_row({field(r, "runner"), field(r, "physical_ip"), field(r, "registered")});
  if (m.empty())
    out << "No members.\n";
  else
    m.print(out);
  // Each member's Docker address block (docker run --network kohaku-NAME picks from it).
  Table b({"DOCKER BLOCK", "RUNNER"});
  for (const auto& r : j.value("blocks", json::array()))
    b.add_row({field(r, "cidr"), field(r, "runner")});
  if (!b.empty()) {
    out << "\n";
    b.print(out);
  }
  Table l({"IP", "CONTAINER", "RUNNER"});
  for (const auto& r : j.value("leases", json::array()))
    l.add_row({field(r, "ip"), field(r, "container_id"), field(r, "runner")});
  if (!l.empty()) {
    out << "\n";
    l.print(out);
  }
  return 0;
}

int network_join(const Invocation& inv, const HttpClient& client, std::ostream& out) {
  const std::string &name = inv.args.at(0), &runner = inv.args.at(1);
  json j = checked(client.post(network_path(name) + "/members/" + percent_encode(runner)));
  if (inv.json) return print_json(out, j), 0;
  out << "Runner '" << runner << "' "
      << (j.value("joined", false) ? "joined" : "is already a member of") << " network '" << name
      << "'\n";
  return 0;
}

int network_leave(const Invocation& inv, const HttpClient& client, std::ostream& out) {
  const std::string &name = inv.args.at(0), &runner = inv.args.at(1);
  json j = checked(client.del(network_path(name) + "/members/" + percent_encode(runner) +
                              (inv.force ? "?force=true" : "")));
  if (inv.json) return print_json(out, j), 0;
  out << "Runner '" << runner << "' " << (j.value("left", false) ? "left" : "was not a member of")
      << " network '" << name << "'\n";
  return 0;
}

}  // namespace kohakuctl
