#include "runner/bpf/runner_datapath.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "common/bpf/bpffs.h"
#include "common/netlink/link.h"
#include "runner_forward_filter.skel.h"
#include "runner_nat_egress.skel.h"
#include "runner_nat_ingress.skel.h"

namespace kohaku::runner {
namespace {

constexpr std::array<const char*, 5> kMapNames = {"runner_ct", "runner_config", "runner_policy",
                                                  "runner_nets", "runner_stats"};

[[noreturn]] void fail(const std::string& what, int err) {
  throw std::runtime_error(what + ": " + std::strerror(err < 0 ? -err : err));
}

// An fd that closes itself.
class Fd {
 public:
  explicit Fd(int fd = -1) : fd_(fd) {}
  Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  Fd& operator=(Fd&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~Fd() {
    if (fd_ >= 0) ::close(fd_);
  }
  int get() const { return fd_; }

 private:
  int fd_;
};

// A pinned map that no longer matches the program's definition: unpinned, kept open until its
// entries are copied into the new map.
struct StaleMap {
  std::string name;
  Fd fd;
  bpf_map_info info;
};

bpf_map* find_map(bpf_object* obj, const char* name) {
  bpf_map* m = bpf_object__find_map_by_name(obj, name);
  if (!m) throw std::runtime_error(std::string("BPF object lacks map ") + name);
  return m;
}

bool same_shape(const bpf_map_info& info, const bpf_map* m) {
  return info.type == static_cast<uint32_t>(bpf_map__type(m)) &&
         info.key_size == bpf_map__key_size(m) && info.value_size == bpf_map__value_size(m) &&
         info.max_entries == bpf_map__max_entries(m) && info.map_flags == bpf_map__map_flags(m);
}

// Copies entries while the new map has room; returns how many were copied.
uint64_t copy_entries(int from, int to, uint32_t key_size, uint32_t value_size) {
  std::vector<uint8_t> key(key_size), next(key_size), value(value_size);
  uint64_t copied = 0;
  const void* prev = nullptr;
  while (bpf_map_get_next_key(from, prev, next.data()) == 0) {
    if (bpf_map_lookup_elem(from, next.data(), value.data()) == 0 &&
        bpf_map_update_elem(to, next.data(), value.data(), BPF_ANY) == 0)
      ++copied;
    key = next;
    prev = key.data();
  }
  return copied;
}

void pin_program(bpf_program* prog, const std::string& path) {
  ::unlink(path.c_str());
  if (int err = bpf_program__pin(prog, path.c_str())) fail("pinning program at " + path, err);
}

template <typename Skel>
void load_skeleton(Skel* skel, int (*load)(Skel*), const char* name) {
  if (int err = load(skel)) fail(std::string("loading BPF object ") + name, err);
}

}  // namespace

void RunnerDatapath::EgressDeleter::operator()(runner_nat_egress* s) const {
  runner_nat_egress__destroy(s);
}
void RunnerDatapath::IngressDeleter::operator()(runner_nat_ingress* s) const {
  runner_nat_ingress__destroy(s);
}
void RunnerDatapath::FilterDeleter::operator()(runner_forward_filter* s) const {
  runner_forward_filter__destroy(s);
}

RunnerDatapath::~RunnerDatapath() = default;

std::unique_ptr<RunnerDatapath> RunnerDatapath::open(const DatapathOptions& options) {
  if (options.conntrack_max_entries < 64)
    throw std::invalid_argument("conntrack size " + std::to_string(options.conntrack_max_entries) +
                                " is too small (at least 64 entries)");
  std::unique_ptr<RunnerDatapath> dp(new RunnerDatapath());
  bool pinned = !options.pin_root.empty();
  if (pinned) {
    dp->pin_dir_ = options.pin_root + "/runner";
    // A runner-only machine may have no bpffs mounted yet (nothing else pinned there).
    bpf::ensure_bpffs_dir(dp->pin_dir_);
  }

  dp->egress_.reset(runner_nat_egress__open());
  if (!dp->egress_) fail("opening BPF object runner_nat_egress", errno);
  dp->ingress_.reset(runner_nat_ingress__open());
  if (!dp->ingress_) fail("opening BPF object runner_nat_ingress", errno);
  dp->filter_.reset(runner_forward_filter__open());
  if (!dp->filter_) fail("opening BPF object runner_forward_filter", errno);
  std::array<bpf_object*, 3> objects = {dp->egress_->obj, dp->ingress_->obj, dp->filter_->obj};
  for (bpf_object* obj : objects) {
    if (int err =
            bpf_map__set_max_entries(find_map(obj, "runner_ct"), options.conntrack_max_entries))
      fail("sizing the conntrack map", err);
  }

  std::vector<StaleMap> stale;
  if (pinned) {
    for (const char* name : kMapNames) {
      std::string path = dp->pin_dir_ + "/" + name;
      Fd fd(bpf_obj_get(path.c_str()));
      if (fd.get() < 0) {
        if (errno == ENOENT) continue;
        fail("opening pinned map " + path, errno);
      }
      bpf_map_info info{};
      uint32_t len = sizeof(info);
      if (bpf_obj_get_info_by_fd(fd.get(), &info, &len))
        fail("inspecting pinned map " + path, errno);
      if (same_shape(info, find_map(dp->egress_->obj, name))) {
        if (std::string(name) == "runner_ct") dp->adopted_ct_ = true;
        continue;  // libbpf reuses it through the pin path below
      }
      if (::unlink(path.c_str()) != 0) fail("unpinning outdated map " + path, errno);
      stale.push_back({name, std::move(fd), info});
    }
    for (bpf_object* obj : objects)
      for (const char* name : kMapNames) {
        std::string path = dp->pin_dir_ + "/" + name;
        if (int err = bpf_map__set_pin_path(find_map(obj, name), path.c_str()))
          fail("setting pin path " + path, err);
      }
  }

  load_skeleton(dp->egress_.get(), runner_nat_egress__load, "runner_nat_egress");
  if (!pinned) {
    // Share the maps the first object created (pins do this in pinned mode).
    for (bpf_object* obj : {dp->ingress_->obj, dp->filter_->obj})
      for (const char* name : kMapNames)
        if (int err = bpf_map__reuse_fd(find_map(obj, name), dp->map_fd(name)))
          fail(std::string("sharing map ") + name, err);
  }
  load_skeleton(dp->ingress_.get(), runner_nat_ingress__load, "runner_nat_ingress");
  load_skeleton(dp->filter_.get(), runner_forward_filter__load, "runner_forward_filter");

  for (auto& s : stale) {
    const bpf_map* now = find_map(dp->egress_->obj, s.name.c_str());
    bool copyable = s.info.type == static_cast<uint32_t>(bpf_map__type(now)) &&
                    s.info.key_size == bpf_map__key_size(now) &&
                    s.info.value_size == bpf_map__value_size(now) &&
                    s.info.type != BPF_MAP_TYPE_PERCPU_ARRAY;
    if (!copyable) continue;
    uint64_t copied =
        copy_entries(s.fd.get(), dp->map_fd(s.name.c_str()), s.info.key_size, s.info.value_size);
    if (s.name == "runner_ct" && copied > 0) dp->adopted_ct_ = true;
  }

  if (pinned) {
    pin_program(dp->egress_->progs.runner_nat_egress, dp->pin_dir_ + "/nat_egress");
    pin_program(dp->ingress_->progs.runner_nat_ingress, dp->pin_dir_ + "/nat_ingress");
    pin_program(dp->filter_->progs.runner_forward_filter, dp->pin_dir_ + "/forward_filter");
  }
  return dp;
}

int RunnerDatapath::map_fd(const char* name) const {
  return bpf_map__fd(find_map(egress_->obj, name));
}
int RunnerDatapath::nat_egress_fd() const {
  return bpf_program__fd(egress_->progs.runner_nat_egress);
}
int RunnerDatapath::nat_ingress_fd() const {
  return bpf_program__fd(ingress_->progs.runner_nat_ingress);
}
int RunnerDatapath::forward_filter_fd() const {
  return bpf_program__fd(filter_->progs.runner_forward_filter);
}
int RunnerDatapath::conntrack_fd() const {
  return map_fd("runner_ct");
}

runner_config RunnerDatapath::read_config() const {
  uint32_t zero = 0;
  runner_config v{};
  if (bpf_map_lookup_elem(map_fd("runner_config"), &zero, &v)) fail("reading runner_config", errno);
  return v;
}

void RunnerDatapath::write_config(const runner_config& v) {
  uint32_t zero = 0;
  if (bpf_map_update_elem(map_fd("runner_config"), &zero, &v, BPF_ANY))
    fail("writing runner_config", errno);
}

void RunnerDatapath::configure(const NatConfig& config) {
  write_config(encode_nat_config(config, count_rules()));
}

std::optional<NatConfig> RunnerDatapath::configuration() const {
  runner_config v = read_config();
  if (!v.enabled) return std::nullopt;
  return decode_nat_config(v);
}

void RunnerDatapath::disable() {
  runner_config v = read_config();
  v.enabled = 0;
  write_config(v);
}

void RunnerDatapath::attach_uplink(int ifindex) {
  tc_attach(ifindex, TcDirection::kEgress, kRunnerTcFilter, nat_egress_fd());
  tc_attach(ifindex, TcDirection::kIngress, kRunnerTcFilter, nat_ingress_fd());
}

void RunnerDatapath::detach_uplink(int ifindex) {
  tc_detach(ifindex, TcDirection::kIngress, kRunnerTcFilter);
  tc_detach(ifindex, TcDirection::kEgress, kRunnerTcFilter);
}

void RunnerDatapath::attach_bridge(int ifindex) {
  tc_attach(ifindex, TcDirection::kEgress, kRunnerTcFilter, forward_filter_fd());
}

void RunnerDatapath::detach_bridge(int ifindex) {
  tc_detach(ifindex, TcDirection::kEgress, kRunnerTcFilter);
}

uint32_t RunnerDatapath::count_rules() const {
  int fd = map_fd("runner_policy");
  runner_policy_key cur{}, next{};
  const void* prev = nullptr;
  uint32_t n = 0;
  while (bpf_map_get_next_key(fd, prev, &next) == 0 && n <= RUNNER_POLICY_MAX_RULES) {
    ++n;
    cur = next;
    prev = &cur;
  }
  return n;
}

bool RunnerDatapath::add_deny_rule(const DenyRule& rule) {
  runner_policy_key key = encode_deny_rule(rule);
  runner_policy_value value{};
  if (bpf_map_update_elem(map_fd("runner_policy"), &key, &value, BPF_NOEXIST)) {
    if (errno == EEXIST) return false;
    if (errno == E2BIG || errno == ENOMEM)
      throw std::runtime_error("deny rule " + rule.to_string() + ": the policy map is full (" +
                               std::to_string(RUNNER_POLICY_MAX_RULES) + " rules)");
    fail("adding deny rule " + rule.to_string(), errno);
  }
  runner_config v = read_config();
  v.policy_rules = count_rules();
  write_config(v);
  return true;
}

bool RunnerDatapath::remove_deny_rule(const DenyRule& rule) {
  runner_policy_key key = encode_deny_rule(rule);
  if (bpf_map_delete_elem(map_fd("runner_policy"), &key)) {
    if (errno == ENOENT) return false;
    fail("removing deny rule " + rule.to_string(), errno);
  }
  runner_config v = read_config();
  v.policy_rules = count_rules();
  write_config(v);
  return true;
}

std::vector<DenyRuleStatus> RunnerDatapath::deny_rules() const {
  int fd = map_fd("runner_policy");
  std::vector<DenyRuleStatus> out;
  runner_policy_key cur{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0 && out.size() <= RUNNER_POLICY_MAX_RULES) {
    runner_policy_value v{};
    if (bpf_map_lookup_elem(fd, &next, &v) == 0) out.push_back({decode_deny_rule(next), v.hits});
    cur = next;
    prev = &cur;
  }
  std::sort(out.begin(), out.end(),
            [](const DenyRuleStatus& a, const DenyRuleStatus& b) { return a.rule < b.rule; });
  return out;
}

size_t RunnerDatapath::set_named_networks(const std::vector<NetEntry>& networks) {
  return sync_net_table(map_fd("runner_nets"), networks);
}

std::vector<NetEntry> RunnerDatapath::named_networks() const {
  return read_net_table(map_fd("runner_nets"));
}

ConntrackSweep RunnerDatapath::collect_garbage(uint64_t now_ns) {
  return sweep_conntrack(conntrack_fd(), now_ns);
}

std::vector<ConntrackRecord> RunnerDatapath::conntrack() const {
  return list_conntrack(conntrack_fd());
}

TableUsage RunnerDatapath::table_usage() const {
  return {count_conntrack(conntrack_fd()),
          bpf_map__max_entries(find_map(egress_->obj, "runner_ct"))};
}

runner_stats RunnerDatapath::counters() const {
  static_assert(sizeof(runner_stats) % sizeof(uint64_t) == 0);
  int cpus = libbpf_num_possible_cpus();
  if (cpus <= 0) fail("counting possible CPUs", cpus);
  std::vector<runner_stats> per_cpu(static_cast<size_t>(cpus));
  uint32_t zero = 0;
  if (bpf_map_lookup_elem(map_fd("runner_stats"), &zero, per_cpu.data()))
    fail("reading runner_stats", errno);
  runner_stats sum{};
  constexpr size_t kFields = sizeof(runner_stats) / sizeof(uint64_t);
  for (const auto& s : per_cpu) {
    uint64_t in[kFields], acc[kFields];
    std::memcpy(in, &s, sizeof in);
    std::memcpy(acc, &sum, sizeof acc);
    for (size_t i = 0; i < kFields; ++i) acc[i] += in[i];
    std::memcpy(&sum, acc, sizeof acc);
  }
  return sum;
}

std::vector<std::pair<std::string, uint64_t>> RunnerDatapath::named_counters(
    const runner_stats& s) {
#define KOHAKU_COUNTER(f) \
  { #f, s.f }
  return {KOHAKU_COUNTER(egress_translated),       KOHAKU_COUNTER(ingress_translated),
          KOHAKU_COUNTER(icmp_errors_translated),  KOHAKU_COUNTER(ct_created),
          KOHAKU_COUNTER(ct_peer_missing),         KOHAKU_COUNTER(ct_insert_failed),
          KOHAKU_COUNTER(nat_port_retries),        KOHAKU_COUNTER(nat_alloc_failed),
          KOHAKU_COUNTER(dropped_unsupported),     KOHAKU_COUNTER(dropped_untracked_icmp_error),
          KOHAKU_COUNTER(forward_allowed),         KOHAKU_COUNTER(forward_dropped_untracked),
          KOHAKU_COUNTER(forward_dropped_spoofed), KOHAKU_COUNTER(policy_denied),
          KOHAKU_COUNTER(passed_not_overlay),      KOHAKU_COUNTER(passed_vxlan_underlay),
          KOHAKU_COUNTER(host_port_conflicts),     KOHAKU_COUNTER(passed_no_nat),
          KOHAKU_COUNTER(forward_dropped_isolated)};
#undef KOHAKU_COUNTER
}

uint64_t RunnerDatapath::forget_flows_via(Ipv4Addr old_uplink) {
  uint8_t addr[4];
  uint32_t be = old_uplink.network_order();
  std::memcpy(addr, &be, 4);
  return forget_nat_address(conntrack_fd(), addr);
}

std::vector<std::string> RunnerDatapath::detach_everywhere() {
  std::vector<std::string> removed;
  for (const auto& link : netlink::list_links()) {
    for (TcDirection d : {TcDirection::kIngress, TcDirection::kEgress})
      if (tc_detach(link.ifindex, d, kRunnerTcFilter))
        removed.push_back(link.name + " " + to_string(d));
  }
  return removed;
}

std::vector<std::string> RunnerDatapath::remove_pins(const std::string& pin_root) {
  std::vector<std::string> removed;
  const std::string dir = pin_root + "/runner";
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return removed;
  std::vector<std::string> names(kMapNames.begin(), kMapNames.end());
  for (const char* prog : {"nat_egress", "nat_ingress", "forward_filter"}) names.push_back(prog);
  for (const auto& name : names) {
    std::string path = dir + "/" + name;
    if (::unlink(path.c_str()) == 0)
      removed.push_back(path);
    else if (errno != ENOENT)
      fail("removing pin " + path, errno);
  }
  ::rmdir(dir.c_str());  // only when nothing else lives there
  return removed;
}

void RunnerDatapath::unpin() {
  if (pin_dir_.empty()) return;
  for (const char* name : kMapNames) {
    bpf_map* m = find_map(egress_->obj, name);
    bpf_map__unpin(m, nullptr);
  }
  for (const char* prog : {"nat_egress", "nat_ingress", "forward_filter"})
    ::unlink((pin_dir_ + "/" + prog).c_str());
  ::rmdir(pin_dir_.c_str());
}

}  // namespace kohaku::runner
