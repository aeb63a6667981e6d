#pragma once
// The format of the overlay service's state in STATE_DIR (docs/control-plane.md, "State"):
// the snapshot document and the journal records, and their replay at start-up. StateStore
// only frames, checksums and flushes the documents; this file says what they contain.
//
//   snapshot: {"subnet_config": "A.B.C.D/N/R/C", "nodes": [node...], "ips": [entry...]}
//   record:   {"op": "batch", "changes": [change...]}, one per operation, replayed whole
//   change:   {"op": "put_node", "node": node} | {"op": "del_node", "hostname": H}
//           | {"op": "put_ip", "entry": entry}  | {"op": "del_ip", "runner_id": N, "ip": IP}
// node and entry are RunnerRegistry::to_json and IpReservationBook::to_json.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/subnet_scheme.h"
#include "host/overlay/ip_reservations.h"
#include "host/overlay/runner_registry.h"
#include "host/state/state_store.h"

namespace kohaku::overlay_journal {

// Everything the registry and the book hold, as the snapshot stores it.
nlohmann::json snapshot(const SubnetScheme& scheme, const RunnerRegistry& registry,
                        const IpReservationBook& book);

// One operation's changes as one record, so it is replayed whole or not at all.
struct Batch {
  nlohmann::json record;  // null when nothing changed
  // The last_used_ms each touched node now has in the journal; nullopt: the node is gone.
  std::vector<std::pair<std::string, std::optional<int64_t>>> last_used;
};
// Takes what registry and book changed since their last accept() (their dirty sets); does not
// accept or roll back, the caller does once it knows whether the record was written.
Batch take_batch(RunnerRegistry& registry, IpReservationBook& book);

// Loads the store's snapshot (if any) and replays its journal records into registry and book.
// When the saved subnet layout differs from `scheme`, nodes keep their ids and the IP entries
// of the old layout are dropped (logged). Throws std::runtime_error naming the file (and the
// record) that cannot be applied.
void replay(StateStore& store, const SubnetScheme& scheme, RunnerRegistry& registry,
            IpReservationBook& book);

}  // namespace kohaku::overlay_journal
