#pragma once
// Which runners (nodes) the host knows and which overlay runner id each one holds.
//
// Id rules users rely on:
//  - a new runner gets the lowest free id in 1..scheme.max_runner_id();
//  - a hostname keeps its id (and so its subnet) on reconnect, also when its physical IP changed;
//  - a runner whose physical IP matches a recovery placeholder "runner_<id>" takes that id over;
//  - when every id is taken, the least recently used *inactive* runner is evicted (ties: lowest
//    id); when all are active, the runner is registered as a node without an overlay id (as
//    KohakuRiver answers `overlay: null`) and Registration::no_overlay_reason says why.
// Not thread-safe: OverlayService serialises access. Every change records the hostname it
// touched so the caller can journal exactly what changed (take_dirty()).
#include <nlohmann/json.hpp>

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "common/ipv4.h"
#include "common/subnet_scheme.h"

namespace kohaku {

struct RunnerAllocation {
  uint32_t id = 0;  // overlay runner id; 0 = a registered node without an overlay allocation
  std::string hostname;
  Ipv4Addr physical_ip;
  std::string url;
  Ipv4Cidr subnet;           // scheme.runner_subnet(id) when id != 0
  bool is_active = false;    // heard from within the heartbeat timeout
  bool placeholder = false;  // "runner_<id>" recovered from an existing device, not a node
  int64_t created_ms = 0;
  int64_t last_used_ms = 0;  // last register/heartbeat: the LRU order for eviction
  int64_t last_seen_ms = 0;  // liveness clock; restarted on host start-up (grace period)
  nlohmann::json details = nlohmann::json::object();  // other register fields (cores, gpus...)
  // Secret issued at the first registration (docs/security.md); empty for placeholders and
  // for nodes recorded before credentials existed. Needed to move the hostname elsewhere.
  std::string credential;

  bool has_overlay() const { return id != 0; }
};

class RunnerRegistry {
 public:
  explicit RunnerRegistry(const SubnetScheme& scheme) : scheme_(scheme) {}

  struct Registration {
    RunnerAllocation allocation;
    bool created = false;                     // the hostname was not known before
    std::optional<RunnerAllocation> evicted;  // as it was before losing its id
    std::string no_overlay_reason;            // set when an id was wanted and none could be had
  };
  // Registers or re-registers hostname. With allocate_id false (overlay disabled) the node is
  // recorded without touching ids. When the pool is full and all active, the node is recorded
  // without an id and no_overlay_reason says so.
  Registration register_runner(const std::string& hostname, Ipv4Addr physical_ip,
                               const std::string& url, nlohmann::json details, int64_t now_ms,
                               bool allocate_id);

  // Marks hostname active and used now; nullptr when unknown. With record false the change is
  // left out of take_dirty() (a routine heartbeat that need not reach the journal).
  const RunnerAllocation* heartbeat(const std::string& hostname, int64_t now_ms,
                                    bool record = true);
  // Marks inactive every active runner not seen for timeout_ms; returns those.
  std::vector<RunnerAllocation> expire(int64_t now_ms, int64_t timeout_ms);

  // Records an inactive placeholder "runner_<id>" for a device found at start-up. Returns it,
  // or nullopt when id is outside the pool or already held (then nothing changes).
  std::optional<RunnerAllocation> adopt_placeholder(uint32_t id, Ipv4Addr physical_ip,
                                                    int64_t now_ms);

  // Sets the node's credential (empty: forgets it). False when hostname is not a node.
  bool set_credential(const std::string& hostname, std::string credential);

  // Takes the overlay id away from the runner holding it (a placeholder disappears, a node
  // stays as a node without overlay). Returns the allocation as it was.
  RunnerAllocation release(uint32_t id);

  // Lookups. resolve() accepts a hostname or "runner_<id>".
  const RunnerAllocation* find_hostname(const std::string& hostname) const;
  const RunnerAllocation* find_id(uint32_t id) const;
  const RunnerAllocation* resolve(const std::string& name) const;

  std::vector<RunnerAllocation> nodes() const;        // real nodes, by hostname
  std::vector<RunnerAllocation> allocations() const;  // holders of an id, by id
  uint32_t free_id_count() const;
  // Whether a registration of hostname now would get an id (a free one, or an inactive
  // runner's to evict). Scans the holders when none is free: for nodes without an id only.
  bool could_allocate(const std::string& hostname) const;
  // Why a node has no id while the overlay is on: the pool is full of active runners.
  std::string pool_full_reason() const;
  const SubnetScheme& scheme() const { return scheme_; }

  // For persistence: hostnames changed since the last call (present = put, absent = erased).
  std::vector<std::string> take_dirty();
  // Undo log for the journal: every recorded change since the last accept() can be taken back,
  // so a change whose journal write failed never stays in memory. Changes left out of
  // take_dirty() (a heartbeat with record false) are not undone.
  void accept() { undo_.clear(); }
  void rollback();
  // Replay: stores the record as the newest truth (its id is taken from any other holder),
  // fills subnet, drops an id outside the pool.
  void put(RunnerAllocation allocation);
  void erase(const std::string& hostname);
  static nlohmann::json to_json(const RunnerAllocation& a);
  static RunnerAllocation from_json(const nlohmann::json& j);  // throws std::invalid_argument

  static std::string placeholder_name(uint32_t id) { return "runner_" + std::to_string(id); }
  // id when name is "runner_<id>" (no leading zeros), else 0.
  static uint32_t parse_placeholder_name(std::string_view name);

 private:
  uint32_t lowest_free_id();
  void set_id(RunnerAllocation& a, uint32_t id);
  // Every change of host_of_id_ goes through these two, which keep the free-id index.
  void hold_id(uint32_t id, const std::string& hostname);
  void drop_id(uint32_t id);
  // Records hostname as changed; the first time since accept() also its record before the
  // change. Called before every recorded change.
  void touch(const std::string& hostname);
  // Notes an active runner's last_seen_ms for expire().
  void watch_expiry(const RunnerAllocation& a);
  // Takes a record's own entries out of the expiry and placeholder indexes (erase(), and so
  // rollback(), leaves none behind for a record that is gone).
  void unwatch(const RunnerAllocation& a);

  SubnetScheme scheme_;
  std::map<std::string, RunnerAllocation> by_host_;
  std::map<uint32_t, std::string> host_of_id_;
  std::vector<std::string> dirty_;

  // Indexes that keep registration and expiry O(log n) amortized instead of scans of every
  // runner. Entries may be stale; each use checks them against the maps above and drops the
  // stale ones, so only the additions need to be complete.
  // Free ids: every id below free_from_ that is free is in free_ids_; ids >= free_from_ are free.
  std::set<uint32_t> free_ids_;
  uint32_t free_from_ = 1;
  std::set<std::pair<uint32_t, uint32_t>> placeholders_;  // (physical IP, id) of placeholders
  std::set<std::pair<int64_t, std::string>> expiry_;      // (last_seen_ms, hostname), active ones

  // Undo log: the record of each hostname touched since accept() as it was before (nullopt: it
  // did not exist), and free_from_ before the first of those changes.
  std::map<std::string, std::optional<RunnerAllocation>> undo_;
  uint32_t undo_free_from_ = 1;
};

}  // namespace kohaku
