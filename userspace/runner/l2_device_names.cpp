#include "runner/l2_device_names.h"

#include <openssl/evp.h>

#include <stdexcept>

#include "common/hex.h"

namespace kohaku::runner {
namespace {

constexpr size_t kIfNameMax = 15;

std::string sha256_hex(const std::string& data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr) != 1)
    throw std::runtime_error("SHA-256 failed (OpenSSL EVP_Digest)");
  return to_hex(digest, len);
}

}  // namespace

std::string l2_bridge_name(const std::string& network) {
  std::string name = "kbr-" + network;
  if (name.size() <= kIfNameMax) return name;
  return "kb-" + sha256_hex(network).substr(0, 8);
}

std::string l2_vxlan_name(uint32_t vni) {
  return "vxlan" + std::to_string(vni);
}

bool is_l2_bridge_name(const std::string& n) {
  return n.starts_with("kbr-") || (n.starts_with("kb-") && n.size() == 11);
}

}  // namespace kohaku::runner
