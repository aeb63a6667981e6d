#pragma once
// Userspace side of the runner conntrack map (runner_ct): listing, counting, and the garbage
// collector that deletes expired flows.
//
// Why a userspace sweep and not a BPF program walking the map with bpf_for_each_map_elem: the
// daemon already wakes on a timer, the sweep runs outside the packet path with no verifier or
// instruction limits as the table grows, it can take `now` as a parameter (tests age flows
// without sleeping), and a walk that deletes a flow's two halves in one pass has to look up the
// other half anyway. The cost is O(entries) syscalls per sweep, a few ms per 10k entries.
#include <cstdint>
#include <vector>

#include "lib/runner_types.h"

namespace kohaku::runner {

struct ConntrackRecord {
  runner_ct_key key;
  runner_ct_entry entry;
};

struct ConntrackSweep {
  uint64_t scanned = 0;          // entries looked at
  uint64_t flows_live = 0;       // ORIGINAL entries not yet expired
  uint64_t flows_expired = 0;    // flows deleted (both halves)
  uint64_t orphans_removed = 0;  // REPLY entries whose ORIGINAL half was gone
  uint64_t host_flows_live = 0;  // port reservations of the runner's own flows
  uint64_t host_flows_expired = 0;
};

// CLOCK_MONOTONIC in ns: the clock bpf_ktime_get_ns() reads.
uint64_t monotonic_now_ns();

// Every entry (a snapshot: the map keeps changing underneath).
std::vector<ConntrackRecord> list_conntrack(int map_fd);
uint64_t count_conntrack(int map_fd);

// Deletes flows whose ORIGINAL entry expired at or before now_ns, expired reservations of
// the runner's own flows (RUNNER_CT_HOST), and REPLY entries left
// without an ORIGINAL half for longer than orphan_grace_ns (a flow being created inserts its
// REPLY half first, so a young orphan may be a flow a CPU is setting up right now).
ConntrackSweep sweep_conntrack(int map_fd, uint64_t now_ns,
                               uint64_t orphan_grace_ns = 10'000'000'000ull);

// Deletes every flow masqueraded behind `nat_addr` (network order bytes), both halves, and the
// runner's own port reservations on it: after the uplink address changed, replies to the old
// address can no longer arrive (the kernel's MASQUERADE drops its conntrack entries the same
// way). Returns the number of entries deleted.
uint64_t forget_nat_address(int map_fd, const uint8_t (&nat_addr)[4]);

// The key of a flow's other half.
runner_ct_key conntrack_peer_key(const runner_ct_key& key, const runner_ct_entry& entry);

}  // namespace kohaku::runner
