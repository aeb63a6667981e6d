#include "log.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <string>

#include "common/enum_names.h"

namespace kohaku::log {
namespace {

constexpr EnumName<Level> kLevelNames[] = {{Level::kDebug, "DEBUG"},
                                           {Level::kInfo, "INFO"},
                                           {Level::kWarn, "WARN"},
                                           {Level::kError, "ERROR"}};

}  // namespace

bool debug_enabled() {
  // Read per call: cheap, and keeps the module free of mutable globals.
  const char* v = std::getenv("KOHAKU_DEBUG");
  return v != nullptr && *v != '\0' && *v != '0';
}

void write(Level level, std::string_view component, std::string_view message) {
  if (level == Level::kDebug && !debug_enabled()) return;
  auto now = std::chrono::system_clock::now();
  auto secs = std::chrono::system_clock::to_time_t(now);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(now.time_since_epoch()) % 1000;
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char stamp[64];  // roomy enough that -Wformat-truncation can prove it never truncates
  std::snprintf(stamp, sizeof stamp, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                static_cast<int>(ms.count()));
  std::string line;
  line.reserve(message.size() + component.size() + 48);
  line.append(stamp).append(" ").append(enum_name(kLevelNames, level)).append(" ");
  line.append(component).append(": ").append(message).append("\n");
  (void)!::write(STDERR_FILENO, line.data(), line.size());
}

}  // namespace kohaku::log
