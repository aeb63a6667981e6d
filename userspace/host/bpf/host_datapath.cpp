#include "host/bpf/host_datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <set>
#include <stdexcept>
#include <system_error>

#include "common/bpf/attach_points.h"
#include "common/bpf/counter_fields.h"
#include "common/bpf/map_io.h"
#include "common/bpf/pinned_skeleton.h"
#include "host_forward.skel.h"

namespace kohaku::bpf {
namespace {

constexpr const char* kProgramPin = "host_forward";
constexpr TcFilterId kFilter = kHostForwardTcFilter;

static_assert(sizeof(host_stats) % sizeof(uint64_t) == 0, "host_stats must be all __u64");
constexpr size_t kStatsFields = sizeof(host_stats) / sizeof(uint64_t);

std::array<uint8_t, 4> to_bytes(Ipv4Addr a) {
  uint32_t be = a.network_order();
  std::array<uint8_t, 4> out{};
  std::memcpy(out.data(), &be, 4);
  return out;
}

Ipv4Addr from_bytes(const uint8_t* b) {
  uint32_t be;
  std::memcpy(&be, b, 4);
  return Ipv4Addr::from_network_order(be);
}

host_route_key route_key(const Ipv4Cidr& subnet) {
  host_route_key k{};
  k.prefixlen = subnet.prefix;
  auto b = to_bytes(subnet.addr);
  std::memcpy(k.addr, b.data(), 4);
  return k;
}

Ipv4Cidr route_subnet(const host_route_key& k) {
  return Ipv4Cidr{from_bytes(k.addr), static_cast<uint8_t>(k.prefixlen)};
}

host_addr_key addr_key(Ipv4Addr a) {
  host_addr_key k{};
  auto b = to_bytes(a);
  std::memcpy(k.addr, b.data(), 4);
  return k;
}

bool overlaps(const Ipv4Cidr& a, const Ipv4Cidr& b) {
  return a.contains(b) || b.contains(a);
}

host_ingress ingress_value(const RunnerRoute& r) {
  host_ingress iv{};
  iv.runner_id = r.runner_id;
  iv.prefixlen = r.subnet.prefix;
  auto b = to_bytes(r.subnet.addr);
  std::memcpy(iv.subnet, b.data(), 4);
  return iv;
}

std::pair<uint32_t, uint8_t> mirror_key(const Ipv4Cidr& c) {
  return {c.addr.value, c.prefix};
}

Ipv4Cidr mirror_subnet(std::pair<uint32_t, uint8_t> k) {
  return Ipv4Cidr{Ipv4Addr{k.first}, k.second};
}

#define KH_COUNTER(field)               \
  CounterName {                         \
#field, offsetof(host_stats, field) \
  }
constexpr CounterName kCounterNames[] = {
    KH_COUNTER(fwd_packets),      KH_COUNTER(fwd_bytes),       KH_COUNTER(fwd_neigh),
    KH_COUNTER(fwd_no_fib),       KH_COUNTER(pass_bytes),      KH_COUNTER(pass_non_ipv4),
    KH_COUNTER(pass_malformed),   KH_COUNTER(pass_ip_options), KH_COUNTER(pass_fragment),
    KH_COUNTER(pass_l2_not_host), KH_COUNTER(pass_to_host),    KH_COUNTER(pass_no_route),
    KH_COUNTER(pass_ttl),         KH_COUNTER(pass_oversize),   KH_COUNTER(pass_fib),
    KH_COUNTER(pass_unmanaged),   KH_COUNTER(drop_bytes),      KH_COUNTER(drop_spoofed),
};
#undef KH_COUNTER
static_assert(std::size(kCounterNames) == kStatsFields, "every host_stats field needs a name");

}  // namespace

uint64_t RunnerCounters::pass_packets() const {
  return sum_counters(&sum.pass_non_ipv4, HOST_PASS_MAX);
}

uint64_t RunnerCounters::drop_packets() const {
  return sum_counters(&sum.drop_spoofed, HOST_DROP_MAX);
}

std::vector<std::pair<std::string_view, uint64_t>> RunnerCounters::named() const {
  return named_counters(sum, kCounterNames);
}

HostDatapath::HostDatapath(const HostDatapathOptions& options) {
  load(options);
}

HostDatapath::~HostDatapath() = default;

void HostDatapath::load(const HostDatapathOptions& options) {
  if (options.pin) pin_dir_ = pin_dir_below(options.pin_root, pin_dirs::kHost);
  skel_ = std::make_unique<Skeleton>(KOHAKU_SKELETON(host_forward), PinPlan{pin_dir_, "bpf-host"});
  migrated_ = skel_->report().migrated_names();
  skel_->pin_program((*skel_)->progs.host_forward, kProgramPin);
  ensure_stats_entry(0);
  load_mirror();
}

int HostDatapath::program_fd() const {
  return bpf_program__fd((*skel_)->progs.host_forward);
}

uint32_t HostDatapath::program_id() const {
  return bpf::program_id(program_fd(), "host_forward");
}

int HostDatapath::map_fd(std::string_view name) const {
  return bpf::map_fd(skel_->obj(), name);
}

void HostDatapath::ensure_stats_entry(uint32_t runner_id) {
  host_stats_key key{runner_id};
  percpu_ensure_zero<host_stats>(bpf_map__fd((*skel_)->maps.host_stats), &key,
                                 "counters of runner " + std::to_string(runner_id));
}

void HostDatapath::load_mirror() {
  route_owner_.clear();
  ingress_owner_.clear();
  owned_.clear();
  for (const auto& [k, v] :
       map_entries<host_route_key, host_route>(bpf_map__fd((*skel_)->maps.host_routes))) {
    auto key = mirror_key(route_subnet(k));
    route_owner_[key] = v.runner_id;
    owned_[v.runner_id].routes.insert(key);
  }
  for (const auto& [k, v] :
       map_entries<host_ingress_key, host_ingress>(bpf_map__fd((*skel_)->maps.host_ingress))) {
    ingress_owner_[k.ifindex] = v.runner_id;
    owned_[v.runner_id].ifindexes.insert(k.ifindex);
  }
}

void HostDatapath::put_route(const RunnerRoute& r) {
  host_route_key rk = route_key(r.subnet);
  host_route rv{r.ifindex, r.runner_id};
  map_update(bpf_map__fd((*skel_)->maps.host_routes), &rk, &rv, "host_routes");
  auto key = mirror_key(r.subnet);
  auto [it, inserted] = route_owner_.try_emplace(key, r.runner_id);
  if (!inserted && it->second != r.runner_id) {
    owned_[it->second].routes.erase(key);
    it->second = r.runner_id;
  }
  owned_[r.runner_id].routes.insert(key);
}

bool HostDatapath::erase_route(std::pair<uint32_t, uint8_t> key) {
  host_route_key rk = route_key(mirror_subnet(key));
  bool erased = map_erase(bpf_map__fd((*skel_)->maps.host_routes), &rk, "host_routes");
  if (auto it = route_owner_.find(key); it != route_owner_.end()) {
    if (auto o = owned_.find(it->second); o != owned_.end()) o->second.routes.erase(key);
    route_owner_.erase(it);
  }
  return erased;
}

void HostDatapath::put_ingress(const RunnerRoute& r) {
  host_ingress_key ik{r.ifindex};
  host_ingress iv = ingress_value(r);
  map_update(bpf_map__fd((*skel_)->maps.host_ingress), &ik, &iv, "host_ingress");
  auto [it, inserted] = ingress_owner_.try_emplace(r.ifindex, r.runner_id);
  if (!inserted && it->second != r.runner_id) {
    // The device now belongs to this runner: the other one lost its entry with the overwrite.
    owned_[it->second].ifindexes.erase(r.ifindex);
    it->second = r.runner_id;
  }
  owned_[r.runner_id].ifindexes.insert(r.ifindex);
}

bool HostDatapath::erase_ingress(uint32_t ifindex) {
  host_ingress_key ik{ifindex};
  bool erased = map_erase(bpf_map__fd((*skel_)->maps.host_ingress), &ik, "host_ingress");
  if (auto it = ingress_owner_.find(ifindex); it != ingress_owner_.end()) {
    if (auto o = owned_.find(it->second); o != owned_.end()) o->second.ifindexes.erase(ifindex);
    ingress_owner_.erase(it);
  }
  return erased;
}

std::optional<std::pair<Ipv4Cidr, uint32_t>> HostDatapath::overlapping_route(const Ipv4Cidr& subnet,
                                                                             uint32_t self) const {
  // Two CIDR blocks overlap only when one contains the other. Routes inside `subnet` (itself
  // included) start within its address range: one ordered range of the mirror...
  for (auto it = route_owner_.lower_bound({subnet.addr.value, 0});
       it != route_owner_.end() && it->first.first <= subnet.last().value; ++it)
    if (it->second != self) return std::pair{mirror_subnet(it->first), it->second};
  // ...and routes containing it are its supernets: one candidate per shorter prefix length.
  for (int p = subnet.prefix - 1; p >= 0; --p) {
    auto plen = static_cast<uint8_t>(p);
    auto it = route_owner_.find({subnet.addr.value & Ipv4Cidr::mask_for(plen), plen});
    if (it != route_owner_.end() && it->second != self)
      return std::pair{mirror_subnet(it->first), it->second};
  }
  return std::nullopt;
}

void HostDatapath::upsert_runner(const RunnerRoute& r) {
  std::lock_guard lock(write_mu_);
  if (r.runner_id == 0) throw std::invalid_argument("runner id 0 is reserved");
  if (r.ifindex == 0)
    throw std::invalid_argument("runner " + std::to_string(r.runner_id) + ": ifindex 0");
  if (r.subnet.prefix > 32 || (r.subnet.addr.value & ~r.subnet.mask()) != 0)
    throw std::invalid_argument("runner " + std::to_string(r.runner_id) + ": bad subnet " +
                                r.subnet.to_string());
  if (auto other = overlapping_route(r.subnet, r.runner_id))
    throw std::invalid_argument("runner " + std::to_string(r.runner_id) + ": subnet " +
                                r.subnet.to_string() + " overlaps " + other->first.to_string() +
                                " of runner " + std::to_string(other->second));

  // New entries first, stale ones after: the runner stays routable throughout.
  ensure_stats_entry(r.runner_id);
  put_route(r);
  put_ingress(r);

  Owned& mine = owned_[r.runner_id];
  auto new_route = mirror_key(r.subnet);
  std::vector<std::pair<uint32_t, uint8_t>> stale_routes;
  for (const auto& k : mine.routes)
    if (k != new_route) stale_routes.push_back(k);
  std::vector<uint32_t> stale_ingress;
  for (uint32_t ifindex : mine.ifindexes)
    if (ifindex != r.ifindex) stale_ingress.push_back(ifindex);
  for (const auto& k : stale_routes) erase_route(k);
  for (uint32_t ifindex : stale_ingress) erase_ingress(ifindex);
}

bool HostDatapath::remove_runner(uint32_t runner_id) {
  std::lock_guard lock(write_mu_);
  if (runner_id == 0) return false;
  bool removed = false;
  if (auto it = owned_.find(runner_id); it != owned_.end()) {
    // Copies: erasing updates the sets.
    auto routes = it->second.routes;
    auto ifindexes = it->second.ifindexes;
    for (const auto& k : routes) removed |= erase_route(k);
    for (uint32_t ifindex : ifindexes) removed |= erase_ingress(ifindex);
    owned_.erase(runner_id);
  }
  host_stats_key sk{runner_id};
  removed |= map_erase(bpf_map__fd((*skel_)->maps.host_stats), &sk, "host_stats");
  return removed;
}

std::vector<RunnerRoute> HostDatapath::runners() const {
  std::vector<RunnerRoute> out;
  for (const auto& [k, v] :
       map_entries<host_ingress_key, host_ingress>(bpf_map__fd((*skel_)->maps.host_ingress)))
    out.push_back(RunnerRoute{
        v.runner_id, Ipv4Cidr{from_bytes(v.subnet), static_cast<uint8_t>(v.prefixlen)}, k.ifindex});
  std::sort(out.begin(), out.end(), [](const RunnerRoute& a, const RunnerRoute& b) {
    return std::tie(a.runner_id, a.ifindex) < std::tie(b.runner_id, b.ifindex);
  });
  return out;
}

void HostDatapath::add_host_address(const HostAddress& a) {
  if (a.addr.is_unspecified()) throw std::invalid_argument("host address 0.0.0.0");
  std::lock_guard lock(write_mu_);
  write_host_address(a);
}

bool HostDatapath::remove_host_address(Ipv4Addr a) {
  std::lock_guard lock(write_mu_);
  return erase_host_address(a);
}

void HostDatapath::write_host_address(const HostAddress& a) {
  host_addr_key k = addr_key(a.addr);
  host_addr v{a.ifindex};
  map_update(bpf_map__fd((*skel_)->maps.host_addrs), &k, &v, "host_addrs");
}

bool HostDatapath::erase_host_address(Ipv4Addr a) {
  host_addr_key k = addr_key(a);
  return map_erase(bpf_map__fd((*skel_)->maps.host_addrs), &k, "host_addrs");
}

std::vector<HostAddress> HostDatapath::host_addresses() const {
  std::vector<HostAddress> out;
  for (const auto& [k, v] :
       map_entries<host_addr_key, host_addr>(bpf_map__fd((*skel_)->maps.host_addrs)))
    out.push_back(HostAddress{from_bytes(k.addr), v.ifindex});
  std::sort(out.begin(), out.end(),
            [](const HostAddress& a, const HostAddress& b) { return a.addr < b.addr; });
  return out;
}

void HostDatapath::reconcile(const std::vector<RunnerRoute>& want,
                             const std::vector<HostAddress>& want_addrs) {
  std::lock_guard lock(write_mu_);
  // Validate everything before the first write so bad input changes nothing.
  std::set<uint32_t> ids, ifindexes;
  for (const RunnerRoute& r : want) {
    std::string who = "runner " + std::to_string(r.runner_id);
    if (r.runner_id == 0) throw std::invalid_argument("runner id 0 is reserved");
    if (r.ifindex == 0) throw std::invalid_argument(who + ": ifindex 0");
    if ((r.subnet.addr.value & ~r.subnet.mask()) != 0)
      throw std::invalid_argument(who + ": bad subnet " + r.subnet.to_string());
    if (!ids.insert(r.runner_id).second) throw std::invalid_argument(who + " listed twice");
    if (!ifindexes.insert(r.ifindex).second)
      throw std::invalid_argument(who + ": ifindex " + std::to_string(r.ifindex) +
                                  " used by two runners");
  }
  // Sorted by address, CIDR blocks that overlap (one contains the other) have a neighbouring
  // pair that does: O(n log n). Only when there is one, find the pair the error names the way
  // a check in input order would (the first runner overlapping an earlier one).
  std::vector<Ipv4Cidr> sorted;
  sorted.reserve(want.size());
  for (const RunnerRoute& r : want) sorted.push_back(r.subnet);
  std::sort(sorted.begin(), sorted.end(),
            [](const Ipv4Cidr& a, const Ipv4Cidr& b) { return mirror_key(a) < mirror_key(b); });
  bool any_overlap = false;
  for (size_t i = 1; i < sorted.size() && !any_overlap; ++i)
    any_overlap = sorted[i].addr.value <= sorted[i - 1].last().value;
  if (any_overlap)
    for (size_t i = 0; i < want.size(); ++i)
      for (size_t j = 0; j < i; ++j)
        if (overlaps(want[j].subnet, want[i].subnet))
          throw std::invalid_argument("runner " + std::to_string(want[i].runner_id) + ": subnet " +
                                      want[i].subnet.to_string() + " overlaps " +
                                      want[j].subnet.to_string() + " of runner " +
                                      std::to_string(want[j].runner_id));
  for (const HostAddress& a : want_addrs)
    if (a.addr.is_unspecified()) throw std::invalid_argument("host address 0.0.0.0");

  int routes = bpf_map__fd((*skel_)->maps.host_routes);
  int ingress = bpf_map__fd((*skel_)->maps.host_ingress);
  int stats = bpf_map__fd((*skel_)->maps.host_stats);
  std::set<std::pair<uint64_t, uint64_t>> keep_routes;   // (prefixlen<<32|addr, ifindex<<32|id)
  std::set<std::pair<uint32_t, uint32_t>> keep_ingress;  // (ifindex, id)
  for (const RunnerRoute& r : want) {
    ensure_stats_entry(r.runner_id);
    host_route_key rk = route_key(r.subnet);
    host_route rv{r.ifindex, r.runner_id};
    map_update(routes, &rk, &rv, "host_routes");
    host_ingress_key ik{r.ifindex};
    host_ingress iv = ingress_value(r);
    map_update(ingress, &ik, &iv, "host_ingress");
    keep_routes.emplace(uint64_t{rk.prefixlen} << 32 | r.subnet.addr.value,
                        uint64_t{r.ifindex} << 32 | r.runner_id);
    keep_ingress.emplace(r.ifindex, r.runner_id);
  }
  // The full walks find entries nobody in this process wrote (bpftool, an older build).
  for (const auto& [k, v] : map_entries<host_route_key, host_route>(routes))
    if (!keep_routes.count({uint64_t{k.prefixlen} << 32 | route_subnet(k).addr.value,
                            uint64_t{v.ifindex} << 32 | v.runner_id}))
      map_erase(routes, &k, "host_routes");
  for (const auto& [k, v] : map_entries<host_ingress_key, host_ingress>(ingress))
    if (!keep_ingress.count({k.ifindex, v.runner_id})) map_erase(ingress, &k, "host_ingress");
  for (const host_stats_key& k : map_keys<host_stats_key>(stats))
    if (k.runner_id != 0 && !ids.count(k.runner_id)) map_erase(stats, &k, "host_stats");

  // The maps now hold exactly `want`.
  route_owner_.clear();
  ingress_owner_.clear();
  owned_.clear();
  for (const RunnerRoute& r : want) {
    route_owner_[mirror_key(r.subnet)] = r.runner_id;
    ingress_owner_[r.ifindex] = r.runner_id;
    Owned& o = owned_[r.runner_id];
    o.routes.insert(mirror_key(r.subnet));
    o.ifindexes.insert(r.ifindex);
  }

  std::set<uint32_t> keep_addrs;
  for (const HostAddress& a : want_addrs) {
    write_host_address(a);
    keep_addrs.insert(a.addr.value);
  }
  for (const HostAddress& a : host_addresses())
    if (!keep_addrs.count(a.addr.value)) erase_host_address(a.addr);
}

void HostDatapath::attach(uint32_t ifindex) {
  tc_attach(static_cast<int>(ifindex), TcDirection::kIngress, kFilter, program_fd(),
            kHostTunnelTcBlocks);
}

bool HostDatapath::detach(uint32_t ifindex) {
  return detach_host_forward(ifindex);
}

bool detach_host_forward(uint32_t ifindex) {
  return tc_detach(static_cast<int>(ifindex), TcDirection::kIngress, kFilter);
}

size_t remove_host_pins(const std::string& pin_root) {
  std::filesystem::path dir = pin_dir_below(pin_root, pin_dirs::kHost);
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) return 0;
  size_t removed = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    std::filesystem::remove(entry.path());  // throws filesystem_error naming the path
    ++removed;
  }
  std::filesystem::remove(dir, ec);
  return removed;
}

std::optional<uint32_t> HostDatapath::attached_program_id(uint32_t ifindex) const {
  return host_forward_program(ifindex);
}

std::optional<uint32_t> host_forward_program(uint32_t ifindex) {
  return tc_attached_program(static_cast<int>(ifindex), TcDirection::kIngress, kFilter);
}

std::optional<RunnerCounters> HostDatapath::counters(uint32_t runner_id) const {
  host_stats_key key{runner_id};
  auto sum = percpu_sum<host_stats>(bpf_map__fd((*skel_)->maps.host_stats), &key,
                                    "counters of runner " + std::to_string(runner_id));
  if (!sum) return std::nullopt;
  return RunnerCounters{*sum};
}

std::map<uint32_t, RunnerCounters> HostDatapath::all_counters() const {
  std::map<uint32_t, RunnerCounters> out;
  for (const host_stats_key& k : map_keys<host_stats_key>(bpf_map__fd((*skel_)->maps.host_stats)))
    if (auto c = counters(k.runner_id)) out.emplace(k.runner_id, *c);
  return out;
}

}  // namespace kohaku::bpf
