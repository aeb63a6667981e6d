#pragma once
// Bytes as lower-case hex digits, two a byte: the one spelling of random secrets and of digests
// in device names.
#include <cstddef>
#include <string>

namespace kohaku {

inline std::string to_hex(const unsigned char* bytes, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string text;
  text.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    text.push_back(kHex[bytes[i] >> 4]);
    text.push_back(kHex[bytes[i] & 15]);
  }
  return text;
}

}  // namespace kohaku
