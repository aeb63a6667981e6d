#include "network_commands.h"

#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "common/http_client.h"
#include "common/http_router.h"
#include "connection_defaults.h"
#include "table.h"

namespace kohakuctl {

const char* const kNetworkUsage =
    "  network create NAME --subnet CIDR [--gateway IP] [--vni N] [--no-outbound-nat]\n"
    "                 [--runners r1,r2]\n"
    "  network delete NAME [-f]\n"
    "  network list\n"
    "  network show NAME\n"
    "  network join NAME RUNNER\n"
    "  network leave NAME RUNNER [-f]\n";

namespace {

using kohaku::http::ClientResponse;
using kohaku::http::HttpClient;
using kohaku::http::percent_encode;
using nlohmann::json;

struct Usage : std::runtime_error {
  using std::runtime_error::runtime_error;
};
struct Failure : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct NetworkArgs {
  std::string host, token;
  bool json = false, force = false, no_nat = false;
  std::vector<std::string> words;  // after "network"
  std::map<std::string, std::string> options;
};

NetworkArgs parse(int argc, char** argv) {
  NetworkArgs a;
  a.host = default_host();
  bool seen_network = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i], value;
    bool inline_value = false;
    if (arg.starts_with("--") && arg.find('=') != std::string::npos) {
      value = arg.substr(arg.find('=') + 1);
      arg = arg.substr(0, arg.find('='));
      inline_value = true;
    }
    auto take = [&]() -> std::string {
      if (inline_value) return value;
      if (i + 1 >= argc) throw Usage(arg + " needs a value");
      return argv[++i];
    };
    if (arg == "--host") {
      a.host = take();
    } else if (arg == "--token") {
      a.token = take();
    } else if (arg == "--json") {
      a.json = true;
    } else if (arg == "-f" || arg == "--force") {
      a.force = true;
    } else if (arg == "--no-outbound-nat") {
      a.no_nat = true;
    } else if (arg == "--subnet" || arg == "--gateway" || arg == "--vni" || arg == "--runners") {
      a.options[arg] = take();
    } else if (arg.size() > 1 && arg[0] == '-') {
      throw Usage("unknown option " + arg);
    } else if (!seen_network) {
      seen_network = true;  // the word "network" itself
    } else {
      a.words.push_back(arg);
    }
  }
  if (a.token.empty()) a.token = default_token(a.host);
  return a;
}

json checked(const ClientResponse& res) {
  if (!res.ok()) throw Failure(res.error_message() + " (HTTP " + std::to_string(res.status) + ")");
  return res.json();
}

void need(const NetworkArgs& a, size_t words, const char* synopsis,
          std::initializer_list<const char*> allowed = {}) {
  if (a.words.size() != words) throw Usage(std::string("usage: kohakuctl network ") + synopsis);
  for (const auto& [opt, _] : a.options) {
    bool ok = false;
    for (const char* x : allowed) ok = ok || opt == x;
    if (!ok) throw Usage(opt + " does not apply here; usage: kohakuctl network " + synopsis);
  }
  if (a.no_nat && a.words[0] != "create")
    throw Usage(std::string("--no-outbound-nat does not apply here; usage: kohakuctl network ") +
                synopsis);
}

std::string members_cell(const json& n) {
  std::string s;
  for (const auto& m : n.value("members", json::array()))
    s += (s.empty() ? "" : ",") + m.value("runner", std::string("?"));
  return s.empty() ? "-" : s;
}

