#include "host/datapath/host_datapath_mode.h"

#include <set>
#include <stdexcept>

#include "common/log.h"
#include "common/netlink/sysctl.h"
#include "common/netlink/vxlan_link.h"
#include "host/api/counters_json.h"
#include "host/bpf/host_datapath.h"
#include "host/datapath/express_stage.h"

namespace kohaku {
namespace {

constexpr const char* kLog = "datapath";

}  // namespace

HostDatapathMode::HostDatapathMode(const HostConfig& config, std::string iptables)
    : config_(config),
      requested_(config.overlay_datapath),
      kernel_(std::move(iptables)),
      active_(config.overlay_datapath),
      express_(std::make_unique<ExpressStage>(config)) {}

HostDatapathMode::~HostDatapathMode() = default;

Datapath HostDatapathMode::active() const {
  std::lock_guard lock(mu_);
  return active_;
}

bool HostDatapathMode::try_load_bpf() {
  try {
    auto dp = std::make_unique<bpf::HostDatapath>(
        bpf::HostDatapathOptions{.pin_root = config_.bpf_pin_root});
    for (const auto& name : dp->migrated_maps())
      log::info(kLog, "BPF map " + name + " migrated to this build's layout");
    log::info(kLog, "BPF datapath loaded: program host_forward id " +
                        std::to_string(dp->program_id()) + ", pinned in " + dp->pin_dir());
    bpf_ = std::move(dp);
    return true;
  } catch (const std::exception& e) {
    std::lock_guard lock(mu_);
    reason_ = std::string("BPF datapath could not be loaded: ") + e.what();
    active_ = Datapath::kKernel;
  }
  // The one warning of a fallback: everything after this is the kernel path's business.
  log::warn(kLog, reason_ +
                      "; falling back to the kernel datapath (ip_forward + iptables "
                      "FORWARD rules)");
  return false;
}

void HostDatapathMode::enter_kernel_mode() {
  auto overlay = config_.overlay_subnet.overlay_network();
  try {
    kernel_.install(overlay);
    std::lock_guard lock(mu_);
    kernel_error_.clear();
  } catch (const std::exception& e) {
    log::error(kLog, std::string("kernel datapath: ") + e.what());
    {
      std::lock_guard lock(mu_);
      kernel_error_ = e.what();
    }
    // Without the rules the kernel still forwards wherever the FORWARD policy allows it.
    try {
      netlink::ensure_sysctl("net.ipv4.ip_forward", "1");
    } catch (const std::exception& e2) {
      log::error(kLog, std::string("kernel datapath: ") + e2.what());
    }
  }
  // Leftovers of the BPF datapath: the express stage on the uplink, our filter on every vxkr device
  // (a stale program would keep redirecting with stale maps), then the pins.
  ExpressStage::remove_from_uplink(config_.host_reachable_address);
  for (const auto& dev : netlink::list_vxlans("vxkr")) {
    try {
      if (bpf::detach_host_forward(static_cast<uint32_t>(dev.link.ifindex)))
        log::info(kLog, "detached host_forward from " + dev.link.name);
    } catch (const std::exception& e) {
      log::error(kLog, "detaching host_forward from " + dev.link.name + ": " + e.what());
    }
  }
  try {
    if (size_t n = bpf::remove_host_pins(config_.bpf_pin_root))
      log::info(kLog, "removed " + std::to_string(n) + " BPF pins under " + config_.bpf_pin_root +
                          "/host");
  } catch (const std::exception& e) {
    log::error(kLog, std::string("removing BPF pins: ") + e.what());
  }
}

void HostDatapathMode::leave_kernel_mode() {
  try {
    kernel_.remove_all();
  } catch (const IptablesMissing&) {
    // A BPF-only host without iptables: no rules of ours can exist.
  } catch (const std::exception& e) {
    log::warn(kLog, std::string("cannot remove the kernel datapath's FORWARD rules: ") + e.what());
  }
}

void HostDatapathMode::start(const AnchorAddress& anchor,
                             const std::vector<TunnelDevice>& tunnels) {
  {
    std::lock_guard lock(mu_);
    for (const auto& t : tunnels) tunnels_[t.runner_id] = t;
  }
  if (requested_ == Datapath::kBpf && try_load_bpf()) {
    // Fast path in place first, then the kernel path's rules go: no gap when switching.
    reconcile_bpf(anchor, tunnels);
    express_->start(*bpf_, tunnels);
    leave_kernel_mode();
    log::info(kLog, "active datapath: bpf");
    return;
  }
  enter_kernel_mode();
  for (const auto& t : tunnels) prepare_device(t);
  log::info(kLog, "active datapath: kernel");
}

void HostDatapathMode::prepare_device(const TunnelDevice& t) {
  // The kernel's exception path (ICMP Time Exceeded, Fragmentation Needed, traffic leaving the
  // overlay) and bpf_fib_lookup both need forwarding on the ingress tunnel; enabling it per
  // device rather than through net.ipv4.ip_forward leaves every other interface as it was.
  netlink::ensure_sysctl(netlink::ipv4_conf_key(t.device, "forwarding"), "1");
}

void HostDatapathMode::tunnel_up(const TunnelDevice& t) {
  {
    std::lock_guard lock(mu_);
    tunnels_[t.runner_id] = t;
  }
  try {
    prepare_device(t);
    if (!bpf_ || active() != Datapath::kBpf) return;
    bpf_->add_host_address({t.host_addr, t.ifindex});
    bpf_->upsert_runner({t.runner_id, t.subnet, t.ifindex});
    // Replaces in place when already attached: no need to ask first.
    bpf_->attach(t.ifindex);
    express_->tunnel_up(t);
  } catch (const std::exception& e) {
    log::error(kLog, t.device + " (runner " + t.runner_name + "): " + e.what());
  }
}

void HostDatapathMode::tunnel_down(uint32_t runner_id, Ipv4Addr host_addr) {
  {
    std::lock_guard lock(mu_);
    tunnels_.erase(runner_id);
  }
  if (!bpf_ || active() != Datapath::kBpf) return;
  // The express stage first: nothing may be sent towards the runner once its tunnel goes.
  express_->tunnel_down(runner_id);
  try {
    bpf_->remove_runner(runner_id);
    bpf_->remove_host_address(host_addr);
  } catch (const std::exception& e) {
    log::error(kLog,
               "removing runner " + std::to_string(runner_id) + " from the BPF maps: " + e.what());
  }
}

void HostDatapathMode::reconcile_bpf(const AnchorAddress& anchor,
                                     const std::vector<TunnelDevice>& tunnels) {
  std::vector<bpf::RunnerRoute> routes;
  std::vector<bpf::HostAddress> addrs{{anchor.addr, anchor.ifindex}};
  for (const auto& t : tunnels) {
    routes.push_back({t.runner_id, t.subnet, t.ifindex});
    addrs.push_back({t.host_addr, t.ifindex});
  }
  try {
    bpf_->reconcile(routes, addrs);
  } catch (const std::exception& e) {
    log::error(kLog, std::string("reconciling the BPF maps: ") + e.what());
  }
  uint32_t program = bpf_->program_id();
  for (const auto& t : tunnels) {
    try {
      prepare_device(t);
      // Attaching replaces in place; only devices without our current program need it (a
      // recreated device, or the first start of a new build).
      if (bpf_->attached_program_id(t.ifindex) != program) {
        bpf_->attach(t.ifindex);
        log::info(kLog, "host_forward attached to " + t.device + " (runner " + t.runner_name + ")");
      }
    } catch (const std::exception& e) {
      log::error(kLog, t.device + " (runner " + t.runner_name + "): " + e.what());
    }
  }
}

void HostDatapathMode::reconcile(const AnchorAddress& anchor,
                                 const std::vector<TunnelDevice>& tunnels) {
  {
    std::lock_guard lock(mu_);
    tunnels_.clear();
    for (const auto& t : tunnels) tunnels_[t.runner_id] = t;
  }
  if (bpf_ && active() == Datapath::kBpf) {
    reconcile_bpf(anchor, tunnels);
    express_->reconcile(tunnels);
    return;
  }
  for (const auto& t : tunnels) {
    try {
      prepare_device(t);
    } catch (const std::exception& e) {
      log::error(kLog, t.device + ": " + e.what());
    }
  }
  try {
    kernel_.install(config_.overlay_subnet.overlay_network());
    std::lock_guard lock(mu_);
    kernel_error_.clear();
  } catch (const std::exception& e) {
    std::lock_guard lock(mu_);
    // Logged once per distinct failure, not every tick.
    if (kernel_error_ != e.what()) log::error(kLog, std::string("kernel datapath: ") + e.what());
    kernel_error_ = e.what();
  }
}

nlohmann::json HostDatapathMode::status() const {
  std::map<uint32_t, TunnelDevice> tunnels;
  nlohmann::json j;
  {
    std::lock_guard lock(mu_);
    j["requested"] = datapath_name(requested_);
    j["active"] = datapath_name(active_);
    if (!reason_.empty()) j["reason"] = reason_;
    if (!kernel_error_.empty()) j["error"] = kernel_error_;
    tunnels = tunnels_;
  }
  nlohmann::json counters = nlohmann::json::array();
  if (bpf_ && j["active"] == "bpf") {
    j["pin_dir"] = bpf_->pin_dir();
    try {
      j["program_id"] = bpf_->program_id();
      for (const auto& [id, c] : bpf_->all_counters()) {
        // Runner 0 collects packets from devices that are not registered tunnels: shown only
        // when something arrived there.
        if (id == 0 && c.sum.fwd_packets + c.pass_packets() + c.drop_packets() == 0) continue;
        nlohmann::json row = {{"runner_id", id}};
        auto t = tunnels.find(id);
        row["runner_name"] = t != tunnels.end() ? nlohmann::json(t->second.runner_name) : nullptr;
        row["device"] = t != tunnels.end() ? nlohmann::json(t->second.device) : nullptr;
        row.update(counters_json(c.named(), c.pass_packets(), c.drop_packets()));
        counters.push_back(row);
      }
    } catch (const std::exception& e) {
      j["error"] = std::string("reading the BPF counters: ") + e.what();
    }
  }
  j["counters"] = counters;
  if (bpf_ && j["active"] == "bpf") {
    j["express"] = express_->status([&tunnels](uint32_t id) {
      auto t = tunnels.find(id);
      return t != tunnels.end() ? nlohmann::json(t->second.runner_name) : nlohmann::json(nullptr);
    });
  }
  return j;
}

}  // namespace kohaku
