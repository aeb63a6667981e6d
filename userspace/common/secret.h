#pragma once
// Random secrets (reservation tokens, runner credentials, the API token) as lower-case hex, read
// from the kernel's CSPRNG with getrandom(2).
#include <cstddef>
#include <string>

namespace kohaku {

// 2 * n_bytes hex digits (n_bytes at most 64). Throws std::runtime_error with errno text when
// getrandom fails.
std::string random_hex(size_t n_bytes);

}  // namespace kohaku
