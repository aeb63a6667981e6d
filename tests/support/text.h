#pragma once
// Text checks the tests share: whether output or an error message holds a piece of text.
#include <string>

namespace kohaku::test_support {

inline bool has(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

}  // namespace kohaku::test_support
