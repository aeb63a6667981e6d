#include "runner_registry.h"

#include <algorithm>
#include <charconv>
#include <stdexcept>

#include "common/api_error.h"
#include "common/json_parse.h"

namespace kohaku {

uint32_t RunnerRegistry::parse_placeholder_name(std::string_view name) {
  constexpr std::string_view kPrefix = "runner_";
  if (name.size() <= kPrefix.size() || name.substr(0, kPrefix.size()) != kPrefix) return 0;
  auto digits = name.substr(kPrefix.size());
  if (digits[0] == '0') return 0;
  uint32_t id = 0;
  auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), id);
  if (ec != std::errc() || ptr != digits.data() + digits.size()) return 0;
  return id;
}

void RunnerRegistry::touch(const std::string& hostname) {
  if (undo_.empty()) undo_free_from_ = free_from_;
  if (!undo_.contains(hostname)) {
    auto it = by_host_.find(hostname);
    undo_.emplace(hostname, it == by_host_.end() ? std::nullopt
                                                 : std::optional<RunnerAllocation>(it->second));
  }
  dirty_.push_back(hostname);
}

void RunnerRegistry::rollback() {
  auto undo = std::move(undo_);
  // Erase first, then put back: put() takes an id from whoever holds it, and every holder that
  // changed is in the log, so the order of the puts does not matter. erase() takes a record out
  // of the indexes too (an undone registration leaves neither its id held nor its expiry
  // watched); put() indexes the restored records again.
  for (const auto& [hostname, before] : undo) erase(hostname);
  for (auto& [hostname, before] : undo)
    if (before) put(std::move(*before));
  if (!undo.empty()) {
    // The ids held now are the ones held before the first change, all below the high-water mark
    // of then: ids handed out above it are above the mark again rather than entries of the set.
    // (The max() only guards the invariant should an unrecorded put() have held a higher id.)
    uint32_t above_held = host_of_id_.empty() ? 1 : host_of_id_.rbegin()->first + 1;
    free_from_ = std::max(undo_free_from_, above_held);
    free_ids_.erase(free_ids_.lower_bound(free_from_), free_ids_.end());
  }
  undo_.clear();
  dirty_.clear();
}

uint32_t RunnerRegistry::lowest_free_id() {
  while (!free_ids_.empty() && host_of_id_.contains(*free_ids_.begin()))
    free_ids_.erase(free_ids_.begin());
  if (!free_ids_.empty()) return *free_ids_.begin();
  return free_from_ <= scheme_.max_runner_id() ? free_from_ : 0;
}

void RunnerRegistry::hold_id(uint32_t id, const std::string& hostname) {
  if (id >= free_from_) {
    // Ids skipped over (a replayed record, a recovered device) stay known as free.
    for (uint32_t skipped = free_from_; skipped < id; ++skipped)
      if (!host_of_id_.contains(skipped)) free_ids_.insert(skipped);
    free_from_ = id + 1;
  }
  host_of_id_[id] = hostname;
}

void RunnerRegistry::drop_id(uint32_t id) {
  if (host_of_id_.erase(id) && id < free_from_) free_ids_.insert(id);
}

void RunnerRegistry::watch_expiry(const RunnerAllocation& a) {
  if (a.is_active) expiry_.emplace(a.last_seen_ms, a.hostname);
}

void RunnerRegistry::unwatch(const RunnerAllocation& a) {
  if (a.is_active) expiry_.erase({a.last_seen_ms, a.hostname});
  if (a.placeholder && a.id != 0) placeholders_.erase({a.physical_ip.value, a.id});
}

void RunnerRegistry::set_id(RunnerAllocation& a, uint32_t id) {
  if (a.id != 0) drop_id(a.id);
  a.id = id;
  if (id != 0) {
    a.subnet = scheme_.runner_subnet(id);
    hold_id(id, a.hostname);
    if (a.placeholder) placeholders_.emplace(a.physical_ip.value, id);
  } else {
    a.subnet = Ipv4Cidr{};
  }
}

