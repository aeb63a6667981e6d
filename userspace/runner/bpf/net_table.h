#pragma once
// The runner's named L2 networks as the BPF programs see them (map runner_nets, an LPM trie of
// subnets; bpf/lib/net_class.h classifies addresses with it): which subnet, which network (its
// id, the VNI), and whether traffic to the outside is masqueraded.
#include <compare>
#include <cstdint>
#include <string>
#include <vector>

#include "common/ipv4.h"

namespace kohaku::runner {

struct NetEntry {
  Ipv4Cidr subnet;
  uint32_t id = 0;  // nonzero and stable per network (the VNI); 0 is the overlay's
  bool outbound_nat = true;

  std::string to_string() const;  // "172.20.0.0/24 id 13091 nat on"
  auto operator<=>(const NetEntry&) const = default;
};

// Throws std::invalid_argument naming the entry: id 0, a subnet with host bits or prefix 0,
// the same subnet twice, more than RUNNER_NETS_MAX entries.
void validate_net_entries(const std::vector<NetEntry>& entries);

// The entries in the map, sorted by subnet.
std::vector<NetEntry> read_net_table(int map_fd);

// Makes the map hold exactly `wanted` (validated first; nothing changes when invalid): new and
// changed entries are written before stale ones are deleted (unless the map could not hold
// both), so an address that stays in a network is never unclassified in between. Returns the
// number of entries written or deleted.
size_t sync_net_table(int map_fd, const std::vector<NetEntry>& wanted);

}  // namespace kohaku::runner
