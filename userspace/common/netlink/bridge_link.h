#pragma once
// Linux bridges and their ports.
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/netlink/ensure.h"
#include "common/netlink/link.h"

namespace kohaku::netlink {

// mtu 0 leaves the kernel default (the bridge then follows its ports' smallest MTU).
// mac: a fixed address (a bridge without one takes its lowest port's MAC, which changes when a
// port is replaced and so strands the neighbours that use the bridge as their gateway).
void create_bridge(std::string_view name, unsigned mtu = 0, bool up = true,
                   std::optional<MacAddr> mac = std::nullopt);
// Keeps a bridge with that MTU and up; fixes MTU/state in place; recreates a link of another
// kind that holds the name. Logs every repair.
EnsureAction ensure_bridge(std::string_view name, unsigned mtu, bool up = true,
                           std::optional<MacAddr> mac = std::nullopt);
// Enslaves `port` to `bridge` (kept when already there).
EnsureAction ensure_bridge_port(std::string_view bridge, std::string_view port);
std::vector<std::string> bridge_ports(std::string_view bridge);

}  // namespace kohaku::netlink
