#pragma once
// Protocol limits that the host, the runner, kohakuctl and the config checks all enforce: one
// definition each, so a value one side accepts is never refused by the other.
#include <cstdint>

namespace kohaku::wire {

inline constexpr uint32_t kMaxVni = 16777215;  // VXLAN Network Identifier: 24 bits
inline constexpr uint32_t kMaxPort = 65535;    // UDP/TCP port
// VXLAN encapsulation on IPv4: outer Ethernet 14 + IPv4 20 + UDP 8 + VXLAN 8.
inline constexpr uint32_t kVxlanOverhead = 50;
inline constexpr uint32_t kMinIpv4Mtu = 68;     // RFC 791: every IPv4 link carries 68 bytes
inline constexpr uint32_t kMaxIpv4Mtu = 65535;  // the IPv4 total-length field

}  // namespace kohaku::wire
