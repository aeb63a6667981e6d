#pragma once
// The runner's side of named L2 networks (docs/l2-networks.md). For every network this runner
// is a member of: bridge kbr-<name> (or kb-<8 hex of sha256(name)> when that is over 15
// characters) holding the gateway address, vxlan<VNI> (local = our physical IP, no remote,
// learning on) enslaved to it, and one flood FDB entry per other member (head-end replication).
// Leaving removes both devices. The host pushes each change (PUT/DELETE /api/l2/networks/{name})
// and this agent also polls GET /api/networks?runner=<us> every heartbeat, so a missed push is
// repaired within one interval. Updates carry the host's registry revision: an older one never
// overwrites a newer one (a poll answered just before a push arrives is ignored).
#include <nlohmann/json.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "common/firewalld.h"
#include "common/ipv4.h"
#include "common/wire/l2_network_view.h"
#include "runner/bpf/l2_gateway_guard.h"
#include "runner/l2_device_names.h"
#include "runner/overlay/host_api.h"
#include "runner/runner_config.h"
#include "runner/workloads/workload_manager.h"

namespace kohaku::runner {

// The host's view of one network (common/wire/l2_network_view.h); its devices' names in
// runner/l2_device_names.h.
using L2NetworkView = wire::L2NetworkView;

class L2NetworkAgent : public NamedNetworks {
 public:
  // Told the networks now applied after every push, removal and poll (level-triggered: also
  // when nothing changed, so a listener repairs its own drift at every heartbeat). Calls are
  // serialised and each carries a snapshot taken after the previous call returned, so a
  // listener never sees an older set after a newer one. Called without the agent's lock: a
  // listener may call back into the agent. Must not throw.
  using Listener = std::function<void(const std::vector<L2NetworkView>& applied)>;

  L2NetworkAgent(RunnerConfig config, std::string hostname);
  ~L2NetworkAgent() override;  // stop()
  L2NetworkAgent(const L2NetworkAgent&) = delete;
  L2NetworkAgent& operator=(const L2NetworkAgent&) = delete;

  // Register before start(); not thread safe against notifications.
  void add_listener(Listener listener) { listeners_.push_back(std::move(listener)); }

  void start();  // poll thread
  void stop();

  // PUT /api/l2/networks/{name}: apply the host's view (older revisions are ignored).
  nlohmann::json put(const std::string& name, const nlohmann::json& body);
  // DELETE /api/l2/networks/{name}[?revision=N]
  nlohmann::json remove(const std::string& name, std::optional<uint64_t> revision);
  // GET /api/l2/networks
  nlohmann::json status() const;

  // One poll of the host (also what the thread does every heartbeat). Never throws.
  void poll_once();

  // NamedNetworks (workload attach on a named network).
  AttachNetwork attach_network(const std::string& name) override;
  Ipv4Addr allocate(const std::string& name, const std::string& workload_id) override;
  bool release(const std::string& name, const std::string& workload_id) override;

 private:
  void apply_locked(const L2NetworkView& v, bool force);
  void drop_locked(const std::string& name);
  void remove_stale_devices_locked();
  // The gateway guard on every applied network's vxlan device (bpf/l2_gateway_guard.bpf.c);
  // loaded on first use unless the runner runs the kernel datapath. Never throws: a failure is
  // logged once and shown in status(); the networks work without it (with flooding noise).
  // `pending`: a network being applied, not in applied_ yet, whose device is guarded already.
  void sync_guard_locked(const L2NetworkView* pending = nullptr);
  bool newer_locked(const std::string& name, uint64_t revision) const;
  std::optional<Ipv4Addr> physical() const;
  HostApi host(std::chrono::milliseconds timeout) const;
  void notify_listeners();  // without mu_ held
  nlohmann::json put_view(const std::string& name, const nlohmann::json& body);
  nlohmann::json remove_view(const std::string& name, std::optional<uint64_t> revision);
  void poll_host();

  const RunnerConfig config_;
  const std::string hostname_;
  mutable std::mutex mu_;
  std::map<std::string, L2NetworkView> applied_;
  std::map<std::string, uint64_t> seen_revision_;  // also for networks we left
  std::map<std::string, std::string> errors_;      // last apply failure per network
  bool polled_ = false;
  int backwards_polls_ = 0;  // consecutive polls older than what we applied
  int64_t last_poll_ms_ = 0;
  std::string last_poll_error_;
  std::unique_ptr<L2GatewayGuard> guard_;
  FirewalldZones firewall_{"l2"};  // kbr-* and vxlan<VNI> in the trusted zone
  std::string guard_error_;

  std::vector<Listener> listeners_;
  std::mutex notify_mu_;  // serialises notifications

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace kohaku::runner
