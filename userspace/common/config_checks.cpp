#include "config_checks.h"

#include <string>

namespace kohaku {

std::string_view datapath_name(Datapath datapath) {
  return datapath == Datapath::kBpf ? "bpf" : "kernel";
}

int64_t check_int_range(const ConfigFile& file, std::string_view key, int64_t min, int64_t max,
                        std::string_view why) {
  int64_t v = file.get_int(key);
  if (v < min || v > max) {
    std::string msg = "must be " + std::to_string(min) + ".." + std::to_string(max);
    if (!why.empty()) msg += " (" + std::string(why) + ")";
    file.fail(key, msg);
  }
  return v;
}

uint16_t check_port(const ConfigFile& file, std::string_view key) {
  return static_cast<uint16_t>(check_int_range(file, key, 1, 65535, "a UDP/TCP port"));
}

Ipv4Addr check_ipv4(const ConfigFile& file, std::string_view key) {
  auto addr = Ipv4Addr::try_parse(file.get_string(key));
  if (!addr) file.fail(key, "not an IPv4 address (expected a.b.c.d)");
  return *addr;
}

uint32_t check_overlay_mtu(const ConfigFile& file, std::string_view key) {
  constexpr int64_t max = kMaxUnderlayMtu - kVxlanOverhead;
  int64_t v = file.get_int(key);
  if (v < kMinOverlayMtu)
    file.fail(key, "must be at least " + std::to_string(kMinOverlayMtu) +
                       " (the smallest MTU IPv4 allows)");
  if (v > max)
    file.fail(key, "must be at most " + std::to_string(max) + ": VXLAN adds " +
                       std::to_string(kVxlanOverhead) +
                       " bytes per packet and the underlay's jumbo frames stop at " +
                       std::to_string(kMaxUnderlayMtu));
  return static_cast<uint32_t>(v);
}

Datapath check_datapath(const ConfigFile& file, std::string_view key) {
  const std::string& v = file.get_string(key);
  if (v == "bpf") return Datapath::kBpf;
  if (v == "kernel") return Datapath::kKernel;
  file.fail(key, "must be 'bpf' (TC eBPF programs) or 'kernel' (kernel forwarding and iptables)");
}

std::string check_token(const ConfigFile& file, std::string_view key) {
  const std::string& v = file.get_string(key);
  for (unsigned char c : v)
    if (c <= 0x20 || c >= 0x7f)
      file.fail(key, "must be printable ASCII without spaces (it is sent as an HTTP header)");
  return v;
}

std::string check_absolute_path(const ConfigFile& file, std::string_view key) {
  const std::string& v = file.get_string(key);
  if (v.empty() || v[0] != '/') file.fail(key, "must be an absolute path");
  return v;
}

std::string check_non_empty(const ConfigFile& file, std::string_view key) {
  const std::string& v = file.get_string(key);
  if (v.empty()) file.fail(key, "must not be empty");
  return v;
}

std::string check_interface_name(const ConfigFile& file, std::string_view key) {
  const std::string& v = file.get_string(key);
  if (v.empty() || v.size() > 15)
    file.fail(key, "must be a network interface name of 1..15 characters (IFNAMSIZ)");
  if (v == "." || v == "..") file.fail(key, "is not a usable interface name");
  for (char ch : v)
    if (ch == '/' || ch == ':' || ch <= ' ' || ch == 0x7f)
      file.fail(key, "must not contain '/', ':', spaces or control characters (interface name)");
  return v;
}

}  // namespace kohaku
