#include "runner/bpf/workload_table.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <cstring>
#include <set>
#include <stdexcept>

#include "common/bpf/map_io.h"

namespace kohaku::runner {
namespace {

runner_wl encode(const WorkloadEntry& e) {
  runner_wl v{};
  uint32_t be = e.addr.network_order();
  std::memcpy(v.addr, &be, 4);
  std::memcpy(v.mac, e.mac.bytes.data(), 6);
  std::memcpy(v.gw_mac, e.gw_mac.bytes.data(), 6);
  v.bridge_ifindex = e.bridge_ifindex;
  v.flags = e.fast ? RUNNER_WL_FAST : 0;
  v.prefixlen = e.prefix;
  return v;
}

WorkloadEntry decode(uint32_t ifindex, const runner_wl& v) {
  WorkloadEntry e;
  e.ifindex = ifindex;
  uint32_t be;
  std::memcpy(&be, v.addr, 4);
  e.addr = Ipv4Addr::from_network_order(be);
  std::memcpy(e.mac.bytes.data(), v.mac, 6);
  std::memcpy(e.gw_mac.bytes.data(), v.gw_mac, 6);
  e.bridge_ifindex = v.bridge_ifindex;
  e.fast = (v.flags & RUNNER_WL_FAST) != 0;
  e.prefix = static_cast<uint8_t>(v.prefixlen);
  return e;
}

runner_wl_addr_key addr_key(Ipv4Addr addr) {
  runner_wl_addr_key k{};
  uint32_t be = addr.network_order();
  std::memcpy(k.addr, &be, 4);
  return k;
}

bool unusable_mac(const netlink::MacAddr& m) {
  return (m.bytes[0] & 1) != 0 || m == netlink::MacAddr{};
}

void validate_one(const WorkloadEntry& e) {
  auto bad = [&](const std::string& why) {
    throw std::invalid_argument("workload " + e.to_string() + ": " + why);
  };
  if (e.ifindex == 0) bad("no veth (ifindex 0)");
  if (e.bridge_ifindex == 0) bad("no bridge (ifindex 0)");
  if (e.addr.value == 0) bad("no address");
  if (e.prefix == 0 || e.prefix > 32) bad("subnet prefix " + std::to_string(e.prefix));
  if (unusable_mac(e.mac)) bad("the workload's MAC is zero or multicast");
  if (unusable_mac(e.gw_mac)) bad("the gateway's MAC is zero or multicast");
}

}  // namespace

std::string WorkloadEntry::to_string() const {
  return "ifindex " + std::to_string(ifindex) + " " + addr.to_string() + "/" +
         std::to_string(prefix) + " " + mac.to_string() + " via bridge " +
         std::to_string(bridge_ifindex) + (fast ? " (fast)" : " (checked)");
}

void validate_workload_entries(const std::vector<WorkloadEntry>& entries) {
  if (entries.size() > RUNNER_WL_MAX)
    throw std::invalid_argument(std::to_string(entries.size()) + " workloads: at most " +
                                std::to_string(RUNNER_WL_MAX));
  std::set<uint32_t> veths, addrs;
  for (const WorkloadEntry& e : entries) {
    validate_one(e);
    if (!veths.insert(e.ifindex).second)
      throw std::invalid_argument("workload " + e.to_string() + ": veth given twice");
    if (!addrs.insert(e.addr.value).second)
      throw std::invalid_argument("workload " + e.to_string() + ": address given twice");
  }
}

void upsert_workload(const WorkloadMaps& maps, const WorkloadEntry& entry) {
  validate_one(entry);
  runner_wl_key k{entry.ifindex};
  runner_wl old{};
  bool had = bpf_map_lookup_elem(maps.workloads, &k, &old) == 0;
  runner_wl v = encode(entry);
  // Counters first, then the workload, then its address: a packet never finds an address whose
  // workload entry is missing.
  bpf::percpu_ensure_zero<runner_wl_stats>(maps.stats, &k,
                                           "runner_wl_stats of " + entry.to_string());
  bpf::map_update(maps.workloads, &k, &v, "runner_wl");
  runner_wl_addr_key ak = addr_key(entry.addr);
  runner_wl_addr a{entry.ifindex};
  bpf::map_update(maps.by_addr, &ak, &a, "runner_wl_addr");
  if (had) {
    WorkloadEntry before = decode(entry.ifindex, old);
    runner_wl_addr_key old_key = addr_key(before.addr);
    runner_wl_addr cur{};
    if (before.addr != entry.addr && bpf_map_lookup_elem(maps.by_addr, &old_key, &cur) == 0 &&
        cur.ifindex == entry.ifindex)
      bpf::map_erase(maps.by_addr, &old_key, "runner_wl_addr");
  }
}

bool remove_workload(const WorkloadMaps& maps, uint32_t ifindex) {
  runner_wl_key k{ifindex};
  runner_wl old{};
  if (bpf_map_lookup_elem(maps.workloads, &k, &old) != 0) return false;
  // The address first: delivery stops before the workload's entry goes.
  runner_wl_addr_key ak = addr_key(decode(ifindex, old).addr);
  runner_wl_addr cur{};
  if (bpf_map_lookup_elem(maps.by_addr, &ak, &cur) == 0 && cur.ifindex == ifindex)
    bpf::map_erase(maps.by_addr, &ak, "runner_wl_addr");
  bpf::map_erase(maps.workloads, &k, "runner_wl");
  bpf::map_erase(maps.stats, &k, "runner_wl_stats");
  return true;
}

size_t sync_workloads(const WorkloadMaps& maps, const std::vector<WorkloadEntry>& wanted) {
  validate_workload_entries(wanted);
  size_t changes = 0;
  std::vector<WorkloadEntry> have = read_workloads(maps);
  std::set<uint32_t> keep;
  for (const WorkloadEntry& e : wanted) keep.insert(e.ifindex);
  for (const WorkloadEntry& e : have)
    if (!keep.count(e.ifindex)) changes += remove_workload(maps, e.ifindex);
  for (const WorkloadEntry& e : wanted) {
    if (std::find(have.begin(), have.end(), e) != have.end()) continue;
    upsert_workload(maps, e);
    ++changes;
  }
  // Addresses no workload owns any more (a crash between two updates).
  for (const auto& [k, v] : bpf::map_entries<runner_wl_addr_key, runner_wl_addr>(maps.by_addr)) {
    if (keep.count(v.ifindex)) continue;
    bpf::map_erase(maps.by_addr, &k, "runner_wl_addr");
    ++changes;
  }
  return changes;
}

std::vector<WorkloadEntry> read_workloads(const WorkloadMaps& maps) {
  std::vector<WorkloadEntry> out;
  for (const auto& [k, v] : bpf::map_entries<runner_wl_key, runner_wl>(maps.workloads))
    out.push_back(decode(k.ifindex, v));
  std::sort(out.begin(), out.end(),
            [](const WorkloadEntry& a, const WorkloadEntry& b) { return a.ifindex < b.ifindex; });
  return out;
}

std::map<uint32_t, runner_wl_stats> read_workload_counters(const WorkloadMaps& maps) {
  std::map<uint32_t, runner_wl_stats> out;
  for (const runner_wl_key& k : bpf::map_keys<runner_wl_key>(maps.stats))
    if (auto sum = bpf::percpu_sum<runner_wl_stats>(maps.stats, &k, "runner_wl_stats"))
      out.emplace(k.ifindex, *sum);
  return out;
}

}  // namespace kohaku::runner
