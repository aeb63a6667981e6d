#include "runner/datapath/runner_datapath_mode.h"

#include <bpf/bpf.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <stdexcept>

#include "common/domain_error.h"
#include "common/log.h"
#include "common/netlink/link.h"
#include "common/wall_clock.h"
#include "runner/bpf/runner_datapath.h"
#include "runner/datapath/deny_rule_json.h"
#include "runner/l2_device_names.h"
#include "runner/overlay/overlay_setup.h"

namespace kohaku::runner {

using nlohmann::json;

namespace {

constexpr const char* kLog = "datapath";

uint32_t program_id(int prog_fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return 0;
  return info.id;
}

bool ensure_attached(int ifindex, TcDirection direction, int prog_fd) {
  return tc_ensure_attached(ifindex, direction, kRunnerTcFilter, prog_fd);
}

}  // namespace

NatConfig nat_config_for(const RunnerConfig& config, const Ipv4Cidr& overlay, Ipv4Addr uplink) {
  NatConfig c;
  c.overlay = overlay;
  c.uplink = uplink;
  c.port_min = config.overlay_nat_port_min;
  c.port_max = config.overlay_nat_port_max;
  c.vxlan_port = config.overlay_vxlan_port;
  c.timeouts.udp = config.overlay_nat_udp_timeout_seconds;
  c.timeouts.udp_stream = config.overlay_nat_udp_stream_timeout_seconds;
  return c;
}

RunnerDatapathMode::RunnerDatapathMode(const RunnerConfig& config, std::string iptables)
    : config_(config),
      requested_(config.overlay_datapath),
      rule_store_(std::filesystem::path(config.state_dir) / "deny-rules.json"),
      iptables_(std::move(iptables)) {}

RunnerDatapathMode::~RunnerDatapathMode() = default;

void RunnerDatapathMode::note_error(const std::string& what) {
  if (error_ != what) log::error(kLog, what);
  error_ = what;
}

void RunnerDatapathMode::clear_error() {
  if (!error_.empty()) log::info(kLog, "recovered from: " + error_);
  error_.clear();
}

bool RunnerDatapathMode::try_load_bpf() {
  try {
    bpf_ = RunnerDatapath::open(DatapathOptions{
        .pin_root = config_.bpf_pin_root, .conntrack_max_entries = config_.overlay_conntrack_max});
    log::info(kLog, std::string("BPF datapath loaded, pinned in ") + bpf_->pin_dir() +
                        (bpf_->adopted_conntrack()
                             ? "; adopted the previous daemon's conntrack table (" +
                                   std::to_string(bpf_->table_usage().entries) + " entries)"
                             : std::string()));
    restore_deny_rules();
    fast_path_ = std::make_unique<FastPath>(
        *bpf_, std::set<std::string>{kFastPathRunnerSource, kFastPathDockerSource});
    return true;
  } catch (const std::exception& e) {
    fast_path_.reset();
    bpf_.reset();
    reason_ = std::string("BPF datapath could not be loaded: ") + e.what();
  }
  // The one warning of a fallback: everything after it is the kernel path's business.
  log::warn(kLog, reason_ +
                      "; falling back to the kernel datapath (iptables FORWARD accept and nat "
                      "MASQUERADE)");
  return false;
}

void RunnerDatapathMode::apply(const Ipv4Cidr& overlay, Ipv4Addr host,
                               std::optional<Ipv4Addr> physical) {
  std::lock_guard lock(mu_);
  if (!active_) {
    active_ = requested_ == Datapath::kBpf && try_load_bpf() ? Datapath::kBpf : Datapath::kKernel;
    log::info(kLog, std::string("active datapath: ") + std::string(datapath_name(*active_)));
  }
  overlay_ = overlay;
  if (*active_ == Datapath::kBpf) {
    apply_bpf(overlay, host, physical);
    apply_named_bpf();
    // Fast path in place first, then the kernel path's rules go: no gap when switching.
    if (!other_mode_cleaned_ && error_.empty()) {
      leave_kernel_mode();
      other_mode_cleaned_ = true;
    }
  } else {
    apply_kernel(overlay);
    if (!other_mode_cleaned_) {
      leave_bpf_mode();
      other_mode_cleaned_ = true;
    }
  }
}

void RunnerDatapathMode::apply_bpf(const Ipv4Cidr& overlay, Ipv4Addr host,
                                   std::optional<Ipv4Addr> physical) {
  Uplink uplink;
  try {
    std::vector<std::string> bridges{config_.overlay_bridge_name};
    for (const auto& n : named_) bridges.push_back(l2_bridge_name(n.name));
    uplink = find_uplink(host, physical, bridges);
  } catch (const std::exception& e) {
    // Programs and configuration stay as they were: flows keep going if the route comes back.
    note_error(std::string("cannot masquerade: ") + e.what());
    return;
  }
  try {
    const NatConfig want = nat_config_for(config_, overlay, uplink.addr);
    const auto have = bpf_->configuration();
    if (have != want) {
      if (have && have->uplink != want.uplink) {
        uint64_t dropped = bpf_->forget_flows_via(have->uplink);
        log::warn(kLog, "uplink address changed from " + have->uplink.to_string() + " to " +
                            want.uplink.to_string() + "; dropped " + std::to_string(dropped) +
                            " conntrack entries masqueraded behind the old address");
      }
      bpf_->configure(want);
      log::info(kLog, "masquerade " + overlay.to_string() + " -> outside as " +
                          uplink.addr.to_string() + " on " + uplink.dev + " (" + uplink.why +
                          "), ports " + std::to_string(want.port_min) + "-" +
                          std::to_string(want.port_max));
    }
    if (uplink_ && uplink_->ifindex != uplink.ifindex) {
      // The outside moved to another device: our programs leave the old one.
      try {
        bpf_->detach_uplink(uplink_->ifindex);
        log::info(kLog, "masquerade detached from the former uplink " + uplink_->dev);
      } catch (const std::exception& e) {
        log::warn(kLog, "detaching from the former uplink " + uplink_->dev + ": " + e.what());
      }
    }
    bool a = ensure_attached(uplink.ifindex, TcDirection::kEgress, bpf_->nat_egress_fd());
    bool b = ensure_attached(uplink.ifindex, TcDirection::kIngress, bpf_->nat_ingress_fd());
    if (a || b) log::info(kLog, "runner_nat_egress/runner_nat_ingress attached to " + uplink.dev);
    uplink_ = uplink;

    const std::string& bridge_name = config_.overlay_bridge_name;
    const auto bridge = netlink::find_link(bridge_name);
    if (!bridge) throw std::runtime_error("bridge " + bridge_name + " is missing");
    if (ensure_attached(bridge->ifindex, TcDirection::kEgress, bpf_->forward_filter_fd()))
      log::info(kLog, "runner_forward_filter attached to " + bridge_name);
    attached_bridge_ = bridge->ifindex;
    apply_fast_path(static_cast<uint32_t>(uplink.ifindex));
    clear_error();
  } catch (const std::exception& e) {
    note_error(std::string("BPF datapath: ") + e.what());
  }
}

void RunnerDatapathMode::set_fast_path_workloads(const std::string& source,
                                                 std::vector<FastPathWorkload> workloads) {
  std::lock_guard lock(mu_);
  fast_sources_[source] = std::move(workloads);
  if (active_ != Datapath::kBpf || !uplink_) return;  // the next apply() takes them
  try {
    apply_fast_path(static_cast<uint32_t>(uplink_->ifindex));
  } catch (const std::exception& e) {
    note_error(std::string("fast path: ") + e.what());
  }
}

std::set<std::string> RunnerDatapathMode::fast_path_bridges() const {
  std::lock_guard lock(mu_);
  return kohaku_bridges();
}

std::set<std::string> RunnerDatapathMode::kohaku_bridges() const {
  std::set<std::string> out{config_.overlay_bridge_name};
  for (const auto& n : named_) out.insert(l2_bridge_name(n.name));
  return out;
}

void RunnerDatapathMode::apply_fast_path(uint32_t uplink_ifindex) {
  if (!fast_path_) return;
  if (!config_.overlay_fast_path) {
    if (fast_path_cleared_) return;  // nothing of ours gets attached while it is off
    for (const auto& dev : fast_path_->disable(kohaku_bridges()))
      log::info(kLog, "OVERLAY_FAST_PATH is off: detached the fast path from " + dev);
    fast_path_cleared_ = true;
    return;
  }
  const auto vxlan = netlink::find_link(kOverlayVxlan);
  for (const auto& [source, workloads] : fast_sources_)
    fast_path_->set_workloads(source, workloads);
  fast_path_->reconcile(uplink_ifindex, vxlan ? static_cast<uint32_t>(vxlan->ifindex) : 0);
}

void RunnerDatapathMode::apply_kernel(const Ipv4Cidr& overlay) {
  try {
    std::vector<IptablesNetwork> named;
    for (const auto& n : named_) named.push_back({n.subnet, n.outbound_nat});
    iptables_.install(overlay, named);
    clear_error();
  } catch (const std::exception& e) {
    note_error(std::string("kernel datapath: ") + e.what());
  }
}

void RunnerDatapathMode::leave_kernel_mode() {
  try {
    if (size_t n = iptables_.remove_all())
      log::info(kLog, "removed " + std::to_string(n) + " iptables rules of the kernel datapath");
  } catch (const std::exception& e) {
    log::warn(kLog, std::string("cannot remove the kernel datapath's iptables rules: ") + e.what());
  }
}

void RunnerDatapathMode::leave_bpf_mode() {
  try {
    for (const auto& where : RunnerDatapath::detach_everywhere())
      log::info(kLog, "detached the runner's BPF program from " + where);
    auto pins = RunnerDatapath::remove_pins(config_.bpf_pin_root);
    if (!pins.empty())
      log::info(kLog, "removed " + std::to_string(pins.size()) + " BPF pins under " +
                          config_.bpf_pin_root + "/runner");
  } catch (const std::exception& e) {
    log::error(kLog, std::string("removing the BPF datapath's leftovers: ") + e.what());
  }
}

void RunnerDatapathMode::remove_all() {
  std::lock_guard lock(mu_);
  fast_path_.reset();
  bpf_.reset();
  named_bridges_.clear();
  leave_bpf_mode();
  leave_kernel_mode();
}

void RunnerDatapathMode::collect_garbage() {
  std::lock_guard lock(mu_);
  if (!bpf_ || active_ != Datapath::kBpf) return;
  try {
    ConntrackSweep s = bpf_->collect_garbage();
    ++gc_runs_;
    gc_flows_expired_ += s.flows_expired;
    gc_orphans_removed_ += s.orphans_removed;
    gc_last_ms_ = unix_time_ms();
    gc_last_ = json{{"scanned", s.scanned},
                    {"flows_live", s.flows_live},
                    {"flows_expired", s.flows_expired},
                    {"orphans_removed", s.orphans_removed},
                    {"host_flows_live", s.host_flows_live},
                    {"host_flows_expired", s.host_flows_expired}};
    if (s.flows_expired + s.orphans_removed + s.host_flows_expired > 0)
      log::debug(kLog, "conntrack GC: " + gc_last_.dump());
  } catch (const std::exception& e) {
    note_error(std::string("conntrack garbage collection: ") + e.what());
  }
}

json RunnerDatapathMode::status() const {
  std::lock_guard lock(mu_);
  json j;
  j["requested"] = datapath_name(requested_);
  j["active"] = active_ ? json(datapath_name(*active_)) : json(nullptr);
  if (!reason_.empty()) j["reason"] = reason_;
  if (!error_.empty()) j["error"] = error_;
  if (overlay_) j["overlay_network"] = overlay_->to_string();
  j["named_networks"] = named_status();
  if (!named_error_.empty()) j["named_networks_error"] = named_error_;
  if (!active_ || *active_ == Datapath::kKernel) {
    if (active_) {
      try {
        j["iptables_rules"] = iptables_.rules();
      } catch (const std::exception& e) {
        j["error"] = e.what();
      }
    }
    return j;
  }
  j["pin_dir"] = bpf_->pin_dir();
  j["adopted_conntrack"] = bpf_->adopted_conntrack();
  if (uplink_) {
    j["uplink"] = {{"device", uplink_->dev},
                   {"ifindex", uplink_->ifindex},
                   {"address", uplink_->addr.to_string()},
                   {"chosen_by", uplink_->why}};
  } else {
    j["uplink"] = nullptr;
  }
  try {
    if (auto c = bpf_->configuration()) {
      j["nat"] = {{"address", c->uplink.to_string()},
                  {"port_min", c->port_min},
                  {"port_max", c->port_max},
                  {"vxlan_port", c->vxlan_port},
                  {"udp_timeout_seconds", c->timeouts.udp},
                  {"udp_stream_timeout_seconds", c->timeouts.udp_stream},
                  {"tcp_established_timeout_seconds", c->timeouts.tcp_established}};
    }
    TableUsage use = bpf_->table_usage();
    j["conntrack"] = {{"entries", use.entries}, {"max", use.max_entries}};
    json counters = json::object();
    for (const auto& [name, value] : RunnerDatapath::named_counters(bpf_->counters()))
      counters[name] = value;
    j["counters"] = counters;
    json rules = json::array();
    for (const auto& r : bpf_->deny_rules()) rules.push_back(deny_rule_status_to_json(r));
    j["deny_rules"] = rules;
    j["fast_path_enabled"] = config_.overlay_fast_path;
    if (fast_path_) j["fast_path"] = fast_path_->status();
  } catch (const std::exception& e) {
    j["error"] = std::string("reading the BPF maps: ") + e.what();
  }
  j["gc"] = {{"runs", gc_runs_},
             {"flows_expired", gc_flows_expired_},
             {"orphans_removed", gc_orphans_removed_},
             {"last_at_ms", gc_last_ms_},
             {"last", gc_last_}};
  return j;
}

void RunnerDatapathMode::note_named_error(const std::string& what) {
  if (named_error_ != what) log::error(kLog, what);
  named_error_ = what;
}

void RunnerDatapathMode::set_named_networks(const std::vector<wire::L2NetworkView>& applied) {
  std::vector<NamedNet> nets;
  for (const auto& v : applied)
    nets.push_back({v.name, v.vni,
                    Ipv4Cidr{Ipv4Addr{v.subnet.addr.value & v.subnet.mask()}, v.subnet.prefix},
                    v.outbound_nat});
  std::lock_guard lock(mu_);
  const bool changed = nets != named_;
  named_ = std::move(nets);
  if (changed) fast_path_cleared_ = false;  // a network's bridge to sweep when the fast path is off
  if (!active_) return;                     // apply() takes them along once the datapath is chosen
  if (*active_ == Datapath::kBpf) {
    apply_named_bpf();  // also when unchanged: the agent may just have rebuilt a bridge
  } else if (changed && overlay_) {
    apply_kernel(*overlay_);
  }
}

void RunnerDatapathMode::apply_named_bpf() {
  if (!bpf_) return;
  std::string err;
  try {
    std::vector<NetEntry> entries;
    std::string list;
    for (const auto& n : named_) {
      entries.push_back({n.subnet, n.vni, n.outbound_nat});
      list += (list.empty() ? "" : ", ") + n.name + " " + n.subnet.to_string() +
              (n.outbound_nat ? " (nat)" : " (no nat)");
    }
    if (bpf_->set_named_networks(entries) > 0)
      log::info(kLog, "named networks in runner_nets: " + (list.empty() ? "none" : list));
  } catch (const std::exception& e) {
    err = std::string("named networks: ") + e.what();
  }

  std::map<std::string, int> attached;
  for (const auto& n : named_) {
    const std::string bridge = l2_bridge_name(n.name);
    const auto link = netlink::find_link(bridge);
    if (!link) continue;  // not built (yet) by the L2 agent: the next pass attaches
    try {
      if (ensure_attached(link->ifindex, TcDirection::kEgress, bpf_->forward_filter_fd()))
        log::info(kLog,
                  "runner_forward_filter attached to " + bridge + " (network " + n.name + ")");
      attached[n.name] = link->ifindex;
    } catch (const std::exception& e) {
      if (err.empty()) err = "forward filter on " + bridge + ": " + e.what();
    }
  }
  for (const auto& [name, ifindex] : named_bridges_) {
    if (attached.count(name)) continue;
    // The network left (its bridge is normally gone with it) or the bridge vanished.
    const auto link = netlink::find_link(l2_bridge_name(name));
    if (!link || link->ifindex != ifindex) continue;
    try {
      tc_detach(ifindex, TcDirection::kEgress, kRunnerTcFilter);
      log::info(kLog, "runner_forward_filter detached from " + link->name + " (network " + name +
                          " left)");
    } catch (const std::exception& e) {
      log::warn(kLog, "detaching the forward filter from " + link->name + ": " + e.what());
    }
  }
  named_bridges_ = std::move(attached);
  if (!err.empty()) {
    note_named_error(err);
  } else if (!named_error_.empty()) {
    log::info(kLog, "recovered from: " + named_error_);
    named_error_.clear();
  }
}

json RunnerDatapathMode::named_status() const {
  json out = json::array();
  std::vector<NetEntry> in_map;
  uint32_t filter_id = 0;
  if (active_ == Datapath::kBpf && bpf_) {
    try {
      in_map = bpf_->named_networks();
      filter_id = program_id(bpf_->forward_filter_fd());
    } catch (const std::exception&) {
      // Shown as not applied; the map read error itself surfaces in the counters block.
    }
  }
  for (const auto& n : named_) {
    json j{{"name", n.name},
           {"subnet", n.subnet.to_string()},
           {"id", n.vni},
           {"outbound_nat", n.outbound_nat},
           {"bridge", l2_bridge_name(n.name)}};
    const auto link = netlink::find_link(l2_bridge_name(n.name));
    j["bridge_exists"] = link.has_value();
    if (active_ == Datapath::kBpf) {
      const NetEntry want{n.subnet, n.vni, n.outbound_nat};
      j["in_runner_nets"] = std::find(in_map.begin(), in_map.end(), want) != in_map.end();
      j["filter_attached"] =
          link && filter_id != 0 &&
          tc_attached_program(link->ifindex, TcDirection::kEgress, kRunnerTcFilter) == filter_id;
    }
    out.push_back(j);
  }
  return out;
}

}  // namespace kohaku::runner