int run(const NetworkArgs& a, const HttpClient& client, std::ostream& out) {
  if (a.words.empty()) throw Usage("usage: kohakuctl network create|delete|list|show|join|leave");
  const std::string& verb = a.words[0];
  auto path = [](const std::string& name) { return "/api/networks/" + percent_encode(name); };
  json j;
  if (verb == "create") {
    const char* syn =
        "create NAME --subnet CIDR [--gateway IP] [--vni N] [--no-outbound-nat] "
        "[--runners r1,r2]";
    need(a, 2, syn, {"--subnet", "--gateway", "--vni", "--runners"});
    if (!a.options.count("--subnet")) throw Usage(std::string("usage: kohakuctl network ") + syn);
    json body = {{"name", a.words[1]}, {"subnet", a.options.at("--subnet")}};
    if (a.options.count("--gateway")) body["gateway"] = a.options.at("--gateway");
    if (a.options.count("--vni")) {
      const std::string& v = a.options.at("--vni");
      char* end = nullptr;
      long n = std::strtol(v.c_str(), &end, 10);
      if (v.empty() || *end != '\0' || n < 0)
        throw Usage("--vni must be a number, got '" + v + "'");
      body["vni"] = n;
    }
    if (a.no_nat) body["outbound_nat"] = false;
    if (a.options.count("--runners")) {
      json runners = json::array();
      std::stringstream ss(a.options.at("--runners"));
      for (std::string r; std::getline(ss, r, ',');)
        if (!r.empty()) runners.push_back(r);
      body["runners"] = runners;
    }
    j = checked(client.post("/api/networks", body));
    if (!a.json)
      out << "Network '" << a.words[1] << "' " << (j.value("created", false) ? "created" : "exists")
          << ": subnet " << field(j, "subnet") << ", gateway " << field(j, "gateway") << ", VNI "
          << field(j, "vni") << ", outbound NAT " << field(j, "outbound_nat") << ", members "
          << members_cell(j) << "\n";
  } else if (verb == "delete") {
    need(a, 2, "delete NAME [-f]");
    j = checked(client.del(path(a.words[1]) + (a.force ? "?force=true" : "")));
    if (!a.json) out << "Network '" << a.words[1] << "' deleted\n";
  } else if (verb == "list") {
    need(a, 1, "list");
    j = checked(client.get("/api/networks"));
    if (!a.json) {
      Table t({"NAME", "SUBNET", "GATEWAY", "VNI", "OUTBOUND NAT", "MEMBERS", "ALLOCATED"});
      for (const auto& n : j.value("networks", json::array()))
        t.add_row({field(n, "name"), field(n, "subnet"), field(n, "gateway"), field(n, "vni"),
                   field(n, "outbound_nat"), members_cell(n), field(n, "allocated")});
      if (t.empty())
        out << "No L2 networks.\n";
      else
        t.print(out);
    }
  } else if (verb == "show") {
    need(a, 2, "show NAME");
    j = checked(client.get(path(a.words[1])));
    if (!a.json) {
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
    }
  } else if (verb == "join") {
    need(a, 3, "join NAME RUNNER");
    j = checked(client.post(path(a.words[1]) + "/members/" + percent_encode(a.words[2])));
    if (!a.json)
      out << "Runner '" << a.words[2] << "' "
          << (j.value("joined", false) ? "joined" : "is already a member of") << " network '"
          << a.words[1] << "'\n";
  } else if (verb == "leave") {
    need(a, 3, "leave NAME RUNNER [-f]");
    j = checked(client.del(path(a.words[1]) + "/members/" + percent_encode(a.words[2]) +
                           (a.force ? "?force=true" : "")));
    if (!a.json)
      out << "Runner '" << a.words[2] << "' "
          << (j.value("left", false) ? "left" : "was not a member of") << " network '" << a.words[1]
          << "'\n";
  } else {
    throw Usage("unknown network command '" + verb + "'");
  }
  if (a.json) out << j.dump(2) << "\n";
  return 0;
}

}  // namespace

std::optional<int> maybe_run_network_command(int argc, char** argv) {
  // The first word that is neither an option nor an option's value names the command.
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--host" || arg == "--token" || arg == "--ip" || arg == "--ttl" ||
        arg == "--runner" || arg == "--limit" || arg == "--subnet" || arg == "--gateway" ||
        arg == "--vni" || arg == "--runners") {
      ++i;
      continue;
    }
    if (arg.starts_with("-")) continue;
    if (arg != "network") return std::nullopt;
    break;
  }
  bool is_network = false;
  for (int i = 1; i < argc && !is_network; ++i) is_network = std::string(argv[i]) == "network";
  if (!is_network) return std::nullopt;
  try {
    NetworkArgs a = parse(argc, argv);
    kohaku::http::ClientOptions options;
    options.bearer_token = a.token;
    HttpClient client(a.host, options);
    return run(a, client, std::cout);
  } catch (const Usage& e) {
    std::cerr << "kohakuctl: " << e.what() << "\n\nnetwork commands:\n" << kNetworkUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "kohakuctl: error: " << e.what() << "\n";
    return 1;
  }
}

}  // namespace kohakuctl