RunnerRegistry::Registration RunnerRegistry::register_runner(const std::string& hostname,
                                                             Ipv4Addr physical_ip,
                                                             const std::string& url,
                                                             nlohmann::json details, int64_t now_ms,
                                                             bool allocate_id) {
  Registration result;
  auto it = by_host_.find(hostname);
  bool needs_id = allocate_id && (it == by_host_.end() || it->second.id == 0);
  uint32_t takeover_id = 0;
  if (needs_id) {
    // A device recovered at start-up belongs to whoever registers from its remote address
    // (the lowest id when there are several).
    for (auto c = placeholders_.lower_bound({physical_ip.value, 0});
         c != placeholders_.end() && c->first == physical_ip.value;) {
      auto holder = host_of_id_.find(c->second);
      if (holder != host_of_id_.end()) {
        const auto& p = by_host_.at(holder->second);
        if (p.placeholder && p.physical_ip == physical_ip) {
          takeover_id = c->second;
          break;
        }
      }
      c = placeholders_.erase(c);  // no longer a placeholder at that address
    }
  }

  uint32_t new_id = 0;
  if (takeover_id != 0) {
    auto placeholder = by_host_.at(host_of_id_.at(takeover_id));
    touch(placeholder.hostname);
    drop_id(takeover_id);
    by_host_.erase(placeholder.hostname);
    new_id = takeover_id;
  } else if (needs_id) {
    new_id = lowest_free_id();
    if (new_id == 0) {
      const RunnerAllocation* victim = nullptr;
      for (const auto& [id, holder] : host_of_id_) {
        const auto& a = by_host_.at(holder);
        if (a.is_active || a.hostname == hostname) continue;
        if (victim == nullptr || a.last_used_ms < victim->last_used_ms) victim = &a;
      }
      if (victim == nullptr) {
        // KohakuRiver registers such a runner anyway and answers `overlay: null`; the runner
        // falls back to its default network and gets an id once one is free.
        result.no_overlay_reason =
            pool_full_reason() + "; '" + hostname + "' is registered without an overlay allocation";
      } else {
        new_id = victim->id;
        result.evicted = *victim;
        release(victim->id);
      }
    }
  }

  touch(hostname);
  if (it == by_host_.end()) {
    RunnerAllocation a;
    a.hostname = hostname;
    a.created_ms = now_ms;
    it = by_host_.emplace(hostname, std::move(a)).first;
    result.created = true;
  }
  RunnerAllocation& a = it->second;
  a.physical_ip = physical_ip;
  a.url = url;
  a.details = std::move(details);
  a.is_active = true;
  a.placeholder = false;
  a.last_used_ms = now_ms;
  a.last_seen_ms = now_ms;
  if (new_id != 0) set_id(a, new_id);
  watch_expiry(a);
  result.allocation = a;
  return result;
}

std::string RunnerRegistry::pool_full_reason() const {
  return "overlay pool of " + std::to_string(scheme_.max_runner_id()) +
         " runner ids is full and all of them are active";
}

bool RunnerRegistry::could_allocate(const std::string& hostname) const {
  if (free_id_count() > 0) return true;
  for (const auto& [id, holder] : host_of_id_) {
    const auto& a = by_host_.at(holder);
    if (!a.is_active && a.hostname != hostname) return true;
  }
  return false;
}

const RunnerAllocation* RunnerRegistry::heartbeat(const std::string& hostname, int64_t now_ms,
                                                  bool record) {
  auto it = by_host_.find(hostname);
  if (it == by_host_.end() || it->second.placeholder) return nullptr;
  if (record) touch(hostname);
  it->second.is_active = true;
  it->second.last_used_ms = now_ms;
  it->second.last_seen_ms = now_ms;
  watch_expiry(it->second);
  return &it->second;
}

std::vector<RunnerAllocation> RunnerRegistry::expire(int64_t now_ms, int64_t timeout_ms) {
  // Oldest sightings first; stale ones (seen again since, inactive, gone) are dropped on the way.
  std::vector<RunnerAllocation> gone;
  while (!expiry_.empty() && now_ms - expiry_.begin()->first > timeout_ms) {
    auto [seen, hostname] = *expiry_.begin();
    expiry_.erase(expiry_.begin());
    auto it = by_host_.find(hostname);
    if (it == by_host_.end() || !it->second.is_active || it->second.last_seen_ms != seen) continue;
    touch(hostname);
    it->second.is_active = false;
    gone.push_back(it->second);
  }
  // In hostname order, as a walk over every runner would list them.
  std::sort(gone.begin(), gone.end(), [](const RunnerAllocation& a, const RunnerAllocation& b) {
    return a.hostname < b.hostname;
  });
  return gone;
}

std::optional<RunnerAllocation> RunnerRegistry::adopt_placeholder(uint32_t id, Ipv4Addr physical_ip,
                                                                  int64_t now_ms) {
  if (!scheme_.valid_runner_id(id) || host_of_id_.contains(id)) return std::nullopt;
  RunnerAllocation a;
  a.hostname = placeholder_name(id);
  if (by_host_.contains(a.hostname)) return std::nullopt;
  a.physical_ip = physical_ip;
  a.placeholder = true;
  a.created_ms = a.last_used_ms = a.last_seen_ms = now_ms;
  touch(a.hostname);
  auto& stored = by_host_.emplace(a.hostname, std::move(a)).first->second;
  set_id(stored, id);
  return stored;
}

bool RunnerRegistry::set_credential(const std::string& hostname, std::string credential) {
  auto it = by_host_.find(hostname);
  if (it == by_host_.end() || it->second.placeholder) return false;
  touch(hostname);
  it->second.credential = std::move(credential);
  return true;
}

