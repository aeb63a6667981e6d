#pragma once
// OverlayService's private state and the machinery every operation shares: the lock, the
// journal commit, the group-commit wait and the ordered delivery of observer events. Only the
// overlay_service*.cpp files include it.
#include <atomic>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>

#include "common/completion.h"
#include "host/overlay/ip_reservations.h"
#include "host/overlay/overlay_service.h"
#include "host/overlay/runner_registry.h"
#include "host/state/state_store.h"

namespace kohaku {

// ISO-8601 UTC with second precision, the way KohakuRiver's clients print times; null for 0.
nlohmann::json iso_time(int64_t ms);
// A reservation token as the list shows it (KohakuRiver: its first 20 characters and "...").
std::string shortened_token(const std::string& token);

struct OverlayService::Impl {
  struct Event {
    bool allocated;
    RunnerAllocation allocation;
  };

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
  // The newest heartbeat metrics of each node (memory, CPU, GPUs...): in memory only.
  std::unordered_map<std::string, nlohmann::json> metrics;

  std::mutex notify_mu;  // held while calling the observer, so calls stay in order
  AllocationObserver* observer = nullptr;
  // The thread inside the observer, so a callback that calls back into the service does not
  // wait for itself: the loop it is called from delivers what that call queued.
  std::atomic<std::thread::id> delivering{};

  // Delivers queued events with mu released; notify_mu keeps them in order even when several
  // threads finish operations at once. Called without mu held.
  void flush();

  // What an operation did under mu: its result, the journal seq its answer waits for (0: none)
  // and whether observer events are queued.
  template <class T>
  struct Committed {
    T result;
    uint64_t seq;
    bool notify;
  };
  template <class Body>
  auto run_locked(Body&& body) {
    std::lock_guard lock(mu);
    durable_seq = 0;
    Committed<decltype(body())> c{body(), 0, false};
    c.seq = std::exchange(durable_seq, 0);
    c.notify = !events.empty();
    return c;
  }

  // Runs body with mu held, then, with mu released, waits until the journal flush that covers
  // what body committed durably succeeded (shared with whatever other requests committed
  // meanwhile: one fdatasync per group, not per request), then delivers the observer events
  // body queued. So an answer, and a tunnel or BPF change, only ever follows a durable record.
  // For operations that queue observer events: delivering them (netlink, BPF) takes the
  // calling thread.
  template <class Body>
  auto mutate(Body&& body) {
    auto c = run_locked(body);
    if (c.seq != 0) wait_durable(c.seq);
    if (c.notify) flush();
    return std::move(c.result);
  }

  // mutate() for operations that queue no observer events, without holding a thread for the
  // flush: body runs here with mu held, and done gets its result (or its DomainError) once the
  // journal flush covering it succeeded: on the journal's flusher thread, or right here when
  // nothing had to wait. A failed flush answers DomainError kInternal, as wait_durable() throws.
  template <class Body>
  void mutate_async(JsonCompletion done, Body&& body) {
    std::optional<Committed<nlohmann::json>> c;
    try {
      c.emplace(run_locked(body));
    } catch (...) {
      return done(std::current_exception(), nullptr);
    }
    if (c->seq == 0) return done(nullptr, std::move(c->result));
    store.when_durable(c->seq, [this, result = std::move(c->result), done = std::move(done)](
                                   const std::optional<std::string>& error) mutable {
      if (error) return done(flush_failed(*error), nullptr);
      done(nullptr, std::move(result));
    });
  }

  // Runs a read-only body with mu held, on state brought up to now. What the refresh expired is
  // journaled without waiting for the flush: a read's answer promises nothing a restart must find.
  template <class Body>
  auto read(Body&& body) {
    std::lock_guard lock(mu);
    refresh(clock());
    commit(false);
    return body();
  }

  // Waits for the journal flush covering seq; DomainError kInternal when it failed.
  void wait_durable(uint64_t seq);
  // The DomainError kInternal a failed journal flush is answered with (logged once here).
  std::exception_ptr flush_failed(const std::string& error);

  // Replays STATE_DIR and starts the run from a fresh snapshot (constructor only).
  void load();

  // --- helpers, all called with mu held ---

  void require_overlay() const {
    if (!config.overlay_enabled)
      throw DomainError(ErrorKind::kInvalid, "overlay network is disabled");
  }

  // Brings time-driven state up to now so every answer sees the same truth.
  void refresh(int64_t now) {
    registry.expire(now, config.heartbeat_timeout_ms());
    book.expire(now);
  }

  // The runner `name` (hostname or runner_<id>) with an overlay allocation: 400/404 otherwise.
  const RunnerAllocation& runner(const std::string& name) const;
  // The id of the runner a request narrows to, as runner() finds it; nullopt when it names none.
  std::optional<uint32_t> runner_id(const std::optional<std::string>& name) const {
    if (!name) return std::nullopt;
    return runner(*name).id;
  }

  // What only the runner itself may do (record an address by container, free a container's
  // addresses) needs its credential: 403 naming the alternative otherwise.
  void require_credential(const RunnerAllocation& a, const std::string& presented,
                          const std::string& what) const;

  std::string name_of(uint32_t id) const {
    const auto* a = registry.find_id(id);
    return a ? a->hostname : RunnerRegistry::placeholder_name(id);
  }

  // Journals everything the registry and the book changed since the last commit as one record,
  // so an operation is replayed whole or not at all. When the record cannot be written (disk
  // full, I/O error) every change since the last commit is taken back out of memory before the
  // 500: memory never holds what a restart would not find. Callers queue observer events only
  // after commit() returned, so a rolled-back change is not acted on either.
  // durable: the record must be on disk before the operation is answered. commit() only writes
  // it; mutate() waits for the flush after letting go of mu (group commit).
  void commit(bool durable);

  // The `overlay` block of the register and heartbeat answers.
  nlohmann::json overlay_block(const RunnerAllocation& a) const;
  // One IP entry as the reservation routes show it.
  nlohmann::json entry_json(const IpEntry& e, bool shorten_token) const;
};

}  // namespace kohaku
