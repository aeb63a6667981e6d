#include "ip_reservations.h"

#include <algorithm>
#include <stdexcept>

#include "common/domain_error.h"
#include "common/json_parse.h"

namespace kohaku {
namespace {

IpReservationBook::Key key_of(uint32_t runner_id, Ipv4Addr ip) {
  return {runner_id, ip.value};
}

}  // namespace

void IpReservationBook::check_container_ip(uint32_t runner_id, Ipv4Addr ip) const {
  if (!scheme_.valid_runner_id(runner_id))
    throw DomainError(ErrorKind::kNotFound,
                      "runner id " + std::to_string(runner_id) + " is not allocated");
  if (!scheme_.is_container_ip(runner_id, ip)) {
    auto subnet = scheme_.runner_subnet(runner_id);
    throw DomainError(ErrorKind::kInvalid,
                      "IP " + ip.to_string() + " is not a container address of runner " +
                          std::to_string(runner_id) + " (subnet " + subnet.to_string() +
                          ", container range " + scheme_.first_container_ip(runner_id).to_string() +
                          ".." + scheme_.last_container_ip(runner_id).to_string() + " without " +
                          scheme_.host_ip_on_runner_subnet(runner_id).to_string() + ")");
  }
}

void IpReservationBook::note(const Key& key) {
  if (!undo_.contains(key)) {
    auto it = entries_.find(key);
    undo_.emplace(key, it == entries_.end() ? std::nullopt : std::optional<IpEntry>(it->second));
  }
  dirty_.push_back(key);
}

void IpReservationBook::rollback() {
  auto undo = std::move(undo_);
  for (auto& [key, before] : undo) {
    if (auto it = entries_.find(key); it != entries_.end()) remove(it);
    if (before) insert(std::move(*before));
  }
  undo_.clear();
  dirty_.clear();
}

IpEntry& IpReservationBook::insert(IpEntry entry) {
  Key key = key_of(entry.runner_id, entry.ip);
  note(key);
  if (!entry.token.empty()) by_token_[entry.token] = key;
  if (!entry.is_used) expiry_.insert({entry.expires_ms, key});
  return entries_.insert_or_assign(key, std::move(entry)).first->second;
}

void IpReservationBook::remove(std::map<Key, IpEntry>::iterator it) {
  note(it->first);
  if (auto h = all_taken_below_.find(it->first.first);
      h != all_taken_below_.end() && it->first.second < h->second)
    h->second = it->first.second;
  const IpEntry& e = it->second;
  if (!e.token.empty()) by_token_.erase(e.token);
  if (!e.is_used) expiry_.erase({e.expires_ms, it->first});
  entries_.erase(it);
}

const IpEntry& IpReservationBook::reserve(uint32_t runner_id, std::optional<Ipv4Addr> ip,
                                          std::string token, int64_t now_ms, int64_t ttl_ms) {
  if (token.empty() || by_token_.contains(token))
    throw std::invalid_argument("reservation token must be new and non-empty");
  if (ip) {
    check_container_ip(runner_id, *ip);
    auto it = entries_.find(key_of(runner_id, *ip));
    if (it != entries_.end())
      throw DomainError(
          ErrorKind::kConflict,
          "IP " + ip->to_string() + " is already " +
              (it->second.is_used ? "in use by container '" + it->second.container_id + "'"
                                  : std::string("reserved")));
  } else {
    auto free = available(runner_id, 1);
    if (free.empty())
      throw DomainError(ErrorKind::kConflict,
                        "no free container IP left on runner " + std::to_string(runner_id));
    ip = free.front();
  }
  IpEntry e;
  e.runner_id = runner_id;
  e.ip = *ip;
  e.token = std::move(token);
  e.created_ms = now_ms;
  e.expires_ms = now_ms + ttl_ms;
  return insert(std::move(e));
}

const IpEntry& IpReservationBook::use_token(const std::string& token,
                                            const std::string& container_id) {
  auto t = by_token_.find(token);
  if (t == by_token_.end())
    throw DomainError(ErrorKind::kNotFound, "reservation not found or expired");
  IpEntry& e = entries_.at(t->second);
  if (e.is_used) {
    if (e.container_id == container_id) return e;
    throw DomainError(
        ErrorKind::kConflict,
        "IP " + e.ip.to_string() + " is already in use by container '" + e.container_id + "'");
  }
  note(t->second);
  expiry_.erase({e.expires_ms, t->second});
  e.is_used = true;
  e.container_id = container_id;
  return e;
}

const IpEntry& IpReservationBook::use_ip(uint32_t runner_id, Ipv4Addr ip,
                                         const std::string& container_id, int64_t now_ms) {
  check_container_ip(runner_id, ip);
  auto it = entries_.find(key_of(runner_id, ip));
  if (it != entries_.end()) {
    const IpEntry& e = it->second;
    if (e.is_used && e.container_id == container_id) return e;
    if (e.is_used)
      throw DomainError(
          ErrorKind::kConflict,
          "IP " + ip.to_string() + " is already in use by container '" + e.container_id + "'");
    // The runner sees a container holding a reserved address: that is the reservation being
    // fulfilled (the container was started with --ip before anyone presented the token).
    // Refusing would leave the address "pending" until it expires and is handed out again
    // while the container still holds it.
    IpEntry& held = it->second;
    note(it->first);
    expiry_.erase({held.expires_ms, it->first});
    held.is_used = true;
    held.container_id = container_id;
    return held;
  }
  IpEntry e;
  e.runner_id = runner_id;
  e.ip = ip;
  e.created_ms = now_ms;
  e.is_used = true;
  e.container_id = container_id;
  return insert(std::move(e));
}

IpEntry IpReservationBook::release_token(const std::string& token) {
  auto t = by_token_.find(token);
  if (t == by_token_.end())
    throw DomainError(ErrorKind::kNotFound, "reservation not found or expired");
  auto it = entries_.find(t->second);
  if (it->second.is_used)
    throw DomainError(ErrorKind::kConflict, "IP " + it->second.ip.to_string() +
                                                " is in use by container '" +
                                                it->second.container_id +
                                                "'; release the container (container_id=) instead");
  IpEntry before = it->second;
  remove(it);
  return before;
}

std::vector<IpEntry> IpReservationBook::release_container(const std::string& container_id,
                                                          std::optional<uint32_t> runner_id) {
  std::vector<IpEntry> freed;
  for (auto it = entries_.begin(); it != entries_.end();) {
    auto next = std::next(it);
    const IpEntry& e = it->second;
    if (e.is_used && e.container_id == container_id && (!runner_id || e.runner_id == *runner_id)) {
      freed.push_back(e);
      remove(it);
    }
    it = next;
  }
  return freed;
}

size_t IpReservationBook::expire(int64_t now_ms) {
  size_t n = 0;
  while (!expiry_.empty() && expiry_.begin()->first <= now_ms) {
    remove(entries_.find(expiry_.begin()->second));
    ++n;
  }
  return n;
}

std::vector<IpEntry> IpReservationBook::drop_runner(uint32_t runner_id) {
  std::vector<IpEntry> dropped;
  auto it = entries_.lower_bound({runner_id, 0});
  while (it != entries_.end() && it->first.first == runner_id) {
    auto next = std::next(it);
    dropped.push_back(it->second);
    remove(it);
    it = next;
  }
  return dropped;
}

const IpEntry* IpReservationBook::find_token(const std::string& token) const {
  auto t = by_token_.find(token);
  return t == by_token_.end() ? nullptr : &entries_.at(t->second);
}

const IpEntry* IpReservationBook::find(uint32_t runner_id, Ipv4Addr ip) const {
  auto it = entries_.find(key_of(runner_id, ip));
  return it == entries_.end() ? nullptr : &it->second;
}

IpReservationBook::Counts IpReservationBook::counts(uint32_t runner_id) const {
  Counts c;
  c.total = scheme_.container_ip_count(runner_id);
  for (auto it = entries_.lower_bound({runner_id, 0});
       it != entries_.end() && it->first.first == runner_id; ++it)
    ++(it->second.is_used ? c.used : c.reserved);
  c.available = c.total - c.used - c.reserved;
  return c;
}

std::vector<Ipv4Addr> IpReservationBook::available(uint32_t runner_id, size_t limit) const {
  std::vector<Ipv4Addr> out;
  uint32_t first = scheme_.first_container_ip(runner_id).value;
  uint32_t last = scheme_.last_container_ip(runner_id).value;
  if (auto h = all_taken_below_.find(runner_id); h != all_taken_below_.end())
    first = std::max(first, h->second);
  auto taken = entries_.lower_bound({runner_id, first});
  for (uint64_t v = first; v <= last && out.size() < limit; ++v) {
    Ipv4Addr ip{static_cast<uint32_t>(v)};
    // Walk the (sorted) taken set alongside the range: O(range), no per-IP lookups.
    while (taken != entries_.end() && taken->first.first == runner_id && taken->first.second < v)
      ++taken;
    if (taken != entries_.end() && taken->first == Key{runner_id, ip.value}) continue;
    if (!scheme_.is_container_ip(runner_id, ip)) continue;
    out.push_back(ip);
  }
  // Everything walked before the first free one was taken (or not a container address).
  if (!out.empty())
    all_taken_below_[runner_id] = out.front().value;
  else if (limit > 0)
    all_taken_below_[runner_id] = static_cast<uint32_t>(std::min<uint64_t>(last + 1ull, ~0u));
  return out;
}

std::vector<IpEntry> IpReservationBook::list(std::optional<uint32_t> runner_id,
                                             bool include_used) const {
  std::vector<IpEntry> out;
  for (const auto& [key, e] : entries_) {
    if (runner_id && key.first != *runner_id) continue;
    if (e.is_used && !include_used) continue;
    out.push_back(e);
  }
  return out;
}

IpReservationBook::Stats IpReservationBook::stats() const {
  Stats s;
  std::set<uint32_t> runners;
  for (const auto& [key, e] : entries_) {
    if (!e.token.empty()) {
      ++s.total_reservations;
      ++(e.is_used ? s.in_use_reservations : s.pending_reservations);
    }
    if (e.is_used) {
      ++s.total_used_ips;
      runners.insert(key.first);
    }
  }
  s.runners_with_used_ips = runners.size();
  return s;
}

std::vector<IpReservationBook::Key> IpReservationBook::take_dirty() {
  std::vector<Key> out;
  std::sort(dirty_.begin(), dirty_.end());
  std::unique_copy(dirty_.begin(), dirty_.end(), std::back_inserter(out));
  dirty_.clear();
  return out;
}

void IpReservationBook::put(IpEntry entry) {
  if (!scheme_.valid_runner_id(entry.runner_id) ||
      !scheme_.is_container_ip(entry.runner_id, entry.ip))
    throw std::invalid_argument("IP " + entry.ip.to_string() +
                                " is not a container address of runner " +
                                std::to_string(entry.runner_id));
  erase(entry.runner_id, entry.ip);
  if (!entry.token.empty()) {
    auto t = by_token_.find(entry.token);
    if (t != by_token_.end()) remove(entries_.find(t->second));
  }
  insert(std::move(entry));
}

void IpReservationBook::erase(uint32_t runner_id, Ipv4Addr ip) {
  auto it = entries_.find(key_of(runner_id, ip));
  if (it != entries_.end()) remove(it);
}

std::vector<IpEntry> IpReservationBook::all() const {
  std::vector<IpEntry> out;
  for (const auto& [key, e] : entries_) out.push_back(e);
  return out;
}

nlohmann::json IpReservationBook::to_json(const IpEntry& e) {
  return {{"runner_id", e.runner_id},      {"ip", e.ip.to_string()},     {"token", e.token},
          {"created_ms", e.created_ms},    {"expires_ms", e.expires_ms}, {"is_used", e.is_used},
          {"container_id", e.container_id}};
}

IpEntry IpReservationBook::from_json(const nlohmann::json& j) {
  try {
    IpEntry e;
    e.runner_id = json_integer_at<uint32_t>(j, "runner_id");
    e.ip = Ipv4Addr::parse(j.at("ip").get<std::string>());
    e.token = j.at("token").get<std::string>();
    e.created_ms = json_integer_at<int64_t>(j, "created_ms");
    e.expires_ms = json_integer_at<int64_t>(j, "expires_ms");
    e.is_used = j.at("is_used").get<bool>();
    e.container_id = j.at("container_id").get<std::string>();
    return e;
  } catch (const nlohmann::json::exception& e) {
    throw std::invalid_argument(std::string("bad IP reservation record: ") + e.what());
  }
}

}  // namespace kohaku
