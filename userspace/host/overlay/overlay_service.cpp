#include "host/overlay/overlay_service.h"

#include <utility>

#include "common/http_router.h"
#include "common/log.h"
#include "common/secret.h"
#include "host/overlay/overlay_journal.h"
#include "host/overlay/overlay_service_impl.h"

namespace kohaku {

using nlohmann::json;

int64_t system_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

constexpr const char* kComponent = "overlay";
// A heartbeat of an active runner only moves its timestamps; journal that at most this often
// (a crash then costs at most this much of last_used, which only orders evictions).
constexpr int64_t kHeartbeatJournalIntervalMs = 60'000;

std::string new_credential() {
  return random_hex(32);  // 256 bits
}

}  // namespace

OverlayService::OverlayService(const HostConfig& config, Clock clock)
    : impl_(std::make_unique<Impl>(config, std::move(clock))) {
  impl_->load();
}

OverlayService::~OverlayService() = default;

void OverlayService::set_observer(AllocationObserver* observer) {
  std::lock_guard lock(impl_->notify_mu);
  impl_->observer = observer;
}

json OverlayService::register_runner(const RegisterRequest& request,
                                     const std::string& credential) {
  auto& m = *impl_;
  const auto& cfg = m.config;
  const std::string& hostname = request.hostname;
  const std::string& url = request.url;
  // Runners build their tunnel to this address: loopback would point every tunnel at itself.
  if (cfg.overlay_enabled && request.physical_ip.is_loopback())
    throw DomainError(ErrorKind::kMalformed,
                      "'url' " + printable(url) + ": a loopback address cannot carry the overlay");
  const auto& vxlan_id = request.vxlan_id;
  const auto& vxlan_port = request.vxlan_port;
  const auto& mtu = request.mtu;
  if (cfg.overlay_enabled) {
    // Both ends must agree or the tunnel silently drops everything.
    if (vxlan_id && *vxlan_id != int64_t{cfg.overlay_vxlan_id})
      throw DomainError(ErrorKind::kConflict, "VXLAN id base mismatch: runner has " +
                                                  std::to_string(*vxlan_id) + ", host has " +
                                                  std::to_string(cfg.overlay_vxlan_id));
    if (vxlan_port && *vxlan_port != int64_t{cfg.overlay_vxlan_port})
      throw DomainError(ErrorKind::kConflict, "VXLAN port mismatch: runner has " +
                                                  std::to_string(*vxlan_port) + ", host has " +
                                                  std::to_string(cfg.overlay_vxlan_port));
    if (mtu && *mtu != int64_t{cfg.overlay_mtu})
      throw DomainError(ErrorKind::kConflict, "MTU mismatch: runner has " + std::to_string(*mtu) +
                                                  ", host has " + std::to_string(cfg.overlay_mtu));
  }
  json details = request.details;

  return m.mutate([&] {
    json answer;
    int64_t now = m.clock();
    m.refresh(now);
    const RunnerAllocation* known = m.registry.find_hostname(hostname);
    if (known != nullptr && !known->credential.empty()) {
      if (!credential.empty() && !http::constant_time_equal(credential, known->credential))
        throw DomainError(ErrorKind::kForbidden, "wrong runner credential for '" + hostname +
                                                     "' (" + kRunnerCredentialHeader + ")");
      // Without it a hostname may only register again from where it is: a restart in place.
      if (credential.empty() && known->url != url)
        throw DomainError(ErrorKind::kForbidden,
                          "runner '" + hostname + "' is registered from " + known->url +
                              "; moving it to " + url + " needs its runner credential (" +
                              kRunnerCredentialHeader +
                              ", kept in the runner's STATE_DIR/runner_credential). If the "
                              "runner lost it, release it once it is inactive: kohakuctl "
                              "overlay release " +
                              hostname);
    }
    std::string issued;
    if (known == nullptr || known->credential.empty()) issued = new_credential();
    auto reg = m.registry.register_runner(hostname, request.physical_ip, url, std::move(details),
                                          now, cfg.overlay_enabled);
    if (!issued.empty()) m.registry.set_credential(hostname, issued);
    if (reg.evicted) {
      auto dropped = m.book.drop_runner(reg.evicted->id);
      log::info(kComponent, "evicted inactive runner '" + reg.evicted->hostname + "' (id " +
                                std::to_string(reg.evicted->id) + ", " +
                                std::to_string(dropped.size()) + " IP entries) for '" + hostname +
                                "'");
    }
    m.commit(true);
    if (reg.evicted) m.events.push_back({false, *reg.evicted});
    const auto& a = reg.allocation;
    answer = {{"message", std::string("Runner '") + hostname + "' " +
                              (reg.created ? "registered" : "re-registered")},
              {"created", reg.created}};
    if (!issued.empty()) answer["runner_credential"] = issued;
    if (cfg.overlay_enabled && a.has_overlay()) {
      answer["overlay"] = m.overlay_block(a);
      // Told on every registration: a runner that registers again has (re)started and the
      // host side should re-check its tunnel, not only when the address changed.
      m.events.push_back({true, a});
    } else if (cfg.overlay_enabled) {
      // Registered all the same, as KohakuRiver does: the runner uses its default network.
      answer["overlay"] = nullptr;
      answer["overlay_reason"] = reg.no_overlay_reason;
      log::warn(kComponent, reg.no_overlay_reason);
    }
    return answer;
  });
}

