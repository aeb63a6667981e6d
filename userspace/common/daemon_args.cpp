#include "daemon_args.h"

#include <pwd.h>
#include <unistd.h>
#include <CLI/CLI.hpp>

#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <iostream>

#include "common/log.h"

namespace kohaku {

namespace {

// The daemons' command line, defined once for parsing and for the usage text, with the parser
// library kohakuctl uses (CLI11): "--flag value" and "--flag=value", a repeated --config
// refused, one KEY=VALUE per --set.
struct DaemonCommandLine {
  DaemonCommandLine(std::string_view program, std::string_view example_config)
      : app("KohakuRiver-compatible daemon of kohaku-overlay", std::string(program)) {
    const std::string c(example_config);
    app.add_option("--config", path,
                   "read settings from a KohakuRiver-style Python file (" + c + ")")
        ->type_name("PATH");
    app.add_option("--set", overrides,
                   "override one setting after the file; VALUE is a Python literal (string keys "
                   "also take a bare word); repeatable")
        ->type_name("KEY=VALUE")
        ->allow_extra_args(false)
        ->check(CLI::Validator(
            [](std::string& v) -> std::string {
              return v.find('=') == std::string::npos || v.front() == '='
                         ? "'" + v + "' is not KEY=VALUE"
                         : std::string();
            },
            "", "KEY=VALUE"));
    app.footer("Without --config, ~/.kohakuriver/" + c +
               " is read when it exists; else every key has its default. See "
               "docs/configuration.md.");
  }
  CLI::App app;
  std::string path;
  std::vector<std::string> overrides;
};

}  // namespace

std::string daemon_usage(std::string_view program, std::string_view example_config) {
  return DaemonCommandLine(program, example_config).app.help();
}

DaemonArgs parse_daemon_args(const std::vector<std::string>& args, std::string_view program,
                             std::string_view example_config) {
  DaemonArgs out;
  out.config_name = std::string(example_config);
  DaemonCommandLine cl(program, example_config);
  std::vector<std::string> reversed(args.rbegin(), args.rend());  // CLI11 pops from the back
  try {
    cl.app.parse(reversed);
  } catch (const CLI::CallForHelp&) {
    out.help = true;
    return out;
  } catch (const CLI::ParseError& e) {
    throw UsageError(std::string(program) + ": " + e.what(), cl.app.help());
  }
  if (cl.app.count("--config") > 0) {
    if (cl.path.empty())
      throw UsageError(std::string(program) + ": --config needs a path", cl.app.help());
    out.config_path = cl.path;
  }
  out.overrides = cl.overrides;
  return out;
}

DaemonArgs parse_daemon_args(int argc, char** argv, std::string_view example_config) {
  std::string_view program = argc > 0 ? argv[0] : "kohaku-daemon";
  if (auto slash = program.rfind('/'); slash != std::string_view::npos)
    program.remove_prefix(slash + 1);
  std::vector<std::string> args(argv + (argc > 0 ? 1 : 0), argv + argc);
  return parse_daemon_args(args, program, example_config);
}

std::optional<std::string> default_config_path(std::string_view config_name) {
  if (config_name.empty()) return std::nullopt;
  std::string home;
  if (const char* h = std::getenv("HOME"); h != nullptr && *h != '\0') {
    home = h;
  } else if (const passwd* pw = ::getpwuid(::getuid()); pw != nullptr && pw->pw_dir != nullptr) {
    home = pw->pw_dir;  // a service started without HOME
  }
  if (home.empty()) return std::nullopt;
  return home + "/.kohakuriver/" + std::string(config_name);
}

ConfigFile read_daemon_config(ConfigSchema schema, const DaemonArgs& args,
                              std::vector<std::string>* warnings) {
  ConfigFile file(std::move(schema));
  if (args.config_path) {
    log::info("config", "reading " + *args.config_path + " (--config)");
    file.load(*args.config_path);
  } else if (auto path = default_config_path(args.config_name)) {
    // KohakuRiver's own place for the file: an operator's existing config is read as it is.
    std::error_code ec;
    if (std::filesystem::exists(*path, ec)) {
      log::info("config", "reading " + *path + " (no --config given)");
      file.load(*path);
    } else {
      log::info("config", "no --config and no " + *path + ": every key has its default");
    }
  }
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