RunnerAllocation RunnerRegistry::release(uint32_t id) {
  auto holder = host_of_id_.find(id);
  if (holder == host_of_id_.end())
    throw std::out_of_range("runner id " + std::to_string(id) + " is not allocated");
  auto it = by_host_.find(holder->second);
  RunnerAllocation before = it->second;
  touch(before.hostname);
  if (before.placeholder) {
    drop_id(id);
    by_host_.erase(it);
  } else {
    set_id(it->second, 0);
  }
  return before;
}

const RunnerAllocation* RunnerRegistry::find_hostname(const std::string& hostname) const {
  auto it = by_host_.find(hostname);
  return it == by_host_.end() ? nullptr : &it->second;
}

const RunnerAllocation* RunnerRegistry::find_id(uint32_t id) const {
  auto it = host_of_id_.find(id);
  return it == host_of_id_.end() ? nullptr : &by_host_.at(it->second);
}

const RunnerAllocation* RunnerRegistry::resolve(const std::string& name) const {
  if (const auto* a = find_hostname(name)) return a;
  uint32_t id = parse_placeholder_name(name);
  return id == 0 ? nullptr : find_id(id);
}

std::vector<RunnerAllocation> RunnerRegistry::nodes() const {
  std::vector<RunnerAllocation> out;
  for (const auto& [hostname, a] : by_host_)
    if (!a.placeholder) out.push_back(a);
  return out;
}

std::vector<RunnerAllocation> RunnerRegistry::allocations() const {
  std::vector<RunnerAllocation> out;
  for (const auto& [id, hostname] : host_of_id_) out.push_back(by_host_.at(hostname));
  return out;
}

uint32_t RunnerRegistry::free_id_count() const {
  return scheme_.max_runner_id() - static_cast<uint32_t>(host_of_id_.size());
}

std::vector<std::string> RunnerRegistry::take_dirty() {
  std::vector<std::string> out;
  for (auto& h : dirty_)
    if (std::find(out.begin(), out.end(), h) == out.end()) out.push_back(std::move(h));
  dirty_.clear();
  return out;
}

void RunnerRegistry::put(RunnerAllocation a) {
  erase(a.hostname);
  uint32_t id = a.id;
  if (id != 0 && !scheme_.valid_runner_id(id)) id = 0;
  // The record being replayed is newer than whatever holds the id now (a batch lists the new
  // holder and the old one in any order): take the id over.
  if (auto holder = host_of_id_.find(id); id != 0 && holder != host_of_id_.end()) {
    auto& old = by_host_.at(holder->second);
    if (old.placeholder)
      erase(old.hostname);
    else
      set_id(old, 0);
  }
  a.id = 0;
  if (a.placeholder && id == 0) return;  // a placeholder is nothing without its id
  auto& stored = by_host_.insert_or_assign(a.hostname, std::move(a)).first->second;
  set_id(stored, id);
  watch_expiry(stored);
}

void RunnerRegistry::erase(const std::string& hostname) {
  auto it = by_host_.find(hostname);
  if (it == by_host_.end()) return;
  unwatch(it->second);
  if (it->second.id != 0) drop_id(it->second.id);
  by_host_.erase(it);
}

nlohmann::json RunnerRegistry::to_json(const RunnerAllocation& a) {
  nlohmann::json j = {{"id", a.id},
                      {"hostname", a.hostname},
                      {"physical_ip", a.physical_ip.to_string()},
                      {"url", a.url},
                      {"is_active", a.is_active},
                      {"placeholder", a.placeholder},
                      {"created_ms", a.created_ms},
                      {"last_used_ms", a.last_used_ms},
                      {"last_seen_ms", a.last_seen_ms},
                      {"details", a.details}};
  if (!a.credential.empty()) j["credential"] = a.credential;
  return j;
}

RunnerAllocation RunnerRegistry::from_json(const nlohmann::json& j) {
  try {
    RunnerAllocation a;
    a.id = json_integer_at<uint32_t>(j, "id");
    a.hostname = j.at("hostname").get<std::string>();
    a.physical_ip = Ipv4Addr::parse(j.at("physical_ip").get<std::string>());
    a.url = j.at("url").get<std::string>();
    a.is_active = j.at("is_active").get<bool>();
    a.placeholder = j.at("placeholder").get<bool>();
    a.created_ms = json_integer_at<int64_t>(j, "created_ms");
    a.last_used_ms = json_integer_at<int64_t>(j, "last_used_ms");
    a.last_seen_ms = json_integer_at<int64_t>(j, "last_seen_ms");
    a.details = j.value("details", nlohmann::json::object());
    a.credential = j.value("credential", std::string());
    if (a.hostname.empty()) throw std::invalid_argument("empty hostname");
    return a;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("bad runner record: ") + e.what());
  }
}

}  // namespace kohaku
