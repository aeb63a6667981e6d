#pragma once
// IPv4 neighbour (ARP) entries: listing them, and asking the kernel to revalidate one.
#include <cstdint>
#include <vector>

#include "common/ipv4.h"
#include "common/netlink/link.h"

namespace kohaku::netlink {

struct NeighbourEntry {
  int ifindex = 0;
  Ipv4Addr addr;
  MacAddr mac;
  int state = 0;  // NUD_* bits
};

// Every IPv4 neighbour entry of the namespace (one dump).
std::vector<NeighbourEntry> list_neighbours();

// Tells the kernel the entry is in use (NTF_USE), as its own output path does: a STALE entry goes
// through DELAY to PROBE and is confirmed by a unicast probe, or fails and is resolved afresh.
// For data paths that read entries without sending through the kernel (bpf_fib_lookup), which
// would otherwise keep a STALE entry, and a changed MAC behind it, forever.
void revalidate_neighbour(int ifindex, Ipv4Addr addr);

}  // namespace kohaku::netlink
