#include "common/secret.h"

#include <sys/random.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "common/hex.h"

namespace kohaku {

std::string random_hex(size_t n_bytes) {
  unsigned char bytes[64];
  n_bytes = std::min(n_bytes, sizeof bytes);
  size_t got = 0;
  while (got < n_bytes) {
    ssize_t n = ::getrandom(bytes + got, n_bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      throw std::runtime_error(std::string("getrandom failed: ") + std::strerror(errno));
    }
    got += static_cast<size_t>(n);
  }
  return to_hex(bytes, n_bytes);
}

}  // namespace kohaku
