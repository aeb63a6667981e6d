#include "runner/bpf/conntrack_table.h"

#include "common/bpf/map_io.h"

#include <bpf/bpf.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>
#include <ctime>
#include <system_error>

namespace kohaku::runner {
namespace {

std::vector<runner_ct_key> all_keys(int fd) {
  // A key deleted under us makes the kernel restart from the first key: bound the walk.
  return bpf::map_keys<runner_ct_key>(fd, (1u << 24) + 1);
}

runner_ct_key make_key(const __u8 (&saddr)[4], const __u8 (&daddr)[4], uint16_t sport,
                       uint16_t dport, uint8_t proto) {
  runner_ct_key k{};
  std::memcpy(k.saddr, saddr, 4);
  std::memcpy(k.daddr, daddr, 4);
  k.sport = sport;
  k.dport = dport;
  k.proto = proto;
  return k;
}

// Whether the flow of `e` (read under `key`) is live at now_ns. An expired one is read again right
// before the caller deletes it: a packet may have refreshed the flow since.
bool still_live(int fd, const runner_ct_key& key, runner_ct_entry& e, uint64_t now_ns) {
  if (e.expires_ns > now_ns) return true;
  return bpf_map_lookup_elem(fd, &key, &e) == 0 && e.expires_ns > now_ns;
}

}  // namespace

uint64_t monotonic_now_ns() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return uint64_t(ts.tv_sec) * 1'000'000'000ull + uint64_t(ts.tv_nsec);
}

runner_ct_key conntrack_peer_key(const runner_ct_key& k, const runner_ct_entry& e) {
  // Mirrors rn_ct_reply_of_original / rn_ct_original_of_reply in bpf/lib/conntrack.h.
  bool icmp = k.proto == IPPROTO_ICMP;
  if (e.dir == RUNNER_CT_ORIGINAL)
    return make_key(k.daddr, e.nat_addr, icmp ? e.nat_port : k.dport, e.nat_port, k.proto);
  return make_key(e.nat_addr, k.saddr, e.nat_port, icmp ? e.nat_port : k.sport, k.proto);
}

std::vector<ConntrackRecord> list_conntrack(int fd) {
  std::vector<ConntrackRecord> out;
  for (const auto& key : all_keys(fd)) {
    ConntrackRecord r{key, {}};
    if (bpf_map_lookup_elem(fd, &r.key, &r.entry) == 0) out.push_back(r);
  }
  return out;
}

uint64_t count_conntrack(int fd) {
  return all_keys(fd).size();
}

ConntrackSweep sweep_conntrack(int fd, uint64_t now_ns, uint64_t orphan_grace_ns) {
  ConntrackSweep s;
  // Keys first, then decisions: deleting while walking would restart get_next_key.
  for (const auto& key : all_keys(fd)) {
    runner_ct_entry e{};
    if (bpf_map_lookup_elem(fd, &key, &e) != 0) continue;  // gone meanwhile
    ++s.scanned;
    runner_ct_key peer = conntrack_peer_key(key, e);
    if (e.flags & RUNNER_CT_HOST) {
      // The runner's own flow: a single entry with its own expiry.
      if (still_live(fd, key, e, now_ns)) {
        ++s.host_flows_live;
        continue;
      }
      if (bpf_map_delete_elem(fd, &key) == 0) ++s.host_flows_expired;
      continue;
    }
    if (e.dir == RUNNER_CT_ORIGINAL) {
      if (still_live(fd, key, e, now_ns)) {
        ++s.flows_live;
        continue;
      }
      bpf_map_delete_elem(fd, &key);
      bpf_map_delete_elem(fd, &peer);
      ++s.flows_expired;
    } else {
      runner_ct_entry other{};
      if (bpf_map_lookup_elem(fd, &peer, &other) == 0) continue;
      if (e.created_ns + orphan_grace_ns > now_ns) continue;
      if (bpf_map_delete_elem(fd, &key) == 0) ++s.orphans_removed;
    }
  }
  return s;
}

uint64_t forget_nat_address(int fd, const uint8_t (&nat_addr)[4]) {
  uint64_t deleted = 0;
  for (const auto& key : all_keys(fd)) {
    runner_ct_entry e{};
    if (bpf_map_lookup_elem(fd, &key, &e) != 0) continue;
    // REPLY halves and host reservations are keyed on the uplink address as destination.
    bool ours = e.dir == RUNNER_CT_ORIGINAL && !(e.flags & RUNNER_CT_HOST)
                    ? std::memcmp(e.nat_addr, nat_addr, 4) == 0
                    : std::memcmp(key.daddr, nat_addr, 4) == 0;
    if (ours && bpf_map_delete_elem(fd, &key) == 0) ++deleted;
  }
  return deleted;
}

}  // namespace kohaku::runner
