#pragma once
// The book of container IPs on each runner's subnet that are taken, in one of two states:
//   reserved  held by a token until it expires (TTL) or is used or released;
//   used      a container holds it (by token, or reported by the runner without one); it never
//             expires and is freed by releasing the container.
// Every container IP of a runner (scheme.is_container_ip: never network, gateway, the host's
// .254 or broadcast) is exactly one of available/reserved/used, so the counts always add up.
// Not thread-safe: OverlayService serialises access. Errors are DomainError with the kind the
// HTTP API answers.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "common/ipv4.h"
#include "common/subnet_scheme.h"

namespace kohaku {

struct IpEntry {
  uint32_t runner_id = 0;
  Ipv4Addr ip;
  std::string token;  // empty for an IP the runner reported in use without a reservation
  int64_t created_ms = 0;
  int64_t expires_ms = 0;  // meaningful while reserved
  bool is_used = false;
  std::string container_id;  // set once used
};

class IpReservationBook {
 public:
  using Key = std::pair<uint32_t, uint32_t>;  // runner id, ip

  explicit IpReservationBook(const SubnetScheme& scheme) : scheme_(scheme) {}

  // Reserves ip (or the lowest free container IP) on runner_id until now + ttl_ms.
  // 400 not a container IP of that runner, 409 already reserved/used, 409 no free IP left.
  const IpEntry& reserve(uint32_t runner_id, std::optional<Ipv4Addr> ip, std::string token,
                         int64_t now_ms, int64_t ttl_ms);
  // Marks the token's IP used by container_id. 404 unknown/expired token, 409 used by another
  // container. Using it again for the same container changes nothing.
  const IpEntry& use_token(const std::string& token, const std::string& container_id);
  // Records that container_id holds ip (an address Docker picked itself). 400 not a container
  // IP, 409 reserved by a token or held by another container; same container: no change.
  const IpEntry& use_ip(uint32_t runner_id, Ipv4Addr ip, const std::string& container_id,
                        int64_t now_ms);
  // 404 unknown/expired token, 409 in use (release the container instead).
  IpEntry release_token(const std::string& token);
  // Frees everything container_id holds (on runner_id when given); returns what was freed.
  std::vector<IpEntry> release_container(const std::string& container_id,
                                         std::optional<uint32_t> runner_id);
  // Drops reservations whose time is up (used IPs never expire); returns how many.
  size_t expire(int64_t now_ms);
  // Drops everything on a runner that lost its allocation.
  std::vector<IpEntry> drop_runner(uint32_t runner_id);

  const IpEntry* find_token(const std::string& token) const;
  const IpEntry* find(uint32_t runner_id, Ipv4Addr ip) const;

  struct Counts {
    uint64_t total = 0, available = 0, reserved = 0, used = 0;
  };
  Counts counts(uint32_t runner_id) const;
  // Lowest free container IPs, at most limit.
  std::vector<Ipv4Addr> available(uint32_t runner_id, size_t limit) const;
  // By runner then IP; reserved ones always, used ones when include_used.
  std::vector<IpEntry> list(std::optional<uint32_t> runner_id, bool include_used) const;
  struct Stats {
    uint64_t total_reservations = 0;    // entries with a token
    uint64_t pending_reservations = 0;  // with a token, not used yet
    uint64_t in_use_reservations = 0;   // with a token, used
    uint64_t total_used_ips = 0;        // used, with or without token
    uint64_t runners_with_used_ips = 0;
  };
  Stats stats() const;

  // For persistence: keys changed since the last call (present = put, absent = erased).
  std::vector<Key> take_dirty();
  // Undo log for the journal: every change since the last accept() can be taken back, so a
  // change whose journal write failed never stays in memory (docs/control-plane.md).
  void accept() { undo_.clear(); }
  void rollback();

  void put(IpEntry entry);  // replay; throws std::invalid_argument for an entry that cannot be
  void erase(uint32_t runner_id, Ipv4Addr ip);
  static nlohmann::json to_json(const IpEntry& e);
  static IpEntry from_json(const nlohmann::json& j);  // throws std::invalid_argument
  std::vector<IpEntry> all() const;

 private:
  void check_container_ip(uint32_t runner_id, Ipv4Addr ip) const;
  IpEntry& insert(IpEntry entry);
  void remove(std::map<Key, IpEntry>::iterator it);
  // Records key as changed; the first time since accept() also its value before the change.
  // Called before every change.
  void note(const Key& key);

  SubnetScheme scheme_;
  std::map<Key, IpEntry> entries_;
  std::unordered_map<std::string, Key> by_token_;
  std::set<std::pair<int64_t, Key>> expiry_;  // reserved entries by expiry time
  // Per runner: every container IP below this value is taken, so the search for the lowest
  // free ones starts here instead of walking every entry of a busy runner on each reserve.
  // Raised by available(), lowered by remove(); absent means "from the first".
  mutable std::unordered_map<uint32_t, uint32_t> all_taken_below_;
  std::vector<Key> dirty_;
  std::map<Key, std::optional<IpEntry>> undo_;
};

}  // namespace kohaku