json OverlayService::heartbeat(const std::string& hostname, const std::string& credential,
                               const json& metrics) {
  return wait_for(
      [&](JsonCompletion done) { heartbeat(hostname, credential, metrics, std::move(done)); });
}

void OverlayService::heartbeat(const std::string& hostname, const std::string& credential,
                               const json& metrics, JsonCompletion done) {
  auto& m = *impl_;
  checked_name("hostname", hostname);
  m.mutate_async(std::move(done), [&] {
    json answer = {{"message", "Heartbeat received"}};
    int64_t now = m.clock();
    m.refresh(now);
    const auto* before = m.registry.find_hostname(hostname);
    if (before == nullptr || before->placeholder)
      throw DomainError(ErrorKind::kNotFound, "runner '" + hostname + "' is not registered");
    if (!credential.empty() && !before->credential.empty() &&
        !http::constant_time_equal(credential, before->credential))
      throw DomainError(ErrorKind::kForbidden, "wrong runner credential for '" + hostname + "' (" +
                                                   kRunnerCredentialHeader + ")");
    // Its id went to someone else while it was away, or it registered while the pool was full
    // and an id is free now: make it register again (runners do on 404). While none can be
    // had, it stays registered without an overlay.
    bool without_overlay = m.config.overlay_enabled && !before->has_overlay();
    if (without_overlay && m.registry.could_allocate(hostname))
      throw DomainError(
          ErrorKind::kNotFound,
          "runner '" + hostname + "' has no overlay allocation and one is free; register again");
    bool was_active = before->is_active;
    auto journaled = m.journaled_last_used.find(hostname);
    bool record = !was_active || journaled == m.journaled_last_used.end() ||
                  now - journaled->second >= kHeartbeatJournalIntervalMs;
    m.registry.heartbeat(hostname, now, record);
    // What the runner measures (memory, CPU, GPUs...): shown in /api/nodes and /api/health,
    // kept in memory only (the next heartbeat brings them again).
    if (metrics.is_object() && !metrics.empty()) m.metrics[hostname] = metrics;
    // Coming back to life must be durable; a routine heartbeat survives kill -9 without fsync.
    m.commit(!was_active);
    // The runner compares this with what it applied, so a host whose address changed across a
    // restart is followed at the next heartbeat.
    if (without_overlay) {
      answer["overlay"] = nullptr;
      answer["overlay_reason"] = m.registry.pool_full_reason();
    } else if (m.config.overlay_enabled) {
      const auto* a = m.registry.find_hostname(hostname);
      if (a != nullptr) answer["overlay"] = m.overlay_block(*a);
    }
    return answer;
  });
}

std::string OverlayService::runner_credential(const std::string& hostname) const {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  const RunnerAllocation* a = m.registry.find_hostname(hostname);
  return a != nullptr ? a->credential : std::string();
}

