#include "runner/datapath/fast_path.h"

#include <stdexcept>

#include "common/bpf/tc_filter.h"
#include "common/log.h"
#include "runner/bpf/runner_datapath.h"

namespace kohaku::runner {
namespace {

constexpr const char* kLog = "fast-path";

}  // namespace

bool FastPath::every_source_reported() const {
  for (const std::string& source : expected_)
    if (!sources_.count(source)) return false;
  return true;
}

void FastPath::set_workloads(const std::string& source, std::vector<FastPathWorkload> workloads) {
  sources_[source] = std::move(workloads);
}

void FastPath::reconcile(uint32_t uplink_ifindex, uint32_t overlay_ifindex) {
  auto warn_once = [this](const std::string& message) {
    if (warned_.insert(message).second) log::warn(kLog, message);
  };
  const runner_wl_config devices = dp_.fast_path_devices();
  if (devices.uplink_ifindex != uplink_ifindex || devices.overlay_ifindex != overlay_ifindex)
    dp_.set_fast_path_devices(uplink_ifindex, overlay_ifindex);
  if (overlay_ifindex != 0) {
    try {
      if (dp_.ensure_overlay_ingress(static_cast<int>(overlay_ifindex)))
        log::info(kLog, "runner_overlay_ingress attached to vxlan0");
    } catch (const std::exception& e) {
      warn_once(std::string("no fast path from the hub, its traffic takes the bridge: ") +
                e.what());
    }
  }

  // What the machine shows for every workload the sources name.
  std::vector<WorkloadEntry> entries;
  std::map<uint32_t, FastPathWorkload> found;
  std::set<uint32_t> addresses;
  std::map<std::string, std::optional<netlink::LinkInfo>> bridges;
  for (const auto& [source, workloads] : sources_) {
    for (const FastPathWorkload& w : workloads) {
      auto veth = netlink::find_link(w.host_veth);
      if (!bridges.count(w.bridge)) bridges[w.bridge] = netlink::find_link(w.bridge);
      const auto& bridge = bridges[w.bridge];
      if (!veth || !bridge || veth->master_ifindex != bridge->ifindex) continue;  // not yet
      if (!addresses.insert(w.ip.value).second) {
        warn_once(w.label + ": address " + w.ip.to_string() +
                  " is claimed twice; its traffic takes the bridge");
        continue;
      }
      const auto ifindex = static_cast<uint32_t>(veth->ifindex);
      entries.push_back({ifindex, w.ip, w.prefix, w.mac, bridge->mac,
                         static_cast<uint32_t>(bridge->ifindex), true});
      found[ifindex] = w;
    }
  }
  // Attach first where the maps already know the workload, then make the maps match: a veth
  // whose program cannot attach is left out of the maps, so it keeps the bridge path.
  std::vector<WorkloadEntry> served;
  for (const WorkloadEntry& e : entries) {
    const FastPathWorkload& w = found[e.ifindex];
    try {
      runner::upsert_workload(dp_.workload_maps(), e);
      if (tc_ensure_attached(static_cast<int>(e.ifindex), TcDirection::kIngress, kRunnerTcFilter,
                             dp_.workload_fd()))
        log::info(kLog, "runner_workload attached to " + w.host_veth + " (" + w.label + ")");
      attached_[e.ifindex] = w.label;
      served.push_back(e);
    } catch (const std::exception& ex) {
      runner::remove_workload(dp_.workload_maps(), e.ifindex);
      attached_.erase(e.ifindex);
      warn_once(w.label + ": no fast path on " + w.host_veth +
                ", its traffic takes the bridge: " + ex.what());
    }
  }
  served_.clear();
  for (const WorkloadEntry& e : served) served_[e.ifindex] = found[e.ifindex];
  // The first passes of a restarted daemon run before all sources have reported (apply() of the
  // overlay, then one source after the other): what the maps hold beyond `served` may be a
  // workload of a source not heard from yet. Removing it would take it off the fast path until
  // that source reports, and reset its counters.
  if (!every_source_reported()) return;
  runner::sync_workloads(dp_.workload_maps(), served);
  for (auto it = attached_.begin(); it != attached_.end();) {
    if (found.count(it->first)) {
      ++it;
      continue;
    }
    try {
      dp_.detach_workload(static_cast<int>(it->first));  // false when the veth is gone
    } catch (const std::exception& ex) {
      warn_once("detaching runner_workload from ifindex " + std::to_string(it->first) + ": " +
                ex.what());
    }
    it = attached_.erase(it);
  }
}

std::vector<std::string> FastPath::disable(const std::set<std::string>& bridges) {
  dp_.set_fast_path_devices(0, 0);  // first: no redirect from here on, whatever is attached
  runner::sync_workloads(dp_.workload_maps(), {});
  std::set<int> bridge_ifindexes;
  const auto links = netlink::list_links();
  for (const auto& link : links)
    if (bridges.count(link.name)) bridge_ifindexes.insert(link.ifindex);
  // Both programs sit on the TC ingress of bridge ports (the workloads' veths, vxlan0); the
  // uplink and the bridges themselves carry other programs under the same handle.
  std::vector<std::string> removed;
  for (const auto& link : links)
    if (bridge_ifindexes.count(link.master_ifindex) && dp_.detach_workload(link.ifindex))
      removed.push_back(link.name);
  attached_.clear();
  served_.clear();
  return removed;
}

nlohmann::json FastPath::status() const {
  nlohmann::json out = nlohmann::json::array();
  std::map<uint32_t, runner_wl_stats> counters;
  try {
    counters = read_workload_counters(dp_.workload_maps());
  } catch (const std::exception&) {
    // Counters are informative: the list of workloads is still right without them.
  }
  for (const auto& [ifindex, w] : served_) {
    nlohmann::json j{{"workload", w.label}, {"veth", w.host_veth}, {"ip", w.ip.to_string()}};
    if (auto c = counters.find(ifindex); c != counters.end()) {
      const runner_wl_stats& s = c->second;
      j["counters"] = {{"fwd_fib", s.fwd_fib},
                       {"fwd_neigh", s.fwd_neigh},
                       {"fwd_peer", s.fwd_peer},
                       {"delivered", s.delivered},
                       {"pass_l2", s.pass_l2},
                       {"pass_local", s.pass_local},
                       {"pass_kernel", s.pass_kernel},
                       {"drop_spoofed_mac", s.drop_spoofed_mac},
                       {"drop_spoofed_ip", s.drop_spoofed_ip},
                       {"drop_denied", s.drop_denied},
                       {"drop_isolated", s.drop_isolated},
                       {"bytes_fwd", s.bytes_fwd}};
    }
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace kohaku::runner
