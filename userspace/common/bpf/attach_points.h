#pragma once
// Where every loader pins (sub-folders of the pin root, /sys/fs/bpf/kohaku by default) and the TC
// filter identity every program attaches with, in one table: no two loaders can collide, and an
// operator reading `tc filter show` or `ls /sys/fs/bpf/kohaku` finds each name here.
#include <string>
#include <string_view>

#include "common/bpf/tc_filter.h"

namespace kohaku {

namespace pin_dirs {
inline constexpr std::string_view kHost = "host";      // host_forward and host_express
inline constexpr std::string_view kRunner = "runner";  // NAT egress/ingress and forward filter
inline constexpr std::string_view kL2 = "l2";          // the L2 gateway guard
}  // namespace pin_dirs

inline std::string pin_dir_below(const std::string& pin_root, std::string_view sub) {
  return pin_root + "/" + std::string(sub);
}

inline constexpr TcFilterId kHostForwardTcFilter{0x4b48, 1};   // "KH", ingress of vxkr*
inline constexpr TcFilterId kHostExpressTcFilter{0x4b45, 1};   // "KE", ingress of the uplink
inline constexpr TcFilterId kRunnerTcFilter{0x6b72, 0x6b72};   // "kr", uplink and bridge
inline constexpr TcFilterId kL2GuardTcFilter{0x6c32, 0x6c32};  // "l2", egress of vxlan<VNI>

// The TC blocks every vxkr tunnel's clsact is bound to (`tc filter show block 19272`): one
// host_forward filter serves all tunnels, and creating the 4,000th tunnel's qdisc costs what the
// first did (tc_filter.h says why). Egress is shared too, empty, only so that it is not private.
inline constexpr TcBlocks kHostTunnelTcBlocks{0x4b48, 0x4b49};  // 19272 and 19273

}  // namespace kohaku
