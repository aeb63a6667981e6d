#pragma once
// A fresh directory per test, removed afterwards, so config tests parse real files, and the
// daemons' config files loaded from text.
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/config_file.h"
#include "common/daemon_args.h"
#include "host/host_config.h"
#include "runner/runner_config.h"
#include "support/temp_dir.h"

namespace kohaku::test_support {

class ConfigTestDir {
 public:
  // Writes `text` to `name` inside the directory and returns its path.
  std::string write(const std::string& name, const std::string& text) const {
    auto p = dir_.path() / name;
    std::ofstream out(p, std::ios::binary);
    out << text;
    if (!out.flush()) throw std::runtime_error("cannot write " + p.string());
    return p.string();
  }

 private:
  TempDir dir_{"kohaku-config"};
};

// A daemon config loaded from text, or the error it gave; messages carry the bare file name
// instead of the temp path so tests can compare them literally.
template <class Config>
struct LoadedConfig {
  std::optional<Config> config;
  std::string error;
  std::vector<std::string> warnings;
};

// Writes `text` as `name` in a fresh directory and loads it (plus `overrides`) with `loader`
// (load_host_config or load_runner_config).
template <class Config, class Loader>
LoadedConfig<Config> load_config_text(const std::string& name, const std::string& text,
                                      std::vector<std::string> overrides, Loader loader) {
  ConfigTestDir dir;
  DaemonArgs args;
  args.config_path = dir.write(name, text);
  args.overrides = std::move(overrides);
  auto shorten = [&](std::string msg) {
    for (size_t at; (at = msg.find(*args.config_path)) != std::string::npos;)
      msg.replace(at, args.config_path->size(), name);
    return msg;
  };
  LoadedConfig<Config> out;
  try {
    out.config = loader(args, &out.warnings);
  } catch (const ConfigError& e) {
    out.error = shorten(e.what());
  }
  for (auto& w : out.warnings) w = shorten(w);
  return out;
}

// host_config.py / runner_config.py text loaded (plus overrides) as the daemon loads its file.
inline LoadedConfig<HostConfig> load_host(const std::string& text,
                                          std::vector<std::string> overrides = {}) {
  return load_config_text<HostConfig>("host_config.py", text, std::move(overrides),
                                      load_host_config);
}
inline LoadedConfig<RunnerConfig> load_runner(const std::string& text,
                                              std::vector<std::string> overrides = {}) {
  return load_config_text<RunnerConfig>("runner_config.py", text, std::move(overrides),
                                        load_runner_config);
}

// The ```python block that follows `heading` in docs/configuration.md, so the documented
// examples are known to load.
inline std::string documented_example(const std::string& heading) {
  // Not __FILE__: with the build directory inside the tree it is relative to the build dir.
  auto doc = std::filesystem::path(KOHAKU_SOURCE_DIR) / "docs/configuration.md";
  std::ifstream in(doc);
  if (!in) throw std::runtime_error("cannot open " + doc.string());
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  auto at = s.find(heading);
  if (at == std::string::npos) throw std::runtime_error("no '" + heading + "' in " + doc.string());
  auto begin = s.find("```python\n", at);
  auto end = s.find("```", begin + 10);
  if (begin == std::string::npos || end == std::string::npos)
    throw std::runtime_error("no python block after '" + heading + "'");
  return s.substr(begin + 10, end - begin - 10);
}

}  // namespace kohaku::test_support
