// Fuzz target: the KohakuRiver-style config file parser and both daemons' validation on top.
// Any text is either a config (then it validates or fails with ConfigError) or a ConfigError:
// never another exception, a crash or a hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "common/config_file.h"
#include "host/host_config.h"
#include "runner/runner_config.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  try {
    kohaku::ConfigFile file(kohaku::host_config_schema());
    file.parse(text, "host_config.py");
    (void)kohaku::host_config_from(file);
  } catch (const kohaku::ConfigError&) {
  }
  try {
    kohaku::ConfigFile file(kohaku::runner_config_schema());
    file.parse(text, "runner_config.py");
    (void)kohaku::runner_config_from(file);
  } catch (const kohaku::ConfigError&) {
  }
  return 0;
}
