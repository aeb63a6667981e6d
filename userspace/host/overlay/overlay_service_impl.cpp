#include "host/overlay/overlay_service_impl.h"

#include <ctime>
#include <stdexcept>

#include "common/http_router.h"
#include "common/log.h"
#include "common/wire/overlay_assignment.h"
#include "host/overlay/overlay_journal.h"
#include "host/overlay/overlay_requests.h"

namespace kohaku {

using nlohmann::json;

namespace {

constexpr const char* kComponent = "overlay";

}  // namespace

// ISO-8601 UTC with second precision, the way KohakuRiver's clients print times.
json iso_time(int64_t ms) {
  if (ms <= 0) return nullptr;
  std::time_t secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::string shortened_token(const std::string& token) {
  // KohakuRiver shows token[:20] + "...". Its tokens are signed payloads whose start is public;
  // ours are random, so 20 characters are shown only where at least 128 bits stay hidden (the
  // 64-hex-digit tokens issued now); older 32-digit tokens keep showing 8.
  constexpr size_t kHiddenAtLeast = 32;
  size_t shown = token.size() >= 20 + kHiddenAtLeast ? 20 : 8;
  if (token.size() <= shown) return token;
  return token.substr(0, shown) + "...";
}

void OverlayService::Impl::flush() {
  if (delivering.load() == std::this_thread::get_id()) return;
  std::lock_guard notify(notify_mu);
  delivering = std::this_thread::get_id();
  struct Reset {
    std::atomic<std::thread::id>& id;
    ~Reset() { id = std::thread::id(); }
  } reset{delivering};
  while (true) {
    Event e;
    {
      std::lock_guard lock(mu);
      if (events.empty()) return;
      e = std::move(events.front());
      events.pop_front();
    }
    if (observer == nullptr) continue;
    try {
      if (e.allocated)
        observer->on_allocated(e.allocation);
      else
        observer->on_released(e.allocation);
    } catch (const std::exception& ex) {
      log::error(kComponent, "allocation observer failed for runner " +
                                 std::to_string(e.allocation.id) + " (" + e.allocation.hostname +
                                 "): " + ex.what());
    }
  }
}
void OverlayService::Impl::wait_durable(uint64_t seq) {
  try {
    store.wait_durable(seq);
  } catch (const std::exception& e) {
    std::rethrow_exception(flush_failed(e.what()));
  }
}
std::exception_ptr OverlayService::Impl::flush_failed(const std::string& error) {
  log::error(kComponent,
             "cannot flush the state journal; refusing changes until kohaku-hostd "
             "restarts: " +
                 error);
  return std::make_exception_ptr(
      DomainError(ErrorKind::kInternal,
                  "cannot persist state (the change may be lost; the host refuses changes until "
                  "it restarts): " +
                      error));
}
void OverlayService::Impl::load() {
  overlay_journal::replay(store, scheme, registry, book);
  // Reservations on ids nobody holds any more cannot be used; drop them.
  for (const auto& e : book.all())
    if (registry.find_id(e.runner_id) == nullptr) book.erase(e.runner_id, e.ip);
  // The host was not listening while it was down: give active runners a full timeout to
  // reach it again instead of declaring them dead on the first tick.
  int64_t now = clock();
  for (auto a : registry.nodes())
    if (a.is_active) {
      a.last_seen_ms = now;
      registry.put(a);
    }
  registry.take_dirty();
  book.take_dirty();
  registry.accept();
  book.accept();
  for (const auto& a : registry.nodes()) journaled_last_used[a.hostname] = a.last_used_ms;
  // Start every run from a snapshot: it records the layout, and the journal (with any torn
  // tail already cut off) starts empty.
  store.compact(overlay_journal::snapshot(scheme, registry, book));
  log::info(kComponent, "state loaded from " + store.dir().string() + ": " +
                            std::to_string(registry.nodes().size()) + " nodes, " +
                            std::to_string(registry.allocations().size()) + " allocations, " +
                            std::to_string(book.all().size()) + " IP entries");
}
const RunnerAllocation& OverlayService::Impl::runner(const std::string& name) const {
  checked_name("runner", name);
  const auto* a = registry.resolve(name);
  if (a == nullptr) throw DomainError(ErrorKind::kNotFound, "runner '" + name + "' not found");
  if (!a->has_overlay())
    throw DomainError(ErrorKind::kNotFound, "runner '" + name + "' has no overlay allocation");
  return *a;
}
void OverlayService::Impl::require_credential(const RunnerAllocation& a,
                                              const std::string& presented,
                                              const std::string& what) const {
  if (a.credential.empty())
    throw DomainError(ErrorKind::kForbidden,
                      what + " on runner '" + a.hostname +
                          "' needs its runner credential, and it holds none yet (it gets one "
                          "when it registers again); use the reservation's token instead");
  if (presented.empty())
    throw DomainError(ErrorKind::kForbidden,
                      what + " on runner '" + a.hostname + "' needs the reservation's token " +
                          "or the runner's credential (" + kRunnerCredentialHeader + ")");
  if (!http::constant_time_equal(presented, a.credential))
    throw DomainError(ErrorKind::kForbidden, "wrong runner credential for '" + a.hostname + "' (" +
                                                 kRunnerCredentialHeader + ")");
}
void OverlayService::Impl::commit(bool durable) {
  auto batch = overlay_journal::take_batch(registry, book);
  if (batch.record.is_null()) {
    registry.accept();
    book.accept();
    return;
  }
  try {
    uint64_t seq = store.write(std::move(batch.record));
    if (durable) durable_seq = std::max(durable_seq, seq);
  } catch (const std::exception& e) {
    registry.rollback();
    book.rollback();
    log::error(kComponent, std::string("cannot persist state, the change is undone: ") + e.what());
    throw DomainError(ErrorKind::kInternal,
                      std::string("cannot persist state (nothing changed): ") + e.what());
  }
  registry.accept();
  book.accept();
  for (const auto& [hostname, ms] : batch.last_used) {
    if (ms)
      journaled_last_used[hostname] = *ms;
    else
      journaled_last_used.erase(hostname);
  }
  // The change is durable in the journal; a failed compaction only leaves the journal longer
  // and is tried again at the next commit.
  if (store.compaction_due()) {
    try {
      store.compact(overlay_journal::snapshot(scheme, registry, book));
    } catch (const std::exception& e) {
      log::warn(kComponent, std::string("cannot compact the state journal: ") + e.what());
    }
  }
}
json OverlayService::Impl::overlay_block(const RunnerAllocation& a) const {
  wire::OverlayAssignment o;
  o.runner_id = a.id;
  o.subnet = a.subnet;
  o.gateway = scheme.runner_gateway(a.id);
  o.host_overlay_ip = config.host_anchor_ip();
  o.host_physical_ip = config.host_reachable_address;
  o.network = scheme.overlay_network();
  o.host_on_subnet = scheme.host_ip_on_runner_subnet(a.id);
  o.vxlan_id = config.overlay_vxlan_id + a.id;
  o.vxlan_port = config.overlay_vxlan_port;
  o.mtu = config.overlay_mtu;
  return o.to_json();
}

json OverlayService::Impl::entry_json(const IpEntry& e, bool shorten_token) const {
  json token = nullptr;
  if (!e.token.empty()) token = shorten_token ? shortened_token(e.token) : e.token;
  return {{"ip", e.ip.to_string()},
          {"runner", name_of(e.runner_id)},
          {"token", token},
          {"created_at", iso_time(e.created_ms)},
          {"expires_at", e.is_used ? json(nullptr) : iso_time(e.expires_ms)},
          {"is_used", e.is_used},
          {"container_id", e.is_used ? json(e.container_id) : json(nullptr)}};
}
}  // namespace kohaku
