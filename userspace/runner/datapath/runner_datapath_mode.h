#pragma once
// How the runner masquerades traffic of its networks (the overlay and the named L2 networks it is
// a member of) to the outside and filters what it forwards into them: the BPF datapath
// (OVERLAY_DATAPATH = "bpf", the default: TC programs on the uplink and the bridge with a BPF
// conntrack, userspace/runner/bpf) or the kernel datapath (KohakuRiver's iptables FORWARD accepts
// and nat MASQUERADE, masquerade_iptables.h).
//
// The datapath is chosen when the overlay first comes up: BPF is loaded (or a previous daemon's
// pins adopted, flows kept), and when that fails the kernel path is used with one warning. Each
// heartbeat brings the active datapath in line with the overlay CIDR and the current uplink
// (a changed uplink address re-configures the programs and drops flows masqueraded behind the
// old one), and the other datapath's leftovers are removed once. The conntrack garbage collector
// runs on every heartbeat. Nothing is detached on shutdown: a restarted daemon adopts the pins
// and replaces the filters in place, so flows survive.
//
// Thread safe: the control loop applies, API threads read the status and change deny rules, the
// L2 agent (its thread or an API thread) sets the named networks.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/config_checks.h"
#include "common/ipv4.h"
#include "common/wire/l2_network_view.h"
#include "runner/bpf/deny_rule.h"
#include "runner/bpf/nat_config.h"
#include "runner/datapath/deny_rule_store.h"
#include "runner/datapath/fast_path.h"
#include "runner/datapath/masquerade_iptables.h"
#include "runner/overlay/uplink.h"
#include "runner/runner_config.h"

namespace kohaku::runner {

class RunnerDatapath;

// What the BPF datapath is configured with, from the runner's configuration.
NatConfig nat_config_for(const RunnerConfig& config, const Ipv4Cidr& overlay, Ipv4Addr uplink);

class RunnerDatapathMode {
 public:
  explicit RunnerDatapathMode(const RunnerConfig& config, std::string iptables = "iptables");
  ~RunnerDatapathMode();  // leaves filters, pins and rules in place
  RunnerDatapathMode(const RunnerDatapathMode&) = delete;
  RunnerDatapathMode& operator=(const RunnerDatapathMode&) = delete;

  // The overlay is up (called on every heartbeat): choose the datapath the first time, then
  // make it match `overlay` (the whole overlay network) and the uplink, found from the routing
  // table (`host`: the host's physical address, for a runner without a default route;
  // `physical`: the runner's own address, preferred on the uplink). Never throws: failures are
  // logged once per distinct message and shown in status().
  void apply(const Ipv4Cidr& overlay, Ipv4Addr host, std::optional<Ipv4Addr> physical);
  // The named L2 networks this runner is a member of (docs/l2-networks.md), as the L2 agent
  // applied them (the whole set, on every push, removal and poll): BPF writes their subnets
  // into runner_nets (masqueraded when outbound_nat is on, isolated from each other) and puts the
  // forward filter on each network's bridge that exists (and takes it off bridges of networks
  // that left); the kernel datapath adds their iptables rules. Remembered and re-applied on
  // every apply() (a recreated bridge gets its filter back); before the datapath is chosen it is
  // only remembered. Never throws: failures are logged once and shown in status().
  void set_named_networks(const std::vector<wire::L2NetworkView>& applied);
  // The workloads one source ("runner": the daemon's own, "docker": Docker's containers) has on
  // the kohaku bridges, for the fast path (fast_path.h; BPF datapath only), replacing what it
  // gave before; applied on the next apply(). Never throws.
  void set_fast_path_workloads(const std::string& source, std::vector<FastPathWorkload> workloads);
  // The bridges whose workloads the fast path serves: the overlay's and each named network's.
  std::set<std::string> fast_path_bridges() const;
  // The overlay is disabled: our TC filters, pins and iptables rules go.
  void remove_all();
  // Expired flows out of the BPF conntrack (no-op on the kernel datapath).
  void collect_garbage();

  // The "datapath" object of GET /api/overlay/status (docs/runner.md).
  nlohmann::json status() const;

  // Deny rules (BPF datapath only; DomainError kConflict otherwise). add: false when it existed.
  bool add_deny_rule(const DenyRule& rule);
  bool remove_deny_rule(const DenyRule& rule);
  nlohmann::json deny_rules() const;

 private:
  bool try_load_bpf();  // under mu_
  // Makes the loaded map hold the stored rules (or stores the map's, the first time). Under mu_.
  void restore_deny_rules();
  // After a change in the map: store the map's rules; on failure undo the change and throw.
  void persist_deny_rules(const std::function<void()>& undo);
  void apply_bpf(const Ipv4Cidr& overlay, Ipv4Addr host, std::optional<Ipv4Addr> physical);
  void apply_kernel(const Ipv4Cidr& overlay);
  void apply_named_bpf();  // runner_nets and the filters on the named networks' bridges
  void apply_fast_path(uint32_t uplink_ifindex);  // under mu_, BPF active
  std::set<std::string> kohaku_bridges()
      const;  // under mu_: the overlay's and each named network's
  nlohmann::json named_status() const;
  void leave_kernel_mode();
  void leave_bpf_mode();
  void note_error(const std::string& what);  // logs once per distinct message
  void clear_error();
  void note_named_error(const std::string& what);  // same, for the named networks' part
  RunnerDatapath& bpf_for_rules() const;

  const RunnerConfig config_;
  const Datapath requested_;

  mutable std::mutex mu_;
  const DenyRuleStore rule_store_;       // STATE_DIR/deny-rules.json
  mutable MasqueradeIptables iptables_;  // rules() spawns iptables, no state of its own
  std::optional<Datapath> active_;       // chosen when the overlay first comes up
  std::string reason_;                   // why active differs from requested
  std::string error_;                    // the last failure to bring the datapath in line
  std::unique_ptr<RunnerDatapath> bpf_;
  std::unique_ptr<FastPath> fast_path_;  // with bpf_
  std::map<std::string, std::vector<FastPathWorkload>> fast_sources_;
  std::optional<Uplink> uplink_;
  std::optional<Ipv4Cidr> overlay_;
  int attached_bridge_ = 0;  // ifindex our filter was put on

  // A named network as far as the datapath cares.
  struct NamedNet {
    std::string name;
    uint32_t vni = 0;  // the network's id in runner_nets
    Ipv4Cidr subnet;
    bool outbound_nat = true;
    bool operator==(const NamedNet&) const = default;
  };
  std::vector<NamedNet> named_;               // the L2 agent's latest set
  std::map<std::string, int> named_bridges_;  // network -> ifindex of the bridge our filter is on
  std::string named_error_;
  bool other_mode_cleaned_ = false;
  bool fast_path_cleared_ = false;  // OVERLAY_FAST_PATH off: a previous daemon's programs removed
  // Garbage collection totals since start.
  uint64_t gc_runs_ = 0;
  uint64_t gc_flows_expired_ = 0;
  uint64_t gc_orphans_removed_ = 0;
  int64_t gc_last_ms_ = 0;
  nlohmann::json gc_last_ = nullptr;
};

}  // namespace kohaku::runner
