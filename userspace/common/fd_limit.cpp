#include "common/fd_limit.h"

#include <sys/resource.h>

#include <cerrno>
#include <system_error>

#include "common/log.h"

namespace kohaku {

FdLimit raise_fd_limit(uint64_t cap) {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0)
    throw std::system_error(errno, std::generic_category(), "getrlimit(RLIMIT_NOFILE)");
  FdLimit l{rl.rlim_cur, rl.rlim_cur, rl.rlim_max};
  uint64_t want = rl.rlim_max == RLIM_INFINITY || rl.rlim_max > cap ? cap : rl.rlim_max;
  if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < want) {
    rl.rlim_cur = want;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0)
      throw std::system_error(errno, std::generic_category(),
                              "setrlimit(RLIMIT_NOFILE, " + std::to_string(want) + ")");
    l.after = want;
  }
  return l;
}

std::string describe(const FdLimit& l) {
  if (l.after != l.before)
    return "open-file limit raised from " + std::to_string(l.before) + " to " +
           std::to_string(l.after);
  return "open-file limit " + std::to_string(l.after) + " (hard limit " + std::to_string(l.hard) +
         ")";
}

void raise_fd_limit_logged(const std::string& component) {
  try {
    log::info(component, describe(raise_fd_limit()));
  } catch (const std::exception& e) {
    log::warn(component, std::string("open-file limit left as it is: ") + e.what());
  }
}

}  // namespace kohaku
