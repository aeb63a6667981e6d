#pragma once
// Wall-clock time as the daemons report it in their status JSON (milliseconds since the epoch).
#include <chrono>
#include <cstdint>

namespace kohaku {

inline int64_t unix_time_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace kohaku
