#pragma once
// Bridge FDB entries of a VXLAN device that say where to send flooded frames: the all-zero MAC
// with a remote destination (`bridge fdb append 00:00:00:00:00:00 dev vxlanN dst PEER`). One
// entry per peer makes the device replicate broadcast, unknown-unicast and multicast frames to
// every peer itself (head-end replication), so no multicast underlay is needed.
#include <set>
#include <string_view>
#include <vector>

#include "common/ipv4.h"

namespace kohaku::netlink {

// Destinations of the device's all-zero-MAC entries, sorted. Throws when `dev` is missing.
std::vector<Ipv4Addr> list_flood_destinations(std::string_view dev);
// Adds (NLM_F_APPEND, permanent) an entry; an existing one is kept.
void add_flood_destination(std::string_view dev, Ipv4Addr dst);
// Removes an entry; false when there was none.
bool delete_flood_destination(std::string_view dev, Ipv4Addr dst);

struct FloodDestinationChanges {
  std::vector<Ipv4Addr> added, removed;
  bool changed() const { return !added.empty() || !removed.empty(); }
};
// Leaves exactly `want` as the device's flood destinations (entries of other MACs, e.g. the
// ones learned from traffic, are left alone). Logs what changed.
FloodDestinationChanges ensure_flood_destinations(std::string_view dev,
                                                  const std::set<Ipv4Addr>& want);

}  // namespace kohaku::netlink
