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

#include "common/bpf/attach_points.h"
#include "common/bpf/map_io.h"
#include "common/bpf/pinned_skeleton.h"
#include "common/netlink/link.h"
#include "runner_forward_filter.skel.h"
#include "runner_nat_egress.skel.h"
#include "runner_nat_ingress.skel.h"
#include "runner_overlay_ingress.skel.h"
#include "runner_workload.skel.h"

namespace kohaku::runner {
namespace {

constexpr std::array<const char*, 5> kMapNames = {"runner_ct", "runner_config", "runner_policy",
                                                  "runner_nets", "runner_stats"};
// The fast path's maps: created by the workload object, shared with the uplink's ingress (which
// delivers replies past the bridge).
constexpr std::array<const char*, 4> kWorkloadMapNames = {"runner_wl", "runner_wl_addr",
                                                          "runner_wl_cfg", "runner_wl_stats"};
constexpr const char* kProgramPins[] = {"nat_egress", "nat_ingress", "forward_filter", "workload",
                                        "overlay_ingress"};
constexpr const char* kLog = "bpf-runner";

}  // namespace

RunnerDatapath::RunnerDatapath() = default;
RunnerDatapath::~RunnerDatapath() = default;

std::unique_ptr<RunnerDatapath> RunnerDatapath::open(const DatapathOptions& options) {
  if (options.conntrack_max_entries < 64)
    throw std::invalid_argument("conntrack size " + std::to_string(options.conntrack_max_entries) +
                                " is too small (at least 64 entries)");
  std::unique_ptr<RunnerDatapath> dp(new RunnerDatapath());
  if (!options.pin_root.empty()) dp->pin_dir_ = pin_dir_below(options.pin_root, pin_dirs::kRunner);

  // The egress object creates (or adopts, or migrates) the shared maps; the other two take them
  // by fd, so one conntrack table serves all three programs.
  bpf::PinPlan plan{dp->pin_dir_, kLog};
  plan.configure = [&](bpf_object* obj) {
    if (int err = bpf_map__set_max_entries(bpf::find_map(obj, "runner_ct"),
                                           options.conntrack_max_entries))
      bpf::fail(err, "size BPF map", "runner_ct");
  };
  dp->egress_ = std::make_unique<Egress>(KOHAKU_SKELETON(runner_nat_egress), plan);
  dp->adopted_ct_ = dp->egress_->report().adopted_or_carried("runner_ct");

  bpf::PinPlan shared{dp->pin_dir_, kLog};
  for (const char* name : kMapNames) shared.shared.emplace_back(name, dp->map_fd(name));
  dp->workload_ = std::make_unique<Workload>(KOHAKU_SKELETON(runner_workload), shared);
  dp->filter_ = std::make_unique<Filter>(KOHAKU_SKELETON(runner_forward_filter), shared);
  for (const char* name : kWorkloadMapNames)
    shared.shared.emplace_back(name, dp->workload_map_fd(name));
  dp->ingress_ = std::make_unique<Ingress>(KOHAKU_SKELETON(runner_nat_ingress), shared);
  dp->overlay_ingress_ =
      std::make_unique<OverlayIngress>(KOHAKU_SKELETON(runner_overlay_ingress), shared);

  dp->egress_->pin_program((*dp->egress_)->progs.runner_nat_egress, kProgramPins[0]);
  dp->ingress_->pin_program((*dp->ingress_)->progs.runner_nat_ingress, kProgramPins[1]);
  dp->filter_->pin_program((*dp->filter_)->progs.runner_forward_filter, kProgramPins[2]);
  dp->workload_->pin_program((*dp->workload_)->progs.runner_workload, kProgramPins[3]);
  dp->overlay_ingress_->pin_program((*dp->overlay_ingress_)->progs.runner_overlay_ingress,
                                    kProgramPins[4]);
  return dp;
}

int RunnerDatapath::map_fd(const char* name) const {
  return bpf::map_fd(egress_->obj(), name);
}
int RunnerDatapath::nat_egress_fd() const {
  return bpf_program__fd((*egress_)->progs.runner_nat_egress);
}
int RunnerDatapath::nat_ingress_fd() const {
  return bpf_program__fd((*ingress_)->progs.runner_nat_ingress);
}
int RunnerDatapath::forward_filter_fd() const {
  return bpf_program__fd((*filter_)->progs.runner_forward_filter);
}
int RunnerDatapath::workload_fd() const {
  return bpf_program__fd((*workload_)->progs.runner_workload);
}
int RunnerDatapath::overlay_ingress_fd() const {
  return bpf_program__fd((*overlay_ingress_)->progs.runner_overlay_ingress);
}
int RunnerDatapath::workload_map_fd(const char* name) const {
  return bpf::map_fd(workload_->obj(), name);
}
WorkloadMaps RunnerDatapath::workload_maps() const {
  return {workload_map_fd("runner_wl"), workload_map_fd("runner_wl_addr"),
          workload_map_fd("runner_wl_stats")};
}
int RunnerDatapath::conntrack_fd() const {
  return map_fd("runner_ct");
}

runner_config RunnerDatapath::read_config() const {
  uint32_t zero = 0;
  return bpf::map_lookup<runner_config>(map_fd("runner_config"), &zero, "runner_config");
}

void RunnerDatapath::write_config(const runner_config& v) {
  uint32_t zero = 0;
  bpf::map_update(map_fd("runner_config"), &zero, &v, "runner_config");
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

void RunnerDatapath::attach_workload(int veth_ifindex) {
  tc_attach(veth_ifindex, TcDirection::kIngress, kRunnerTcFilter, workload_fd());
}

bool RunnerDatapath::detach_workload(int veth_ifindex) {
  return tc_detach(veth_ifindex, TcDirection::kIngress, kRunnerTcFilter);
}

bool RunnerDatapath::ensure_overlay_ingress(int vxlan_ifindex) {
  return tc_ensure_attached(vxlan_ifindex, TcDirection::kIngress, kRunnerTcFilter,
                            overlay_ingress_fd());
}

void RunnerDatapath::set_fast_path_devices(uint32_t uplink_ifindex, uint32_t overlay_ifindex) {
  uint32_t zero = 0;
  runner_wl_config v{uplink_ifindex, overlay_ifindex};
  bpf::map_update(workload_map_fd("runner_wl_cfg"), &zero, &v, "runner_wl_cfg");
}

runner_wl_config RunnerDatapath::fast_path_devices() const {
  uint32_t zero = 0;
  return bpf::map_lookup<runner_wl_config>(workload_map_fd("runner_wl_cfg"), &zero,
                                           "runner_wl_cfg");
}

uint32_t RunnerDatapath::count_rules() const {
  return static_cast<uint32_t>(
      bpf::map_keys<runner_policy_key>(map_fd("runner_policy"), RUNNER_POLICY_MAX_RULES + 1)
          .size());
}

bool RunnerDatapath::add_deny_rule(const DenyRule& rule) {
  runner_policy_key key = encode_deny_rule(rule);
  runner_policy_value value{};
  if (bpf_map_update_elem(map_fd("runner_policy"), &key, &value, BPF_NOEXIST)) {
    if (errno == EEXIST) return false;
    if (errno == E2BIG || errno == ENOMEM)
      throw std::runtime_error("deny rule " + rule.to_string() + ": the policy map is full (" +
                               std::to_string(RUNNER_POLICY_MAX_RULES) + " rules)");
    bpf::fail(errno, "add deny rule", rule.to_string());
  }
  runner_config v = read_config();
  v.policy_rules = count_rules();
  write_config(v);
  return true;
}

bool RunnerDatapath::remove_deny_rule(const DenyRule& rule) {
  runner_policy_key key = encode_deny_rule(rule);
  if (!bpf::map_erase(map_fd("runner_policy"), &key, "runner_policy")) return false;
  runner_config v = read_config();
  v.policy_rules = count_rules();
  write_config(v);
  return true;
}

std::vector<DenyRuleStatus> RunnerDatapath::deny_rules() const {
  std::vector<DenyRuleStatus> out;
  for (const auto& [k, v] : bpf::map_entries<runner_policy_key, runner_policy_value>(
           map_fd("runner_policy"), RUNNER_POLICY_MAX_RULES + 1))
    out.push_back({decode_deny_rule(k), v.hits});
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
          bpf_map__max_entries(bpf::find_map(egress_->obj(), "runner_ct"))};
}

runner_stats RunnerDatapath::counters() const {
  return bpf::percpu_sum_single<runner_stats>(map_fd("runner_stats"), "runner_stats");
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
  const std::string dir = pin_dir_below(pin_root, pin_dirs::kRunner);
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return removed;
  std::vector<std::string> names(kMapNames.begin(), kMapNames.end());
  names.insert(names.end(), kWorkloadMapNames.begin(), kWorkloadMapNames.end());
  for (const char* prog : kProgramPins) names.push_back(prog);
  for (const auto& name : names) {
    std::string path = dir + "/" + name;
    if (::unlink(path.c_str()) == 0)
      removed.push_back(path);
    else if (errno != ENOENT)
      bpf::fail(errno, "remove pin", path);
  }
  ::rmdir(dir.c_str());  // only when nothing else lives there
  return removed;
}

void RunnerDatapath::unpin() {
  if (pin_dir_.empty()) return;
  for (const char* name : kMapNames) bpf_map__unpin(bpf::find_map(egress_->obj(), name), nullptr);
  for (const char* name : kWorkloadMapNames)
    bpf_map__unpin(bpf::find_map(workload_->obj(), name), nullptr);
  for (const char* prog : kProgramPins) ::unlink((pin_dir_ + "/" + prog).c_str());
  ::rmdir(pin_dir_.c_str());
}

}  // namespace kohaku::runner
