#include "runner/l2/l2_network_agent.h"

#include <chrono>
#include <filesystem>

#include "common/api_error.h"
#include "common/domain_error.h"
#include "common/json_parse.h"
#include "common/log.h"
#include "common/netlink/address.h"
#include "common/netlink/bridge_link.h"
#include "common/netlink/fdb.h"
#include "common/netlink/link.h"
#include "common/netlink/sysctl.h"
#include "common/netlink/vxlan_link.h"
#include "common/wall_clock.h"
#include "runner/overlay/host_api.h"
#include "runner/overlay/host_link.h"

namespace kohaku::runner {

using nlohmann::json;
namespace nl = kohaku::netlink;

namespace {

constexpr std::string_view kLog = "l2";

// A named network is IPv4: neither its bridge (the gateway) nor the vxlan port needs IPv6, and
// with it they send neighbour discovery and MLD to every member (the bridge's with the shared
// gateway MAC). Switched off right after each device appears, before the vxlan device has flood
// entries, so none of it ever crosses. A kernel without IPv6 has nothing to switch off.
void quiet_ipv6(const std::string& dev) {
  const std::string key = "net/ipv6/conf/" + dev + "/disable_ipv6";
  try {
    nl::ensure_sysctl(key, "1");
  } catch (const std::exception&) {
    if (std::filesystem::exists("/proc/sys/net/ipv6")) throw;
  }
}

}  // namespace

L2NetworkAgent::L2NetworkAgent(RunnerConfig config, std::string hostname)
    : config_(std::move(config)), hostname_(std::move(hostname)) {}

L2NetworkAgent::~L2NetworkAgent() {
  stop();
}

void L2NetworkAgent::start() {
  thread_ = std::thread([this] {
    for (;;) {
      poll_once();
      std::unique_lock lock(stop_mu_);
      if (stop_cv_.wait_for(lock, std::chrono::seconds(config_.heartbeat_interval_seconds),
                            [this] { return stopping_; }))
        return;
    }
  });
}

void L2NetworkAgent::stop() {
  {
    std::lock_guard lock(stop_mu_);
    stopping_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

std::optional<Ipv4Addr> L2NetworkAgent::physical() const {
  try {
    return physical_ip(config_);
  } catch (const std::exception& e) {
    log::warn(kLog, e.what());
    return std::nullopt;
  }
}

bool L2NetworkAgent::newer_locked(const std::string& name, uint64_t revision) const {
  auto it = seen_revision_.find(name);
  return it == seen_revision_.end() || revision >= it->second;
}

void L2NetworkAgent::apply_locked(const L2NetworkView& v, bool force) {
  auto local = physical();
  if (!local) throw std::runtime_error("no physical address to send VXLAN from");
  auto old = applied_.find(v.name);
  if (old != applied_.end() && old->second.vni != v.vni) drop_locked(v.name);
  const bool known = applied_.count(v.name) && applied_.at(v.name).same_devices(v);
  if (known && !force) {
    applied_[v.name] = v;
    return;
  }
  const std::string bridge = l2_bridge_name(v.name), vxlan = l2_vxlan_name(v.vni);
  // The same gateway address and MAC on every member: a workload's gateway is always local,
  // and the duplicate ARP answers that flood in from other members agree with it.
  nl::ensure_bridge(bridge, v.mtu, true, nl::MacAddr::stable_for(v.gateway));
  quiet_ipv6(bridge);
  nl::ensure_address(bridge, nl::IfAddr{v.gateway, v.subnet.prefix});
  nl::VxlanSpec s;
  s.name = vxlan;
  s.vni = v.vni;
  s.local = *local;
  s.fdb_only = true;
  s.learning = true;  // MACs behind each peer are learned from the traffic that comes back
  s.port = v.port;
  s.mtu = v.mtu;
  nl::ensure_vxlan(s);
  quiet_ipv6(vxlan);
  // The guard goes on before the device joins the bridge and gets its flood entries: the
  // bridge's first IPv6 neighbour discovery (sourced by the shared MAC) must not reach a peer.
  sync_guard_locked(&v);
  nl::ensure_bridge_port(bridge, vxlan);
  std::set<Ipv4Addr> peers(v.peers.begin(), v.peers.end());
  peers.erase(*local);
  nl::ensure_flood_destinations(vxlan, peers);
  // When firewalld runs, it must not filter the segment (kcore's networks are trusted too).
  firewall_.trust(bridge);
  firewall_.trust(vxlan);
  if (!known)
    log::info(kLog, "network '" + v.name + "': " + bridge + " " + v.gateway.to_string() + "/" +
                        std::to_string(v.subnet.prefix) + ", " + vxlan + " with " +
                        std::to_string(peers.size()) + " peer(s)");
  applied_[v.name] = v;
  errors_.erase(v.name);
}

void L2NetworkAgent::drop_locked(const std::string& name) {
  auto it = applied_.find(name);
  if (it == applied_.end()) return;
  nl::delete_link_if_exists(l2_vxlan_name(it->second.vni));
  nl::delete_link_if_exists(l2_bridge_name(name));
  firewall_.forget(l2_vxlan_name(it->second.vni));
  firewall_.forget(l2_bridge_name(name));
  log::info(kLog, "left network '" + name + "': removed " + l2_bridge_name(name) + " and " +
                      l2_vxlan_name(it->second.vni));
  applied_.erase(it);
  errors_.erase(name);
  sync_guard_locked();
}

void L2NetworkAgent::sync_guard_locked(const L2NetworkView* pending) {
  if (config_.overlay_datapath == Datapath::kKernel) return;
  if (!guard_ && applied_.empty() && !pending) return;  // loaded with the first network
  std::string error;
  try {
    if (!guard_) {
      guard_ = L2GatewayGuard::open(config_.bpf_pin_root);
      log::info(kLog, "gateway guard loaded, pinned in " + guard_->pin_dir());
    }
    std::map<int, L2Gateway> wanted;
    auto want = [&](const L2NetworkView& v) {
      if (auto link = nl::find_link(l2_vxlan_name(v.vni)))
        wanted[link->ifindex] = {v.gateway, nl::MacAddr::stable_for(v.gateway)};
    };
    for (const auto& [name, v] : applied_) want(v);
    if (pending) want(*pending);
    guard_->sync(wanted);
  } catch (const std::exception& e) {
    error = std::string("gateway guard: ") + e.what();
  }
  if (!error.empty() && error != guard_error_)
    log::warn(kLog, error + " (ARP for the gateway is flooded to the peers meanwhile)");
  else if (error.empty() && !guard_error_.empty())
    log::info(kLog, "gateway guard recovered from: " + guard_error_);
  guard_error_ = error;
}

void L2NetworkAgent::remove_stale_devices_locked() {
  std::set<std::string> wanted;
  for (const auto& [name, _] : applied_) wanted.insert(l2_bridge_name(name));
  for (const auto& link : nl::list_links({}, "bridge")) {
    if (!is_l2_bridge_name(link.name) || wanted.count(link.name)) continue;
    for (const auto& port : nl::bridge_ports(link.name)) {
      if (!port.starts_with("vxlan")) continue;
      nl::delete_link_if_exists(port);
      firewall_.forget(port);
    }
    nl::delete_link_if_exists(link.name);
    firewall_.forget(link.name);
    log::info(kLog, "removed " + link.name + " of a network we are no longer a member of");
  }
}

void L2NetworkAgent::notify_listeners() {
  if (listeners_.empty()) return;
  std::lock_guard order(notify_mu_);
  std::vector<L2NetworkView> snapshot;
  {
    std::lock_guard lock(mu_);
    for (const auto& [_, v] : applied_) snapshot.push_back(v);
  }
  for (const auto& listener : listeners_) listener(snapshot);
}

json L2NetworkAgent::put(const std::string& name, const json& body) {
  json answer = put_view(name, body);
  notify_listeners();
  return answer;
}

json L2NetworkAgent::put_view(const std::string& name, const json& body) {
  L2NetworkView v = L2NetworkView::from_json(name, body);
  std::lock_guard lock(mu_);
  if (!newer_locked(name, v.revision))
    return {{"applied", false},
            {"reason", "older than revision " + std::to_string(seen_revision_[name])}};
  seen_revision_[name] = v.revision;
  try {
    apply_locked(v, true);
  } catch (const std::exception& e) {
    errors_[name] = e.what();
    throw DomainError(ErrorKind::kInternal, "cannot set up network '" + name + "': " + e.what());
  }
  return {{"applied", true}, {"network", v.to_json()}};
}

json L2NetworkAgent::remove(const std::string& name, std::optional<uint64_t> revision) {
  json answer = remove_view(name, revision);
  notify_listeners();
  return answer;
}

json L2NetworkAgent::remove_view(const std::string& name, std::optional<uint64_t> revision) {
  std::lock_guard lock(mu_);
  if (revision) {
    if (!newer_locked(name, *revision)) return {{"removed", false}, {"reason", "older revision"}};
    seen_revision_[name] = *revision;
  }
  if (!applied_.count(name))
    throw DomainError(ErrorKind::kNotFound, "not a member of network '" + name + "'");
  try {
    drop_locked(name);
  } catch (const std::exception& e) {
    throw DomainError(ErrorKind::kInternal, "cannot remove network '" + name + "': " + e.what());
  }
  return {{"removed", true}, {"name", name}};
}

void L2NetworkAgent::poll_once() {
  poll_host();
  notify_listeners();
}

void L2NetworkAgent::poll_host() {
  json answer;
  try {
    answer = host(std::chrono::seconds(5)).l2_networks_of(hostname_);
  } catch (const std::exception& e) {
    std::lock_guard lock(mu_);
    if (last_poll_error_.empty()) log::warn(kLog, std::string("cannot poll networks: ") + e.what());
    last_poll_error_ = e.what();
    return;
  }
  std::lock_guard lock(mu_);
  last_poll_error_.clear();
  last_poll_ms_ = unix_time_ms();
  const uint64_t revision = answer.value("revision", uint64_t{0});
  uint64_t highest = 0;
  for (const auto& [_, r] : seen_revision_) highest = std::max(highest, r);
  // A host that lost its state restarts counting. One answer older than what we applied is
  // just a poll that crossed a push; the host's revision only grows, so two in a row mean
  // a reset: start over rather than ignore the host forever.
  backwards_polls_ = revision < highest ? backwards_polls_ + 1 : 0;
  if (backwards_polls_ >= 2) {
    log::warn(kLog, "the host's network revision went back from " + std::to_string(highest) +
                        " to " + std::to_string(revision) + "; following it");
    seen_revision_.clear();
    backwards_polls_ = 0;
  }
  std::set<std::string> listed;
  for (const auto& j : answer.value("networks", json::array())) {
    const std::string name = j.value("name", "");
    try {
      L2NetworkView v = L2NetworkView::from_json(name, j);
      listed.insert(name);
      if (!newer_locked(name, v.revision)) continue;
      seen_revision_[name] = v.revision;
      apply_locked(v, true);  // also repairs drift (a deleted device, a lost FDB entry)
    } catch (const std::exception& e) {
      if (errors_[name] != e.what()) log::error(kLog, "network '" + name + "': " + e.what());
      errors_[name] = e.what();
    }
  }
  std::vector<std::string> gone;
  for (const auto& [name, _] : applied_)
    if (!listed.count(name) && newer_locked(name, revision)) gone.push_back(name);
  for (const auto& name : gone) {
    try {
      seen_revision_[name] = revision;
      drop_locked(name);
    } catch (const std::exception& e) {
      log::error(kLog, "cannot remove network '" + name + "': " + e.what());
    }
  }
  try {
    remove_stale_devices_locked();
  } catch (const std::exception& e) {
    log::warn(kLog, std::string("stale L2 device cleanup: ") + e.what());
  }
  sync_guard_locked();  // a device recreated behind our back gets its guard (and entry) back
  polled_ = true;
}

json L2NetworkAgent::status() const {
  std::lock_guard lock(mu_);
  json nets = json::array();
  for (const auto& [name, v] : applied_) {
    json j = v.to_json();
    j["bridge"] = l2_bridge_name(name);
    j["vxlan_device"] = l2_vxlan_name(v.vni);
    // Outbound NAT and the bridge's forward filter: datapath.named_networks of /api/overlay/status.
    try {
      json fdb = json::array();
      for (auto d : nl::list_flood_destinations(l2_vxlan_name(v.vni))) fdb.push_back(d.to_string());
      j["fdb_flood_destinations"] = fdb;
      j["bridge_present"] = nl::link_exists(l2_bridge_name(name));
    } catch (const std::exception& e) {
      j["device_error"] = e.what();
    }
    if (auto e = errors_.find(name); e != errors_.end()) j["error"] = e->second;
    nets.push_back(std::move(j));
  }
  json guard = {{"enabled", guard_ != nullptr},
                {"error", guard_error_.empty() ? json(nullptr) : json(guard_error_)}};
  if (guard_) {
    try {
      auto c = guard_->counters();
      guard["pin_dir"] = guard_->pin_dir();
      guard["gateway_arp_kept_local"] = c.gateway_arp_kept_local;
      guard["gateway_floods_kept_local"] = c.gateway_floods_kept_local;
      guard["passed"] = c.passed;
    } catch (const std::exception& e) {
      guard["error"] = e.what();
    }
  }
  return {{"networks", nets},
          {"gateway_guard", guard},
          {"polled", polled_},
          {"last_poll_error", last_poll_error_.empty() ? json(nullptr) : json(last_poll_error_)}};
}

AttachNetwork L2NetworkAgent::attach_network(const std::string& name) {
  std::lock_guard lock(mu_);
  auto it = applied_.find(name);
  if (it == applied_.end())
    throw DomainError(ErrorKind::kNotFound, "this runner is not a member of network '" + name +
                                                "' (join it with kohakuctl network join " + name +
                                                " " + hostname_ + ")");
  AttachNetwork n;
  n.kind = "l2:" + name;
  n.bridge = l2_bridge_name(name);
  n.subnet = it->second.subnet;
  n.gateway = it->second.gateway;
  n.mtu = it->second.mtu;
  n.host_managed = false;
  return n;
}

HostApi L2NetworkAgent::host(std::chrono::milliseconds timeout) const {
  return HostApi(config_.host_url(), config_.overlay_api_token, timeout);
}

Ipv4Addr L2NetworkAgent::allocate(const std::string& name, const std::string& workload_id) {
  json answer;
  try {
    answer = host(std::chrono::seconds(10)).l2_allocate(name, hostname_, workload_id);
  } catch (const HostApiError& e) {
    // The runner checked the request against its own copy of the network before asking: a
    // refusal other than a full network means the host and the runner disagree.
    throw DomainError(host_error_kind(e, ErrorKind::kUpstreamFailed),
                      (e.status() == 0 ? "host unreachable: "
                                       : "host refused an address on network '" + name + "': ") +
                          std::string(e.what()));
  }
  auto ip = Ipv4Addr::try_parse(answer.value("ip", ""));
  if (!ip)
    throw DomainError(ErrorKind::kUpstreamFailed,
                      "host answered no address for network '" + name + "'");
  return *ip;
}

bool L2NetworkAgent::release(const std::string& name, const std::string& workload_id) {
  try {
    host(std::chrono::seconds(10)).l2_release(name, workload_id);
    return true;
  } catch (const HostApiError& e) {
    if (e.status() >= 400 && e.status() < 500) return true;  // 404: nothing held
    log::warn(kLog, "host did not free the address of " + workload_id + " on '" + name +
                        "': " + e.what() + " (will retry)");
  }
  return false;
}

}  // namespace kohaku::runner
