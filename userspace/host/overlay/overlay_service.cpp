#include "overlay_service.h"

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <ctime>
#include <deque>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/http_router.h"
#include "common/json_parse.h"
#include "common/log.h"
#include "common/secret.h"
#include "common/wire/names.h"
#include "host/overlay/ip_reservations.h"
#include "host/overlay/runner_registry.h"
#include "host/state/state_store.h"

namespace kohaku {

using nlohmann::json;

int64_t system_clock_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

namespace {

constexpr const char* kComponent = "overlay";
constexpr int64_t kMinTtl = 60, kMaxTtl = 1800, kDefaultTtl = 300;
constexpr int64_t kDefaultLimit = 100, kMaxLimit = 1000;
// A heartbeat of an active runner only moves its timestamps; journal that at most this often
// (a crash then costs at most this much of last_used, which only orders evictions).
constexpr int64_t kHeartbeatJournalIntervalMs = 60'000;

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

std::optional<std::string> param(const QueryParams& q, const std::string& name) {
  auto it = q.find(name);
  if (it == q.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

std::string required(const QueryParams& q, const std::string& name) {
  auto v = param(q, name);
  if (!v) throw ApiError(400, "missing query parameter '" + name + "'");
  return *v;
}

int64_t int_param(const QueryParams& q, const std::string& name, int64_t lo, int64_t hi,
                  int64_t fallback) {
  auto text = param(q, name);
  if (!text) return fallback;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || ptr != text->data() + text->size() || v < lo || v > hi)
    throw ApiError(400, "'" + name + "' must be an integer " + std::to_string(lo) + ".." +
                            std::to_string(hi) + ", got '" + *text + "'");
  return v;
}

bool bool_param(const QueryParams& q, const std::string& name) {
  auto text = param(q, name);
  if (!text) return false;
  std::string t;
  for (char c : *text) t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  if (t == "true" || t == "1" || t == "yes") return true;
  if (t == "false" || t == "0" || t == "no") return false;
  throw ApiError(400, "'" + name + "' must be true or false, got '" + *text + "'");
}

Ipv4Addr ip_param(const std::string& name, const std::string& text) {
  auto ip = Ipv4Addr::try_parse(text);
  if (!ip) throw ApiError(400, "'" + name + "' is not an IPv4 address: '" + text + "'");
  return *ip;
}

std::string container_param(const QueryParams& q) {
  std::string id = required(q, "container_id");
  if (id.size() > 256) throw ApiError(400, "'container_id' is longer than 256 characters");
  for (unsigned char c : id)
    if (c <= ' ' || c >= 0x7f)
      throw ApiError(400, "'container_id' must be printable ASCII without spaces");
  return id;
}

std::string new_token() {
  return random_hex(16);  // 128 bits, as KohakuRiver's tokens
}

std::string new_credential() {
  return random_hex(32);  // 256 bits
}

// A hostname from a body, a path or a query: 400 naming the rule it breaks.
std::string checked_name(const std::string& field, const std::string& text) {
  try {
    return Hostname::parse(text).str();
  } catch (const InvalidName& e) {
    throw ApiError(400, "'" + field + "': " + e.what());
  }
}

void check_hostname(const std::string& hostname) {
  checked_name("hostname", hostname);
  if (RunnerRegistry::parse_placeholder_name(hostname) != 0)
    throw ApiError(
        400, "'hostname' '" + hostname + "' is reserved: runner_<id> names recovered tunnels");
}

// The runner's physical IP is the host part of its url, "http://A.B.C.D[:PORT]".
Ipv4Addr physical_ip_of_url(const std::string& url, bool overlay_enabled) {
  RunnerUrl parsed;
  try {
    parsed = RunnerUrl::parse(url);
  } catch (const InvalidName& e) {
    throw ApiError(400, std::string("'url': ") + e.what());
  }
  const Ipv4Addr ip = parsed.ip;
  if (ip.is_unspecified() || ip.value >= 0xe0000000u)
    throw ApiError(400, "'url' " + printable(url) + ": the address must be a unicast address");
  // Runners build their tunnel to this address: loopback would point every tunnel at itself.
  if (overlay_enabled && ip.is_loopback())
    throw ApiError(400,
                   "'url' " + printable(url) + ": a loopback address cannot carry the overlay");
  return ip;
}

std::optional<int64_t> optional_int(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer())
    throw ApiError(400, std::string("'") + key + "' must be an integer");
  return it->get<int64_t>();
}

struct Event {
  bool allocated;
  RunnerAllocation allocation;
};

}  // namespace

struct OverlayService::Impl {
  Impl(const HostConfig& c, Clock clk)
      : config(c),
        scheme(c.overlay_subnet),
        clock(std::move(clk)),
        registry(scheme),
        book(scheme),
        store(std::filesystem::path(c.state_dir)) {}

