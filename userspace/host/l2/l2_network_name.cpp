#include "host/l2/l2_network_name.h"

#include <cctype>

#include "common/domain_error.h"

namespace kohaku {
namespace {

constexpr size_t kMaxNameLength = 64;

}  // namespace

uint32_t djb2(std::string_view bytes) {
  uint32_t h = 5381;
  for (unsigned char c : bytes) h = h * 33 + c;
  return h;
}

uint32_t default_l2_vni(std::string_view name) {
  return 10000 + djb2(name) % 6000;
}

void validate_l2_network_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength)
    throw DomainError(ErrorKind::kMalformed, "network name must be 1.." +
                                                 std::to_string(kMaxNameLength) +
                                                 " characters, got '" + name + "'");
  for (unsigned char c : name)
    if (!std::isalnum(c) && c != '_' && c != '-')
      throw DomainError(
          ErrorKind::kMalformed,
          "network name may only hold letters, digits, '_' and '-', got '" + name + "'");
  if (name == "default")
    throw DomainError(ErrorKind::kMalformed,
                      "network name 'default' is reserved (the runner's own network)");
}

}  // namespace kohaku
