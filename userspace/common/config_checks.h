#pragma once
// Value checks both daemons' configs share. Each reads one key of a loaded ConfigFile and
// throws ConfigError "<where>: KEY = <value>: why" when the value is unusable.
#include <cstdint>
#include <string_view>

#include "common/wire/limits.h"
#include "config_file.h"
#include "ipv4.h"

namespace kohaku {

// How forwarding/NAT is done: TC eBPF programs (default) or the kernel's own path.
enum class Datapath { kBpf, kKernel };
std::string_view datapath_name(Datapath datapath);  // "bpf" / "kernel"

int64_t check_int_range(const ConfigFile& file, std::string_view key, int64_t min, int64_t max,
                        std::string_view why = {});
uint16_t check_port(const ConfigFile& file, std::string_view key);
Ipv4Addr check_ipv4(const ConfigFile& file, std::string_view key);
// VXLAN inner MTU: 576 (IPv4 minimum) up to 9000 - 50 bytes of VXLAN encapsulation.
uint32_t check_overlay_mtu(const ConfigFile& file, std::string_view key);
Datapath check_datapath(const ConfigFile& file, std::string_view key);
// Bearer token: empty (auth off) or printable ASCII without spaces.
std::string check_token(const ConfigFile& file, std::string_view key);
// Non-empty absolute path.
std::string check_absolute_path(const ConfigFile& file, std::string_view key);
std::string check_non_empty(const ConfigFile& file, std::string_view key);
// A Linux network interface name: 1..15 characters, none of them '/', ':' or whitespace.
std::string check_interface_name(const ConfigFile& file, std::string_view key);

using wire::kMaxVni;
using wire::kVxlanOverhead;
inline constexpr uint32_t kMinOverlayMtu = 576;
inline constexpr uint32_t kMaxUnderlayMtu = 9000;

}  // namespace kohaku
