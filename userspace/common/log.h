#pragma once
// Line-oriented logging to stderr: "2026-11-23T15:22:49.123Z WARN component: message".
// Stateless on purpose (no global logger object): daemons run under a supervisor that owns the
// stream, and one write(2) per line keeps lines whole when threads log at once.
#include <string_view>

namespace kohaku::log {

enum class Level { kDebug, kInfo, kWarn, kError };

void write(Level level, std::string_view component, std::string_view message);
// Whether debug lines are written (KOHAKU_DEBUG set): lets a hot path skip building one.
bool debug_enabled();

inline void debug(std::string_view c, std::string_view m) {
  write(Level::kDebug, c, m);
}
inline void info(std::string_view c, std::string_view m) {
  write(Level::kInfo, c, m);
}
inline void warn(std::string_view c, std::string_view m) {
  write(Level::kWarn, c, m);
}
inline void error(std::string_view c, std::string_view m) {
  write(Level::kError, c, m);
}

}  // namespace kohaku::log