json OverlayService::overlay_status() {
  auto& m = *impl_;
  if (!m.config.overlay_enabled)
    return {{"enabled", false}, {"message", "overlay network is disabled"}};
  return m.read([&]() -> json {
    json allocations = json::array();
    uint32_t active = 0;
    auto all = m.registry.allocations();
    for (const auto& a : all) {
      active += a.is_active ? 1 : 0;
      allocations.push_back({{"runner_name", a.hostname},
                             {"runner_id", a.id},
                             {"subnet", a.subnet.to_string()},
                             {"gateway", m.scheme.runner_gateway(a.id).to_string()},
                             {"physical_ip", a.physical_ip.to_string()},
                             {"is_active", a.is_active},
                             {"last_used", iso_time(a.last_used_ms)},
                             {"vxlan_device", host_vxlan_device_name(a.id)}});
    }
    // Runners registered without an overlay (the pool was full of active runners): they use
    // their default network until an id is free.
    json without = json::array();
    for (const auto& n : m.registry.nodes())
      if (n.is_active && !n.has_overlay())
        without.push_back({{"hostname", n.hostname},
                           {"physical_ip", n.physical_ip.to_string()},
                           {"reason", m.registry.pool_full_reason()}});
    // With its prefix, as KohakuRiver shows it: the anchor's address as `ip addr` lists it.
    std::string host_ip =
        m.config.host_anchor_ip().to_string() + "/" + std::to_string(m.config.host_anchor_prefix());
    return {{"enabled", true},
            {"without_overlay", without},
            {"subnet_config", m.scheme.to_string()},
            {"host_ip", host_ip},
            {"host_prefix", m.config.host_anchor_prefix()},
            {"bridge_name", m.config.overlay_bridge_name},
            {"allocations", allocations},
            {"stats",
             {{"total_allocations", all.size()},
              {"active_allocations", active},
              {"inactive_allocations", all.size() - active},
              {"available_ids", m.registry.free_id_count()},
              {"max_runners", m.scheme.max_runner_id()},
              {"subnet_config", m.scheme.to_string()},
              {"overlay_network", m.scheme.overlay_network().to_string()},
              {"host_ip", host_ip},
              {"base_vxlan_id", m.config.overlay_vxlan_id},
              {"vxlan_port", m.config.overlay_vxlan_port},
              {"mtu", m.config.overlay_mtu}}}};
  });
}

json OverlayService::release_runner(const std::string& runner) {
  auto& m = *impl_;
  m.require_overlay();
  checked_name("runner", runner);
  return m.mutate([&] {
    m.refresh(m.clock());
    // Nothing to release is an answer, not an error, as in KohakuRiver (its `node
    // overlay-release` prints the reason).
    const RunnerAllocation* held = m.registry.resolve(runner);
    if (held == nullptr || !held->has_overlay())
      return json{{"released", false}, {"reason", "No allocation found for " + runner}};
    const auto& a = *held;
    if (a.is_active)
      throw DomainError(ErrorKind::kConflict,
                        "runner '" + a.hostname +
                            "' is active; it can be released once it stops sending heartbeats");
    auto released = m.registry.release(a.id);
    m.book.drop_runner(released.id);
    // Releasing is how an operator re-homes a runner that lost its credential.
    m.registry.set_credential(released.hostname, {});
    m.commit(true);
    m.events.push_back({false, released});
    return json{{"released", true}, {"runner_name", released.hostname}};
  });
}

json OverlayService::cleanup() {
  auto& m = *impl_;
  m.require_overlay();
  return m.mutate([&] {
    m.refresh(m.clock());
    std::vector<RunnerAllocation> released_all;
    for (const auto& a : m.registry.allocations()) {
      if (a.is_active) continue;
      auto released = m.registry.release(a.id);
      m.book.drop_runner(released.id);
      m.registry.set_credential(released.hostname, {});
      released_all.push_back(std::move(released));
    }
    m.commit(true);
    size_t cleaned = released_all.size();
    for (auto& r : released_all) m.events.push_back({false, std::move(r)});
    return json{{"cleaned_count", cleaned}};
  });
}

void OverlayService::tick() {
  auto& m = *impl_;
  m.mutate([&] {
    int64_t now = m.clock();
    for (const auto& a : m.registry.expire(now, m.config.heartbeat_timeout_ms()))
      log::info(kComponent, "runner '" + a.hostname + "' is inactive (no heartbeat for " +
                                std::to_string(m.config.heartbeat_timeout_ms() / 1000) + " s)");
    if (size_t n = m.book.expire(now); n > 0)
      log::info(kComponent, std::to_string(n) + " IP reservations expired");
    m.commit(true);
    return true;
  });
}

std::vector<RunnerAllocation> OverlayService::allocations() const {
  std::lock_guard lock(impl_->mu);
  return impl_->registry.allocations();
}

bool OverlayService::adopt_placeholder(uint32_t id, Ipv4Addr physical_ip) {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  auto placeholder = m.registry.adopt_placeholder(id, physical_ip, m.clock());
  m.commit(true);
  m.wait_durable(std::exchange(m.durable_seq, 0));  // start-up only: waiting under mu is fine
  return placeholder.has_value();
}

void OverlayService::compact() {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  m.commit(true);
  m.store.compact(overlay_journal::snapshot(m.scheme, m.registry,
                                            m.book));  // the snapshot covers what commit() wrote
  m.durable_seq = 0;
}

}  // namespace kohaku
