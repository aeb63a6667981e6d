#pragma once
// The rules a named L2 network's name follows, and the VNI kcore derives from it.
#include <cstdint>
#include <string>
#include <string_view>

namespace kohaku {

// djb2 over the bytes: h = 5381; h = h * 33 + byte, 32-bit wrap.
uint32_t djb2(std::string_view bytes);
// kcore's VNI rule: 10000 + djb2(name) % 6000.
uint32_t default_l2_vni(std::string_view name);
// Throws DomainError(kMalformed) unless name matches [A-Za-z0-9_-]{1,64} and is not
// "default".
void validate_l2_network_name(const std::string& name);

}  // namespace kohaku
