#include "commands.h"

#include <map>

#include "verbs.h"

namespace kohakuctl {
namespace {

// Canonical command (command_line.cpp names every leaf so) -> what runs it.
const std::map<std::string, Verb*>& verbs() {
  static const std::map<std::string, Verb*> table = {
      {"node overlay", node_overlay},
      {"node summary", node_summary},
      {"node list", node_list},
      {"node status", node_status},
      {"node health", node_health},
      {"node overlay-release", overlay_release},
      {"node overlay-cleanup", overlay_cleanup},
      {"node ip-reserve", ip_reserve},
      {"node ip-release", ip_release},
      {"node ip-list", ip_list},
      {"node ip-info", ip_info},
      {"node ip-available", ip_available},
      {"node ip-stats", ip_stats},
      {"node ip-validate", ip_validate},
      {"network create", network_create},
      {"network delete", network_delete},
      {"network list", network_list},
      {"network show", network_show},
      {"network join", network_join},
      {"network leave", network_leave},
  };
  return table;
}

}  // namespace

int run_command(const Invocation& inv, const kohaku::http::HttpClient& client, std::ostream& out) {
  auto it = verbs().find(inv.command);
  if (it == verbs().end()) throw UsageError("unknown command '" + inv.command + "'");
  try {
    return it->second(inv, client, out);
  } catch (const nlohmann::json::exception& e) {
    // A reply of a shape no command checked for: say so, as kohakuctl's own error, instead of
    // passing the library's exception on.
    throw CommandError(std::string("unexpected reply from the host (") + e.what() + ")");
  } catch (const std::out_of_range& e) {
    // A positional a verb needs and the parser did not demand: a bug here, but a usage error
    // to whoever called run_command with it.
    throw UsageError(inv.command + ": missing argument");
  }
}

}  // namespace kohakuctl
