#pragma once
// `kohakuctl network ...`: named L2 networks (docs/l2-networks.md).
#include <optional>

namespace kohakuctl {

// When the command is `network ...`, parses the whole command line (global options included)
// and runs it, returning the exit status; nullopt for any other command.
std::optional<int> maybe_run_network_command(int argc, char** argv);

extern const char* const kNetworkUsage;

}  // namespace kohakuctl