  HostConfig config;
  SubnetScheme scheme;
  Clock clock;

  mutable std::mutex mu;  // guards everything below but the observer
  RunnerRegistry registry;
  IpReservationBook book;
  StateStore store;
  std::deque<Event> events;
  // Newest journal seq committed durably by the operation running under mu (see mutate()).
  uint64_t durable_seq = 0;
  // last_used_ms of each node as the journal last recorded it.
  std::unordered_map<std::string, int64_t> journaled_last_used;

  std::mutex notify_mu;  // held while calling the observer, so calls stay in order
  AllocationObserver* observer = nullptr;
  // The thread inside the observer, so a callback that calls back into the service does not
  // wait for itself: the loop it is called from delivers what that call queued.
  std::atomic<std::thread::id> delivering{};

  // Delivers queued events with mu released; notify_mu keeps them in order even when several
  // threads finish operations at once. Called without mu held.
  void flush() {
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

  // --- helpers, all called with mu held ---

  void require_overlay() const {
    if (!config.overlay_enabled) throw ApiError(400, "overlay network is disabled");
  }

  // Brings time-driven state up to now so every answer sees the same truth.
  void refresh(int64_t now) {
    registry.expire(now, config.heartbeat_timeout_ms());
    book.expire(now);
  }

  const RunnerAllocation& runner(const std::string& name) const {
    checked_name("runner", name);
    const auto* a = registry.resolve(name);
    if (a == nullptr) throw ApiError(404, "runner '" + name + "' not found");
    if (!a->has_overlay()) throw ApiError(404, "runner '" + name + "' has no overlay allocation");
    return *a;
  }

  // What only the runner itself may do (record an address by container, free a container's
  // addresses) needs its credential: 403 naming the alternative otherwise.
  void require_credential(const RunnerAllocation& a, const std::string& presented,
                          const std::string& what) const {
    if (a.credential.empty())
      throw ApiError(403, what + " on runner '" + a.hostname +
                              "' needs its runner credential, and it holds none yet (it gets one "
                              "when it registers again); use the reservation's token instead");
    if (presented.empty())
      throw ApiError(403, what + " on runner '" + a.hostname + "' needs the reservation's token " +
                              "or the runner's credential (" + kRunnerCredentialHeader + ")");
    if (!http::constant_time_equal(presented, a.credential))
      throw ApiError(403, "wrong runner credential for '" + a.hostname + "' (" +
                              kRunnerCredentialHeader + ")");
  }

  std::string name_of(uint32_t id) const {
    const auto* a = registry.find_id(id);
    return a ? a->hostname : RunnerRegistry::placeholder_name(id);
  }

  json state_json() const {
    json nodes = json::array(), ips = json::array();
    for (const auto& a : registry.nodes()) nodes.push_back(RunnerRegistry::to_json(a));
    for (const auto& a : registry.allocations())
      if (a.placeholder) nodes.push_back(RunnerRegistry::to_json(a));
    for (const auto& e : book.all()) ips.push_back(IpReservationBook::to_json(e));
    return {{"subnet_config", scheme.to_string()}, {"nodes", nodes}, {"ips", ips}};
  }

  // Journals everything the registry and the book changed since the last commit as one record,
  // so an operation is replayed whole or not at all. When the record cannot be written (disk
  // full, I/O error) every change since the last commit is taken back out of memory before the
  // 500: memory never holds what a restart would not find. Callers queue observer events only
  // after commit() returned, so a rolled-back change is not acted on either.
  // durable: the record must be on disk before the operation is answered. commit() only writes
  // it; mutate() waits for the flush after letting go of mu (group commit).
  void commit(bool durable) {
    json changes = json::array();
    std::vector<std::pair<std::string, std::optional<int64_t>>> last_used;
    for (const auto& hostname : registry.take_dirty()) {
      if (const auto* a = registry.find_hostname(hostname)) {
        changes.push_back({{"op", "put_node"}, {"node", RunnerRegistry::to_json(*a)}});
        last_used.emplace_back(hostname, a->last_used_ms);
      } else {
        changes.push_back({{"op", "del_node"}, {"hostname", hostname}});
        last_used.emplace_back(hostname, std::nullopt);
      }
    }
    for (const auto& [runner_id, ip] : book.take_dirty()) {
      if (const auto* e = book.find(runner_id, Ipv4Addr{ip}))
        changes.push_back({{"op", "put_ip"}, {"entry", IpReservationBook::to_json(*e)}});
      else
        changes.push_back(
            {{"op", "del_ip"}, {"runner_id", runner_id}, {"ip", Ipv4Addr{ip}.to_string()}});
    }
    if (changes.empty()) {
      registry.accept();
      book.accept();
      return;
    }
    try {
      uint64_t seq = store.write({{"op", "batch"}, {"changes", std::move(changes)}});
      if (durable) durable_seq = std::max(durable_seq, seq);
    } catch (const std::exception& e) {
      registry.rollback();
      book.rollback();
      log::error(kComponent,
                 std::string("cannot persist state, the change is undone: ") + e.what());
      throw ApiError(500, std::string("cannot persist state (nothing changed): ") + e.what());
    }
    registry.accept();
    book.accept();
    for (const auto& [hostname, ms] : last_used) {
      if (ms)
        journaled_last_used[hostname] = *ms;
      else
        journaled_last_used.erase(hostname);
    }
    // The change is durable in the journal; a failed compaction only leaves the journal longer
    // and is tried again at the next commit.
    if (store.compaction_due()) {
      try {
        store.compact(state_json());
      } catch (const std::exception& e) {
        log::warn(kComponent, std::string("cannot compact the state journal: ") + e.what());
      }
    }
  }

  // Runs body with mu held, then, with mu released, waits until the journal flush that covers
  // what body committed durably succeeded (shared with whatever other requests committed
  // meanwhile: one fdatasync per group, not per request), then delivers the observer events
  // body queued. So an answer, and a tunnel or BPF change, only ever follows a durable record.
  template <class Body>
  auto mutate(Body&& body) {
    uint64_t seq = 0;
    bool notify = false;
    std::optional<decltype(body())> result;
    {
      std::lock_guard lock(mu);
      durable_seq = 0;
      result.emplace(body());
      seq = std::exchange(durable_seq, 0);
      notify = !events.empty();
    }
    if (seq != 0) wait_durable(seq);
    if (notify) flush();
    return std::move(*result);
  }

  void wait_durable(uint64_t seq) {
    try {
      store.wait_durable(seq);
    } catch (const std::exception& e) {
      log::error(kComponent, std::string("cannot flush the state journal; refusing changes until "
                                         "kohaku-hostd restarts: ") +
                                 e.what());
      throw ApiError(500, std::string("cannot persist state (the change may be lost; the host "
                                      "refuses changes until it restarts): ") +
                              e.what());
    }
  }

  void apply(const json& change) {
    const std::string op = change.at("op").get<std::string>();
    if (op == "put_node") {
      registry.put(RunnerRegistry::from_json(change.at("node")));
    } else if (op == "del_node") {
      registry.erase(change.at("hostname").get<std::string>());
    } else if (op == "put_ip") {
      book.put(IpReservationBook::from_json(change.at("entry")));
    } else if (op == "del_ip") {
      book.erase(json_integer_at<uint32_t>(change, "runner_id"),
                 Ipv4Addr::parse(change.at("ip").get<std::string>()));
    } else {
      throw std::invalid_argument("unknown change '" + op + "'");
    }
  }

  void load_snapshot(const json& snapshot) {
    std::string saved = snapshot.value("subnet_config", "");
    for (const auto& n : snapshot.at("nodes")) registry.put(RunnerRegistry::from_json(n));
    if (saved != scheme.to_string()) {
      log::warn(kComponent, "OVERLAY_SUBNET changed from " + saved + " to " + scheme.to_string() +
                                ": runners keep their ids, " +
                                std::to_string(snapshot.at("ips").size()) +
                                " IP reservations of the old layout are dropped");
      return;
    }
    for (const auto& e : snapshot.at("ips")) book.put(IpReservationBook::from_json(e));
  }

  void load() {
    json snapshot = store.take_snapshot();
    if (!snapshot.is_null()) {
      try {
        load_snapshot(snapshot);
      } catch (const std::exception& e) {
        throw std::runtime_error("snapshot " + (store.dir() / StateStore::kSnapshotName).string() +
                                 " cannot be loaded: " + e.what());
      }
    }
    size_t index = 0;
    for (const auto& record : store.take_records()) {
      try {
        if (record.at("op") != "batch") throw std::invalid_argument("unknown record type");
        for (const auto& change : record.at("changes")) apply(change);
      } catch (const std::exception& e) {
        throw std::runtime_error("journal " + (store.dir() / StateStore::kJournalName).string() +
                                 " record " + std::to_string(index) + " (seq " +
                                 record.value("seq", json()).dump() +
                                 ") cannot be applied: " + e.what());
      }
      ++index;
    }
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
    store.compact(state_json());
    log::info(kComponent, "state loaded from " + store.dir().string() + ": " +
                              std::to_string(registry.nodes().size()) + " nodes, " +
                              std::to_string(registry.allocations().size()) + " allocations, " +
                              std::to_string(book.all().size()) + " IP entries");
  }

  json overlay_block(const RunnerAllocation& a) const {
    return {{"runner_id", a.id},
            {"overlay_subnet", a.subnet.to_string()},
            {"overlay_gateway", scheme.runner_gateway(a.id).to_string()},
            {"host_overlay_ip", scheme.host_overlay_ip().to_string()},
            {"host_physical_ip", config.host_reachable_address.to_string()},
            {"overlay_network_cidr", scheme.overlay_network().to_string()},
            {"host_ip_on_runner_subnet", scheme.host_ip_on_runner_subnet(a.id).to_string()},
            {"vxlan_id", config.overlay_vxlan_id + a.id},
            {"vxlan_port", config.overlay_vxlan_port},
            {"mtu", config.overlay_mtu}};
  }

  json entry_json(const IpEntry& e, bool shorten_token) const {
    json token = nullptr;
    if (!e.token.empty()) token = shorten_token ? e.token.substr(0, 8) + "..." : e.token;
    return {{"ip", e.ip.to_string()},
            {"runner", name_of(e.runner_id)},
            {"token", token},
            {"created_at", iso_time(e.created_ms)},
            {"expires_at", e.is_used ? json(nullptr) : iso_time(e.expires_ms)},
            {"is_used", e.is_used},
            {"container_id", e.is_used ? json(e.container_id) : json(nullptr)}};
  }
};

OverlayService::OverlayService(const HostConfig& config, Clock clock)
    : impl_(std::make_unique<Impl>(config, std::move(clock))) {
  impl_->load();
}

OverlayService::~OverlayService() = default;

void OverlayService::set_observer(AllocationObserver* observer) {
  std::lock_guard lock(impl_->notify_mu);
  impl_->observer = observer;
}

json OverlayService::register_runner(const json& body, const std::string& credential) {
  if (!body.is_object()) throw ApiError(400, "request body must be a JSON object");
  auto& m = *impl_;
  const auto& cfg = m.config;
  auto hostname_it = body.find("hostname");
  if (hostname_it == body.end() || !hostname_it->is_string() ||
      hostname_it->get<std::string>().empty())
    throw ApiError(400, "'hostname' is required (a non-empty string)");
  std::string hostname = hostname_it->get<std::string>();
  check_hostname(hostname);
  auto url_it = body.find("url");
  if (url_it == body.end() || !url_it->is_string())
    throw ApiError(400, "'url' is required (a string like http://IPV4:PORT)");
  std::string url = url_it->get<std::string>();
  Ipv4Addr physical_ip = physical_ip_of_url(url, cfg.overlay_enabled);

  auto vxlan_id = optional_int(body, "vxlan_id");
  auto vxlan_port = optional_int(body, "vxlan_port");
  auto mtu = optional_int(body, "mtu");
  if (cfg.overlay_enabled) {
    // Both ends must agree or the tunnel silently drops everything.
    if (vxlan_id && *vxlan_id != int64_t{cfg.overlay_vxlan_id})
      throw ApiError(409, "VXLAN id base mismatch: runner has " + std::to_string(*vxlan_id) +
                              ", host has " + std::to_string(cfg.overlay_vxlan_id));
    if (vxlan_port && *vxlan_port != int64_t{cfg.overlay_vxlan_port})
      throw ApiError(409, "VXLAN port mismatch: runner has " + std::to_string(*vxlan_port) +
                              ", host has " + std::to_string(cfg.overlay_vxlan_port));
    if (mtu && *mtu != int64_t{cfg.overlay_mtu})
      throw ApiError(409, "MTU mismatch: runner has " + std::to_string(*mtu) + ", host has " +
                              std::to_string(cfg.overlay_mtu));
  }
  json details = json::object();
  for (const auto& [key, value] : body.items())
    if (key != "hostname" && key != "url" && key != "vxlan_id" && key != "vxlan_port" &&
        key != "mtu")
      details[key] = value;

  return m.mutate([&] {
    json answer;
    int64_t now = m.clock();
    m.refresh(now);
    const RunnerAllocation* known = m.registry.find_hostname(hostname);
    if (known != nullptr && !known->credential.empty()) {
      if (!credential.empty() && !http::constant_time_equal(credential, known->credential))
        throw ApiError(403, "wrong runner credential for '" + hostname + "' (" +
                                kRunnerCredentialHeader + ")");
      // Without it a hostname may only register again from where it is: a restart in place.
      if (credential.empty() && known->url != url)
        throw ApiError(403, "runner '" + hostname + "' is registered from " + known->url +
                                "; moving it to " + url + " needs its runner credential (" +
                                kRunnerCredentialHeader +
                                ", kept in the runner's STATE_DIR/runner_credential). If the "
                                "runner lost it, release it once it is inactive: kohakuctl "
                                "overlay release " +
                                hostname);
    }
    std::string issued;
    if (known == nullptr || known->credential.empty()) issued = new_credential();
    auto reg = m.registry.register_runner(hostname, physical_ip, url, std::move(details), now,
                                          cfg.overlay_enabled);
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
    if (cfg.overlay_enabled) {
      answer["overlay"] = m.overlay_block(a);
      // Told on every registration: a runner that registers again has (re)started and the
      // host side should re-check its tunnel, not only when the address changed.
      m.events.push_back({true, a});
    }
    return answer;
  });
}

json OverlayService::heartbeat(const std::string& hostname, const json& body,
                               const std::string& credential) {
  auto& m = *impl_;
  checked_name("hostname", hostname);
  // KohakuRiver runners send an object (their task list and resource use); anything else is
  // a client bug.
  if (!body.is_object()) throw ApiError(400, "heartbeat body must be a JSON object");
  return m.mutate([&] {
    json answer = {{"message", "Heartbeat received"}};
    int64_t now = m.clock();
    m.refresh(now);
    const auto* before = m.registry.find_hostname(hostname);
    if (before == nullptr || before->placeholder)
      throw ApiError(404, "runner '" + hostname + "' is not registered");
    if (!credential.empty() && !before->credential.empty() &&
        !http::constant_time_equal(credential, before->credential))
      throw ApiError(
          403, "wrong runner credential for '" + hostname + "' (" + kRunnerCredentialHeader + ")");
    // Its id went to someone else while it was away: make it register again (runners do on 404).
    if (m.config.overlay_enabled && !before->has_overlay())
      throw ApiError(404, "runner '" + hostname + "' has no overlay allocation; register again");
    bool was_active = before->is_active;
    auto journaled = m.journaled_last_used.find(hostname);
    bool record = !was_active || journaled == m.journaled_last_used.end() ||
                  now - journaled->second >= kHeartbeatJournalIntervalMs;
    m.registry.heartbeat(hostname, now, record);
    // Coming back to life must be durable; a routine heartbeat survives kill -9 without fsync.
    m.commit(!was_active);
    // The runner compares this with what it applied, so a host whose address changed across a
    // restart is followed at the next heartbeat.
    if (m.config.overlay_enabled) {
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

json OverlayService::nodes() {
  auto& m = *impl_;
  std::lock_guard lock(m.mu);
  m.refresh(m.clock());
  m.commit(false);
  json out = json::array();
  for (const auto& a : m.registry.nodes()) {
    json n = a.details.is_object() ? a.details : json::object();
    n["hostname"] = a.hostname;
    n["url"] = a.url;
    n["physical_ip"] = a.physical_ip.to_string();
    n["status"] = a.is_active ? "online" : "offline";
    n["last_heartbeat"] = iso_time(a.last_used_ms);
    n["registered_at"] = iso_time(a.created_ms);
    n["runner_id"] = a.has_overlay() ? json(a.id) : json(nullptr);
    n["overlay_subnet"] = a.has_overlay() ? json(a.subnet.to_string()) : json(nullptr);
    n["vxlan_device"] = a.has_overlay() ? json(host_vxlan_device_name(a.id)) : json(nullptr);
    out.push_back(std::move(n));
  }
  return out;
}

json OverlayService::overlay_status() {
  auto& m = *impl_;
  if (!m.config.overlay_enabled)
    return {{"enabled", false}, {"message", "overlay network is disabled"}};
  std::lock_guard lock(m.mu);
  m.refresh(m.clock());
  m.commit(false);
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
  std::string host_ip = m.scheme.host_overlay_ip().to_string();
  return {{"enabled", true},
          {"subnet_config", m.scheme.to_string()},
          {"host_ip", host_ip},
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
}

json OverlayService::release_runner(const std::string& runner) {
  auto& m = *impl_;
  m.require_overlay();
  return m.mutate([&] {
    m.refresh(m.clock());
    const auto& a = m.runner(runner);
    if (a.is_active)
      throw ApiError(409, "runner '" + a.hostname +
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

json OverlayService::ip_available(const QueryParams& q) {
  auto& m = *impl_;
  m.require_overlay();
  auto limit = static_cast<size_t>(int_param(q, "limit", 1, kMaxLimit, kDefaultLimit));
  auto runner = param(q, "runner");
  std::lock_guard lock(m.mu);
  m.refresh(m.clock());
  m.commit(false);
  std::vector<RunnerAllocation> targets;
  if (runner)
    targets.push_back(m.runner(*runner));
  else
    targets = m.registry.allocations();
  json by_runner = json::object();
  for (const auto& a : targets) {
    json ips = json::array();
    for (auto ip : m.book.available(a.id, limit)) ips.push_back(ip.to_string());
    by_runner[a.hostname] = std::move(ips);
  }
  return {{"available_ips", by_runner}};
}

json OverlayService::ip_info(const std::string& runner) {
  auto& m = *impl_;
  m.require_overlay();
  std::lock_guard lock(m.mu);
  m.refresh(m.clock());
  m.commit(false);
  const auto& a = m.runner(runner);
  auto c = m.book.counts(a.id);
  return {{"runner_name", a.hostname},
          {"runner_id", a.id},
          {"subnet", a.subnet.to_string()},
          {"gateway", m.scheme.runner_gateway(a.id).to_string()},
          {"ip_range",
           {{"first", m.scheme.first_container_ip(a.id).to_string()},
            {"last", m.scheme.last_container_ip(a.id).to_string()}}},
          {"total_ips", c.total},
          {"available", c.available},
          {"reserved", c.reserved},
          {"used", c.used}};
}

json OverlayService::ip_reserve(const QueryParams& q) {
  auto& m = *impl_;
  m.require_overlay();
  std::string runner = required(q, "runner");
  int64_t ttl = int_param(q, "ttl", kMinTtl, kMaxTtl, kDefaultTtl);
  std::optional<Ipv4Addr> ip;
  if (auto text = param(q, "ip")) ip = ip_param("ip", *text);
  return m.mutate([&] {
    int64_t now = m.clock();
    m.refresh(now);
    const auto& a = m.runner(runner);
    std::string token = new_token();
    while (m.book.find_token(token) != nullptr) token = new_token();
    const IpEntry* e = nullptr;
    try {
      e = &m.book.reserve(a.id, ip, token, now, ttl * 1000);
    } catch (const ApiError&) {
      m.commit(false);  // expiries done by refresh() above
      throw;
    }
    json answer = {{"ip", e->ip.to_string()},
                   {"runner", a.hostname},
                   {"token", e->token},
                   {"expires_at", iso_time(e->expires_ms)},
                   {"ttl_seconds", ttl}};
    m.commit(true);
    return answer;
  });
}

json OverlayService::ip_release(const QueryParams& q, const std::string& credential) {
  auto& m = *impl_;
  m.require_overlay();
  auto token = param(q, "token");
  auto container = param(q, "container_id");
  if (token && container) throw ApiError(400, "give either 'token' or 'container_id', not both");
  if (!token && !container)
    throw ApiError(400, "missing query parameter 'token' (or 'container_id')");
  std::string container_id = container ? container_param(q) : std::string();
  return m.mutate([&]() -> json {
    m.refresh(m.clock());
    m.commit(false);
    if (token) {
      auto freed = m.book.release_token(*token);
      m.commit(true);
      return {
          {"released", true}, {"ip", freed.ip.to_string()}, {"runner", m.name_of(freed.runner_id)}};
    }
    auto runner = param(q, "runner");
    if (!runner)
      throw ApiError(400, "releasing by 'container_id' needs 'runner' (and its credential)");
    const auto& a = m.runner(*runner);
    m.require_credential(a, credential, "releasing by container id");
    auto freed = m.book.release_container(container_id, a.id);
    m.commit(true);
    json ips = json::array();
    for (const auto& e : freed) ips.push_back(e.ip.to_string());
    return {{"released", !freed.empty()},
            {"released_count", freed.size()},
            {"container_id", container_id},
            {"ips", ips}};
  });
}

json OverlayService::ip_reservations(const QueryParams& q) {
  auto& m = *impl_;
  m.require_overlay();
  bool include_used = bool_param(q, "include_used");
  auto runner = param(q, "runner");
  std::lock_guard lock(m.mu);
  m.refresh(m.clock());
  m.commit(false);
  std::optional<uint32_t> runner_id;
  if (runner) runner_id = m.runner(*runner).id;
  json list = json::array();
  for (const auto& e : m.book.list(runner_id, include_used)) list.push_back(m.entry_json(e, true));
  return {{"reservations", list}};
}

json OverlayService::ip_validate(const QueryParams& q) {
  auto& m = *impl_;
  m.require_overlay();
  std::string token = required(q, "token");
  auto runner = param(q, "runner");
  std::lock_guard lock(m.mu);
  m.refresh(m.clock());
  m.commit(false);
  std::optional<uint32_t> runner_id;
  if (runner) runner_id = m.runner(*runner).id;
  // A validation is a question: "no" is a normal 200 answer, not an error.
  const IpEntry* e = m.book.find_token(token);
  if (e == nullptr) return {{"valid", false}, {"reason", "reservation not found or expired"}};
  if (runner_id && e->runner_id != *runner_id)
    return {{"valid", false},
            {"reason", "reservation belongs to runner '" + m.name_of(e->runner_id) + "'"}};
  return {{"valid", true},
          {"ip", e->ip.to_string()},
          {"runner", m.name_of(e->runner_id)},
          {"expires_at", e->is_used ? json(nullptr) : iso_time(e->expires_ms)},
          {"is_used", e->is_used},
          {"container_id", e->is_used ? json(e->container_id) : json(nullptr)}};
}

json OverlayService::ip_use(const QueryParams& q, const std::string& credential) {
  auto& m = *impl_;
  m.require_overlay();
  std::string container_id = container_param(q);
  auto token = param(q, "token");
  auto runner = param(q, "runner");
  auto ip_text = param(q, "ip");
  if (!token && !(runner && ip_text))
    throw ApiError(400, "give 'token' (a reservation) or 'runner' and 'ip' (an address in use)");
  std::optional<Ipv4Addr> ip;
  if (!token) ip = ip_param("ip", *ip_text);
  return m.mutate([&] {
    int64_t now = m.clock();
    m.refresh(now);
    m.commit(false);
    const IpEntry* e = nullptr;
    if (token) {
      if (runner) {
        auto id = m.runner(*runner).id;
        const IpEntry* found = m.book.find_token(*token);
        if (found != nullptr && found->runner_id != id)
          throw ApiError(409,
                         "reservation belongs to runner '" + m.name_of(found->runner_id) + "'");
      }
      e = &m.book.use_token(*token, container_id);
    } else {
      const auto& a = m.runner(*runner);
      m.require_credential(a, credential, "recording an address by runner and ip");
      e = &m.book.use_ip(a.id, *ip, container_id, now);
    }
    json answer = {{"ip", e->ip.to_string()},
                   {"runner", m.name_of(e->runner_id)},
                   {"container_id", e->container_id},
                   {"is_used", true}};
    m.commit(true);
    return answer;
  });
}

json OverlayService::ip_stats() {
  auto& m = *impl_;
  m.require_overlay();
  std::lock_guard lock(m.mu);
  m.refresh(m.clock());
  m.commit(false);
  auto s = m.book.stats();
  return {{"total_reservations", s.total_reservations},
          {"pending_reservations", s.pending_reservations},
          {"in_use_reservations", s.in_use_reservations},
          {"total_used_ips", s.total_used_ips},
          {"runners_with_used_ips", s.runners_with_used_ips}};
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
  m.store.compact(m.state_json());  // the snapshot covers what commit() wrote
  m.durable_seq = 0;
}

}  // namespace kohaku
