#include "command_line.h"

#include <CLI/CLI.hpp>

#include <algorithm>
#include <cstdint>
#include <deque>
#include <map>

namespace kohakuctl {
namespace {

// Typed option targets of one command: CLI11 checks the type while parsing, so `--ttl abc` is a
// usage error before anything is sent.
struct Numbers {
  int64_t ttl = 300;   // KohakuRiver's CLI sends ttl=300 unless told otherwise
  int64_t limit = 20;  // and limit=20 for ip-available (the API's own default is 100)
  int64_t vni = 0;
};

class Tree {
 public:
  Tree();
  CLI::App app{
      "kohakuctl: command-line client for kohaku-hostd (KohakuRiver's `kohakuriver node "
      "...` commands, verbatim)",
      "kohakuctl"};
  // Every leaf command with its canonical name and its number targets.
  std::map<const CLI::App*, std::string> command_of;
  std::map<const CLI::App*, Numbers*> numbers_of;

 private:
  CLI::App* leaf(CLI::App* parent, const std::string& name, const std::string& canonical,
                 const std::string& help);
  void add_node_commands(CLI::App* parent, bool aliases_only);
  void add_network_commands(CLI::App* network);

  std::deque<Numbers> numbers_;
};

CLI::App* Tree::leaf(CLI::App* parent, const std::string& name, const std::string& canonical,
                     const std::string& help) {
  CLI::App* sub = parent->add_subcommand(name, help);
  command_of[sub] = canonical;
  numbers_of[sub] = &numbers_.emplace_back();
  return sub;
}

void add_force(CLI::App* sub) {
  sub->add_flag("-f,--force")->description("do not ask for confirmation");
}

// One definition of every `node` command. With aliases_only, the subset that kohakuctl has
// always had at the top level, registered there as aliases of the `node` commands.
void Tree::add_node_commands(CLI::App* parent, bool aliases_only) {
  auto add = [&](const std::string& name, const std::string& help, bool top_level) -> CLI::App* {
    if (aliases_only && !top_level) return nullptr;
    return leaf(parent, name, "node " + name,
                aliases_only ? "alias of `node " + name + "`: " + help : help);
  };
  CLI::App* c = nullptr;
  if ((c = add("overlay", "overlay status and runner allocations; with HOST, that runner's side",
               false)))
    c->add_option("HOST", "a runner: its subnet, vxlan0/bridge state, containers and IPs");
  add("summary", "cluster summary: nodes online/offline, cores, memory, GPUs", false);
  if ((c = add("list", "registered nodes", false)))
    c->add_option("-s,--status", "only nodes with this status (online/offline)")
        ->type_name("STATUS");
  if ((c = add("status", "one node's details", false)))
    c->add_option("HOST", "the node's hostname")->required();
  if ((c = add("health", "health of all nodes (summary and table), or of one", false)))
    c->add_option("HOST", "the node's hostname");
  if ((c = add("overlay-release", "release a runner's overlay allocation", true))) {
    c->add_option("HOST", "the runner (hostname or runner_<id>)")->required();
    add_force(c);
  }
  if ((c = add("overlay-cleanup", "release every inactive runner's overlay allocation", true)))
    add_force(c);
  if ((c = add("ip-reserve", "reserve a container IP on a runner", true))) {
    c->add_option("HOST", "the runner to reserve on")->required();
    c->add_option("-i,--ip", "this IP (default: the next free one)")->type_name("IP");
    c->add_option("-t,--ttl", numbers_of[c]->ttl, "seconds the reservation lives (60..1800)")
        ->type_name("N")
        ->capture_default_str();
  }
  if ((c = add("ip-release",
               "release a reservation: `ip-release TOKEN` or `ip-release HOST --token T`", true))) {
    c->add_option("TOKEN", "the reservation token; with --token, the runner it is on")->required();
    c->add_option("--token", "the reservation token (then TOKEN names the runner, checked)")
        ->type_name("T");
  }
  if ((c = add("ip-list", "IP reservations, in use or pending", true))) {
    c->add_option("HOST", "only this runner's");
    c->add_option("-r,--runner", "only this runner's")->type_name("HOST");
  }
  if ((c = add("ip-info", "a runner's subnet and IP usage; with --token, that reservation too",
               true))) {
    c->add_option("HOST", "the runner")->required();
    c->add_option("--token", "also show this reservation (on HOST)")->type_name("T");
  }
  if ((c = add("ip-available", "free container IPs per runner", true))) {
    c->add_option("HOST", "only this runner's");
    c->add_option("-r,--runner", "only this runner's")->type_name("HOST");
    c->add_option("-l,--limit", numbers_of[c]->limit, "IPs shown per runner (1..1000)")
        ->type_name("N")
        ->capture_default_str();
  }
  add("ip-stats", "reservation statistics", true);
  if ((c = add("ip-validate", "check a reservation token (exit 1 if not valid)", true))) {
    c->add_option("TOKEN", "the reservation token")->required();
    c->add_option("-r,--runner", "valid only on this runner")->type_name("HOST");
  }
}

void Tree::add_network_commands(CLI::App* network) {
  CLI::App* c = leaf(network, "create", "network create", "create a named L2 network");
  c->add_option("NAME", "network name")->required();
  c->add_option("--subnet", "its IPv4 subnet")->type_name("CIDR")->required();
  c->add_option("--gateway", "gateway address (default: the subnet's first)")->type_name("IP");
  c->add_option("--vni", numbers_of[c]->vni, "VXLAN id (default: derived from the name)")
      ->type_name("N")
      ->check(CLI::NonNegativeNumber);
  c->add_flag("--no-outbound-nat")->description("no masquerade of traffic leaving the network");
  c->add_option("--runners", "initial members, comma-separated")->type_name("r1,r2");
  c = leaf(network, "delete", "network delete", "delete a named network");
  c->add_option("NAME", "network name")->required();
  add_force(c);
  leaf(network, "list", "network list", "named networks");
  c = leaf(network, "show", "network show", "one network: members, Docker blocks, leases");
  c->add_option("NAME", "network name")->required();
  c = leaf(network, "join", "network join", "add a runner to a network");
  c->add_option("NAME", "network name")->required();
  c->add_option("RUNNER", "the runner")->required();
  c = leaf(network, "leave", "network leave", "remove a runner from a network");
  c->add_option("NAME", "network name")->required();
  c->add_option("RUNNER", "the runner")->required();
  add_force(c);
}

Tree::Tree() {
  // Global options are accepted after the command words too (`node overlay --json`).
  app.fallthrough();
  app.require_subcommand(1);
  app.add_option("--host", "host API (default: $KOHAKU_HOST, else http://127.0.0.1:8000)")
      ->type_name("URL");
  app.add_option("--token,--api-token",
                 "API bearer token for mutating calls (default: $KOHAKU_TOKEN, else for a host "
                 "on this machine /var/lib/kohaku/api_token or $KOHAKU_TOKEN_FILE); after "
                 "ip-release/ip-info, --token is the reservation's")
      ->type_name("T");
  app.add_flag("--json")->description("print the API's JSON instead of tables");
  app.footer(
      "Global options (--host, --token, --json) may come before or after the command. Run "
      "`kohakuctl COMMAND --help` for one command. The top-level ip-* and overlay-* "
      "commands are aliases of the `node` ones. See docs/cli.md.");
  CLI::App* node = app.add_subcommand("node", "KohakuRiver's node commands: nodes, overlay, IPs");
  node->require_subcommand(1);
  add_node_commands(node, false);
  add_node_commands(&app, true);
  CLI::App* network = app.add_subcommand("network", "named L2 networks (docs/l2-networks.md)");
  network->require_subcommand(1);
  add_network_commands(network);
}

// The selected leaf below `app`, or nullptr.
const CLI::App* selected_leaf(const CLI::App* app) {
  for (const CLI::App* sub : app->get_subcommands()) {
    const CLI::App* deeper = selected_leaf(sub);
    return deeper != nullptr ? deeper : sub;
  }
  return nullptr;
}

std::optional<std::string> given(const CLI::App* app, const std::string& name) {
  const CLI::Option* o = app->get_option_no_throw(name);
  if (o == nullptr || o->count() == 0) return std::nullopt;
  return o->as<std::string>();
}

// `ip-list HOST --runner OTHER` says two things: refuse rather than pick one.
void merge_runner(Invocation& inv, const std::string& usage) {
  if (inv.args.empty()) return;
  if (inv.runner && *inv.runner != inv.args[0])
    throw UsageError(
        "HOST '" + inv.args[0] + "' and --runner '" + *inv.runner + "' name different runners",
        usage);
  inv.runner = inv.args[0];
}

}  // namespace

CommandLine parse_command_line(const std::vector<std::string>& args) {
  Tree tree;
  CommandLine out;
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 pops from the back
  try {
    tree.app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    out.help = tree.app.help();  // the help of the deepest command given
    return out;
  } catch (const CLI::CallForAllHelp&) {
    out.help = tree.app.help("", CLI::AppFormatMode::All);
    return out;
  } catch (const CLI::ParseError& e) {
    throw UsageError(e.what(), tree.app.help());
  }
  const CLI::App* leaf = selected_leaf(&tree.app);
  if (leaf == nullptr || !tree.command_of.count(leaf))
    throw UsageError("no command given", tree.app.help());
  Invocation& inv = out.inv;
  inv.command = tree.command_of.at(leaf);
  for (const CLI::Option* o : leaf->get_options())
    if (o->get_positional() && o->count() > 0) inv.args.push_back(o->as<std::string>());
  if (auto host = given(&tree.app, "--host")) {
    inv.host = *host;
    out.host_given = true;
  }
  if (auto token = given(&tree.app, "--token")) {
    inv.token = *token;
    out.token_given = true;
  }
  inv.json = given(&tree.app, "--json").has_value();
  inv.force = given(leaf, "--force").has_value();
  inv.no_outbound_nat = given(leaf, "--no-outbound-nat").has_value();
  inv.ip = given(leaf, "--ip");
  inv.runner = given(leaf, "--runner");
  inv.status = given(leaf, "--status");
  inv.reservation_token = given(leaf, "--token");
  inv.subnet = given(leaf, "--subnet");
  inv.gateway = given(leaf, "--gateway");
  inv.runners = given(leaf, "--runners");
  const Numbers& n = *tree.numbers_of.at(leaf);
  if (leaf->get_option_no_throw("--ttl")) inv.ttl = std::to_string(n.ttl);
  if (leaf->get_option_no_throw("--limit")) inv.limit = std::to_string(n.limit);
  if (given(leaf, "--vni")) inv.vni = std::to_string(n.vni);
  const std::string usage = leaf->help();
  if (inv.command == "node ip-list" || inv.command == "node ip-available") merge_runner(inv, usage);
  return out;
}

std::string top_level_help() {
  Tree tree;
  return tree.app.help();
}

}  // namespace kohakuctl
