#pragma once
// The open-file limit of a daemon. The common soft limit of 1,024 lets about a thousand idle
// connections starve the API of descriptors (accept fails with EMFILE), while the hard limit is
// usually far higher: a daemon serving the network takes what it is allowed, as nginx's
// worker_rlimit_nofile and systemd's LimitNOFILE advice do.
#include <cstdint>
#include <string>

namespace kohaku {

struct FdLimit {
  uint64_t before = 0;  // soft limit at start
  uint64_t after = 0;   // soft limit now
  uint64_t hard = 0;
};

// Raises the soft RLIMIT_NOFILE to the hard limit (capped at `cap`, since some select()-era code
// and per-fd tables scale with it). Never lowers it. Throws std::system_error naming the call.
FdLimit raise_fd_limit(uint64_t cap = 1u << 20);

// "open-file limit raised from 1024 to 524288" / "open-file limit 524288 (hard limit)".
std::string describe(const FdLimit& l);

// What a daemon calls before serving: raise_fd_limit(), the result logged under `component` as
// info, a failure as a warning (the daemon goes on with the limit it has).
void raise_fd_limit_logged(const std::string& component);

}  // namespace kohaku
