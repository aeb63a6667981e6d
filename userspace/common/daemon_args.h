#pragma once
// Command line shared by kohaku-hostd and kohaku-runnerd:
//   --config PATH | --config=PATH      the Python-style config file (at most once); without it
//                                      ~/.kohakuriver/<host|runner>_config.py when that exists
//   --set KEY=VALUE | --set=KEY=VALUE  an override, applied after the file, in order
//   -h | --help                        usage
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/config_file.h"

namespace kohaku {

// A bad command line. what() says what is wrong; usage() is the text to print after it.
class UsageError : public std::runtime_error {
 public:
  UsageError(const std::string& what, std::string usage)
      : std::runtime_error(what), usage_(std::move(usage)) {}
  const std::string& usage() const { return usage_; }

 private:
  std::string usage_;
};

struct DaemonArgs {
  std::optional<std::string> config_path;
  std::vector<std::string> overrides;  // "KEY=VALUE", command-line order
  bool help = false;
  // The file looked for in ~/.kohakuriver/ without --config ("host_config.py"); empty: none.
  std::string config_name;
};

// $HOME/.kohakuriver/<config_name> (HOME from the environment, else the user's home directory);
// nullopt without a name or a home.
std::optional<std::string> default_config_path(std::string_view config_name);

// program: e.g. "kohaku-hostd"; example_config: e.g. "host_config.py" (shown in the usage).
std::string daemon_usage(std::string_view program, std::string_view example_config);

// args excludes argv[0]. Throws UsageError for unknown flags, missing values, stray arguments,
// a repeated --config, or a --set without '='.
DaemonArgs parse_daemon_args(const std::vector<std::string>& args, std::string_view program,
                             std::string_view example_config);
DaemonArgs parse_daemon_args(int argc, char** argv, std::string_view example_config);

// The --config file (else ~/.kohakuriver/<config_name> when it exists; the log says which file
// was read), then every --set, in the schema's types. Warnings (unknown keys)
// go to `warnings` when given, else to the log. Throws ConfigError with file:line.
ConfigFile read_daemon_config(ConfigSchema schema, const DaemonArgs& args,
                              std::vector<std::string>* warnings);

// The whole main() of a daemon: ignores SIGPIPE (a client that disconnects mid-reply must not
// kill it), parses the arguments (usage error: message + usage on stderr, exit 2; --help: usage
// on stdout, exit 0) and returns run(args).
int daemon_main(int argc, char** argv, std::string_view program, std::string_view example_config,
                const std::function<int(const DaemonArgs&)>& run);

}  // namespace kohaku
