#include "daemon_args.h"

#include <csignal>
#include <iostream>

#include "common/log.h"

namespace kohaku {

std::string daemon_usage(std::string_view program, std::string_view example_config) {
  std::string p(program), c(example_config);
  return "usage: " + p + " [--config PATH] [--set KEY=VALUE]... [--help]\n" +
         "  --config PATH     read settings from a KohakuRiver-style Python file (" + c + ")\n" +
         "  --set KEY=VALUE   override one setting after the file; VALUE is a Python literal\n" +
         "                    (string keys also take a bare word); repeatable\n" +
         "  -h, --help        show this help\n" +
         "Without --config every key has its default; see docs/configuration.md.\n";
}

DaemonArgs parse_daemon_args(const std::vector<std::string>& args, std::string_view program,
                             std::string_view example_config) {
  DaemonArgs out;
  auto fail = [&](const std::string& what) -> UsageError {
    return UsageError(std::string(program) + ": " + what, daemon_usage(program, example_config));
  };
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    // Accepts both "--flag value" and "--flag=value".
    auto value_of = [&](std::string_view flag) -> std::optional<std::string> {
      if (arg == flag) {
        if (i + 1 >= args.size()) throw fail(std::string(flag) + " needs a value");
        return args[++i];
      }
      if (arg.size() > flag.size() && arg.starts_with(flag) && arg[flag.size()] == '=')
        return arg.substr(flag.size() + 1);
      return std::nullopt;
    };
    if (arg == "-h" || arg == "--help") {
      out.help = true;
    } else if (auto path = value_of("--config")) {
      if (out.config_path) throw fail("--config given twice");
      if (path->empty()) throw fail("--config needs a path");
      out.config_path = *path;
    } else if (auto set = value_of("--set")) {
      if (set->find('=') == std::string::npos || set->front() == '=')
        throw fail("--set " + *set + ": expected KEY=VALUE");
      out.overrides.push_back(*set);
    } else if (arg.starts_with("-")) {
      throw fail("unknown option " + arg);
    } else {
      throw fail("unexpected argument " + arg);
    }
  }
  return out;
}

DaemonArgs parse_daemon_args(int argc, char** argv, std::string_view example_config) {
  std::string_view program = argc > 0 ? argv[0] : "kohaku-daemon";
  if (auto slash = program.rfind('/'); slash != std::string_view::npos)
    program.remove_prefix(slash + 1);
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  return parse_daemon_args(args, program, example_config);
}

ConfigFile read_daemon_config(ConfigSchema schema, const DaemonArgs& args,
                              std::vector<std::string>* warnings) {
  ConfigFile file(std::move(schema));
  if (args.config_path) file.load(*args.config_path);
  for (const auto& o : args.overrides) file.apply_override(o);
  if (warnings)
    warnings->insert(warnings->end(), file.warnings().begin(), file.warnings().end());
  else
    for (const auto& w : file.warnings()) log::warn("config", w);
  return file;
}

int daemon_main(int argc, char** argv, std::string_view program, std::string_view example_config,
                const std::function<int(const DaemonArgs&)>& run) {
  std::signal(SIGPIPE, SIG_IGN);
  DaemonArgs args;
  try {
    args = parse_daemon_args(argc, argv, example_config);
  } catch (const UsageError& e) {
    std::cerr << e.what() << "\n\n" << e.usage();
    return 2;
  }
  if (args.help) {
    std::cout << daemon_usage(program, example_config);
    return 0;
  }
  return run(args);
}

}  // namespace kohaku
