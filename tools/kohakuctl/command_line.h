#pragma once
// kohakuctl's command tree, defined once with CLI11: KohakuRiver's `node ...` commands in the
// forms its docs and its CLI accept, their top-level aliases (`ip-reserve` = `node ip-reserve`),
// and `network ...`. Subcommands, short and long options, positionals and `--help` per command
// all come from that one definition.
#include <optional>
#include <string>
#include <vector>

#include "commands.h"

namespace kohakuctl {

struct CommandLine {
  Invocation inv;
  // Set when --help was asked for: the help of the command it was given to (print it, exit 0).
  std::optional<std::string> help;
  bool host_given = false;   // --host was on the command line
  bool token_given = false;  // --token / --api-token before the command
};

// args excludes argv[0]. Throws UsageError (message, and the usage of the command it was meant
// for) for an unknown command or option, a missing or extra argument, a value of the wrong
// type, or contradicting arguments. Connection defaults are not applied here (main does).
CommandLine parse_command_line(const std::vector<std::string>& args);

// The help of the whole tree (`kohakuctl --help`).
std::string top_level_help();

}  // namespace kohakuctl
