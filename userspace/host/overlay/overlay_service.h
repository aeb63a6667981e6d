#pragma once
// Everything the host's control API does, independent of HTTP. Each method takes a typed request
// (host/overlay/overlay_requests.h; the API layer, host/api/overlay_params.h, parses query
// strings and bodies into them) and returns the JSON body of a 2xx answer, or throws
// DomainError(kind, message), which the HTTP layer answers with the kind's status. The state is
// persisted through host/overlay/overlay_journal.h; no answer is given before the journal
// record of its change is durable. The busiest changes (heartbeat and the IP reservation
// routes) also come in a form that answers through a JsonCompletion (common/completion.h)
// instead of holding the calling thread while the journal is flushed: it is called once, with
// what the blocking form returns or throws, from the journal's flusher thread or, when nothing
// had to wait, before the call returns. Methods are safe to call from several
// threads at once. Implemented in overlay_service.cpp (runners), overlay_service_ips.cpp (IP
// reservations) and overlay_service_impl.{h,cpp} (lock, journal commit, observer delivery).
#include <nlohmann/json.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/api_error.h"
#include "common/completion.h"
#include "host/host_config.h"
#include "host/overlay/overlay_requests.h"

namespace kohaku {

// Wall-clock milliseconds since the epoch; injected so tests can move time.
using Clock = std::function<int64_t()>;
int64_t system_clock_ms();

struct RunnerAllocation;  // host/overlay/runner_registry.h

// Told about allocations as they come and go, so the network side (vxkr devices, BPF maps)
// follows the state. Called with the service's lock released, in the order changes happened.
class AllocationObserver {
 public:
  virtual ~AllocationObserver() = default;
  virtual void on_allocated(const RunnerAllocation& allocation) = 0;  // new or changed
  virtual void on_released(const RunnerAllocation& allocation) = 0;   // evicted or released
};

// The request header a runner presents its credential in; named in the service's 403 messages.
inline constexpr const char* kRunnerCredentialHeader = "X-Kohaku-Runner-Credential";

class OverlayService {
 public:
  // Loads state from config.state_dir (creating it), replaying anything a crash left behind.
  OverlayService(const HostConfig& config, Clock clock = system_clock_ms);
  ~OverlayService();
  OverlayService(const OverlayService&) = delete;
  OverlayService& operator=(const OverlayService&) = delete;

  void set_observer(AllocationObserver* observer);

  // POST /api/register. `credential`: what the runner presented (header
  // X-Kohaku-Runner-Credential), empty when none. A known hostname that holds a credential
  // moves to another url only with it (403 otherwise); a wrong one is always 403. The answer
  // carries `runner_credential` when one was issued (first registration, or a node without one).
  nlohmann::json register_runner(const RegisterRequest& request,
                                 const std::string& credential = {});
  // PUT /api/heartbeat/{hostname}; 404 when unknown, 403 when `credential` is given and wrong.
  // `metrics`: what the runner reported (KohakuRiver's heartbeat fields: memory, CPU, GPUs...),
  // shown by nodes() and health(). A node registered without an overlay id (the pool was full)
  // is told 404 once an id is free, so it registers again and gets one.
  nlohmann::json heartbeat(const std::string& hostname, const std::string& credential = {},
                           const nlohmann::json& metrics = nlohmann::json::object());
  void heartbeat(const std::string& hostname, const std::string& credential,
                 const nlohmann::json& metrics, JsonCompletion done);
  // GET /api/nodes: KohakuRiver's node fields (total_cores, cores_in_use, available_cores,
  // status, memory and GPU fields, ...) plus the overlay's (overlay_service_nodes.cpp).
  nlohmann::json nodes();
  // GET /api/health[?hostname=]: KohakuRiver's health view of the nodes, one sample (now):
  // {nodes: [[...]], aggregate: [{...}]}, or [node] for one hostname (404 when unknown).
  nlohmann::json health(const std::optional<std::string>& hostname);
  // The credential issued to hostname's runner; empty when none (unknown, or never issued).
  // The host presents it on its own calls to that runner (docs/security.md).
  std::string runner_credential(const std::string& hostname) const;
  // GET /api/overlay/status
  nlohmann::json overlay_status();
  // POST /api/overlay/release/{runner}  (runner = hostname or runner_<id>)
  nlohmann::json release_runner(const std::string& runner);
  // POST /api/overlay/cleanup
  nlohmann::json cleanup();

  // /api/overlay/ip/...
  nlohmann::json ip_available(const IpAvailableRequest& request);  // GET available
  nlohmann::json ip_info(const std::string& runner);               // GET info/{runner}
  nlohmann::json ip_reserve(const IpReserveRequest& request);      // POST reserve
  void ip_reserve(const IpReserveRequest& request, JsonCompletion done);
  // POST release. By token, or by container_id + runner with that runner's credential.
  nlohmann::json ip_release(const IpReleaseRequest& request, const std::string& credential = {});
  void ip_release(const IpReleaseRequest& request, const std::string& credential,
                  JsonCompletion done);
  nlohmann::json ip_reservations(const IpReservationsRequest& request);  // GET reservations
  nlohmann::json ip_validate(const IpValidateRequest& request);          // POST validate
  // POST use. By token, or by runner + ip with that runner's credential.
  nlohmann::json ip_use(const IpUseRequest& request, const std::string& credential = {});
  void ip_use(const IpUseRequest& request, const std::string& credential, JsonCompletion done);
  nlohmann::json ip_stats();  // GET stats

  // Periodic work: marks runners inactive after the heartbeat timeout, expires unused
  // reservations. The daemon calls it every CLEANUP_CHECK_INTERVAL_SECONDS.
  void tick();

  // Snapshot of all allocations (for the network side's reconciliation at start-up).
  std::vector<RunnerAllocation> allocations() const;

  // Recovery (network side, at start-up): records an inactive placeholder "runner_<id>" for an
  // existing vxkr device whose remote is physical_ip, so the id is not handed to someone else;
  // the runner registering from physical_ip takes it over. False when the id is outside the
  // pool or already held (nothing changes then). The observer is not told: the device exists.
  bool adopt_placeholder(uint32_t id, Ipv4Addr physical_ip);

  // Writes a fresh snapshot and empties the journal now (it also happens by itself when the
  // journal grows, and at start-up).
  void compact();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace kohaku
