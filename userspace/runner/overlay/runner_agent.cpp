#include "runner/overlay/runner_agent.h"

#include <algorithm>
#include <chrono>

#include "common/enum_names.h"
#include "common/log.h"
#include "common/wall_clock.h"
#include "runner/overlay/host_link.h"

namespace kohaku::runner {

using nlohmann::json;
using std::chrono::seconds;

namespace {

constexpr std::string_view kLog = "runner";
// A refused registration (VXLAN mismatch, bad request) needs an operator; retry slowly.
constexpr seconds kRefusedRetry{30};
// Re-register now and then even without a hint, so a host whose address changed without an
// outage we noticed is still followed.
constexpr int kReRegisterEvery = 60;
constexpr size_t kRecentRepairs = 20;

}  // namespace

std::string_view RunnerAgent::state_name(State s) {
  static constexpr EnumName<State> kNames[] = {
      {State::kDisabled, "disabled"},        {State::kRegistering, "registering"},
      {State::kRefused, "refused"},          {State::kActive, "active"},
      {State::kSetupFailed, "setup-failed"}, {State::kNoAllocation, "no-allocation"}};
  return enum_name(kNames, s);
}

RunnerAgent::RunnerAgent(RunnerConfig config)
    : config_(std::move(config)),
      hostname_(runner_hostname(config_)),
      host_(std::make_shared<HostApi>(config_.host_url(), config_.overlay_api_token)),
      credential_file_(std::filesystem::path(config_.state_dir) / "runner_credential"),
      docker_(config_.docker_socket,
              std::filesystem::path(config_.state_dir) / "docker-reported-ips.json"),
      workloads_(std::filesystem::path(config_.state_dir) / "workloads.json", hostname_,
                 config_.docker_network_name,
                 [this](const std::string& network) { return docker_.addresses_on(network); }),
      datapath_(config_),
      docker_finder_(config_.docker_socket),
      l2_docker_(config_, hostname_) {
  if (!config_.overlay_enabled) {
    state_ = State::kDisabled;
    reason_ = "OVERLAY_ENABLED is False";
  } else {
    reason_ = "not registered with the host yet";
  }
  workloads_.set_host(host_);
  std::string warning;
  if (auto credential = credential_file_.load(&warning)) host_->set_runner_credential(*credential);
  if (!warning.empty()) log::warn(kLog, "ignoring the stored runner credential: " + warning);
}

RunnerAgent::~RunnerAgent() {
  stop();
}

void RunnerAgent::start() {
  // Without an overlay, a previous run's masquerade (BPF filters and pins, or iptables rules)
  // has nothing left to do.
  if (!config_.overlay_enabled) datapath_.remove_all();
  loop_.start([this] { return pass(); });
  l2_docker_.start();
}

void RunnerAgent::stop() {
  loop_.stop();
  l2_docker_.stop();
}

std::chrono::milliseconds RunnerAgent::pass() {
  try {
    return step();
  } catch (const std::exception& e) {
    log::error(kLog, std::string("control loop: ") + e.what());
  }
  return seconds{config_.heartbeat_interval_seconds};
}

std::pair<RunnerAgent::State, std::string> RunnerAgent::current_state() const {
  std::lock_guard lock(mu_);
  return {state_, reason_};
}

void RunnerAgent::set_state(State state, const std::string& reason) {
  std::lock_guard lock(mu_);
  state_ = state;
  reason_ = reason;
}

std::chrono::seconds RunnerAgent::step() {
  const seconds interval{config_.heartbeat_interval_seconds};
  // First, so expired flows go even while the host cannot be reached.
  datapath_.collect_garbage();

  Ipv4Addr physical;
  try {
    physical = physical_ip(config_);
  } catch (const std::exception& e) {
    log::warn(kLog, e.what());
    if (config_.overlay_enabled && !assignment_) set_state(State::kRegistering, e.what());
    return std::min(interval, seconds(5));
  }
  if (physical_ && *physical_ != physical && registered_) {
    log::warn(kLog, "physical address changed from " + physical_->to_string() + " to " +
                        physical.to_string() + "; registering again");
    registered_ = false;
  }
  {
    std::lock_guard lock(mu_);
    physical_ = physical;
  }

  bool refused = false;
  if (registered_ && heartbeats_since_register_ < kReRegisterEvery) {
    try {
      json body = {{"hostname", hostname_},
                   {"workloads", workloads_.count()},
                   {"overlay_state", state_name(current_state().first)}};
      body.update(memory_metrics());  // KohakuRiver's fields, for the host's /api/nodes
      const json answer = host_->heartbeat(hostname_, body);
      ++heartbeats_since_register_;
      follow_heartbeat_answer(answer);
      {
        std::lock_guard lock(mu_);
        last_heartbeat_ms_ = unix_time_ms();
      }
      if (host_unreachable_) {
        // The host may have restarted with another address or lost state: ask again.
        log::info(kLog, "host answers again; registering again to pick up any change");
        host_unreachable_ = false;
        registered_ = false;
      }
    } catch (const HostApiError& e) {
      if (e.status() == 404) {
        log::warn(kLog,
                  std::string("the host does not know us (") + e.what() + "); registering again");
        registered_ = false;
      } else if (e.status() == 0) {
        if (!host_unreachable_) {
          log::warn(kLog, std::string("heartbeat failed, host unreachable: ") + e.what() +
                              " (overlay devices stay as they are)");
        }
        host_unreachable_ = true;
      } else {
        log::warn(kLog, std::string("heartbeat refused: ") + e.what());
      }
    }
  }
  if (!registered_ || heartbeats_since_register_ >= kReRegisterEvery) {
    if (!try_register()) refused = registration_refused_;
  } else if (config_.overlay_enabled && plan_) {
    apply_current_overlay(false);  // drift repair
  }

  if (!config_.overlay_enabled) {
    use_default_network("OVERLAY_ENABLED is False");
  } else if (!plan_ && (refused || current_state().first == State::kNoAllocation)) {
    use_default_network(current_state().second);
  }

  sync_docker();
  workloads_.repair();
  refresh_fast_path();

  if (refused) return kRefusedRetry;
  if (!registered_) return std::min(interval, seconds(2));
  return interval;
}

void RunnerAgent::follow_heartbeat_answer(const json& answer) {
  if (!config_.overlay_enabled || !answer.contains("overlay")) return;
  if (answer["overlay"].is_null()) {
    // Still without an allocation; the host answers 404 once it has one for us.
    if (assignment_) {
      log::warn(kLog, "the host reports no overlay allocation for us any more; registering again");
      registered_ = false;
    }
    return;
  }
  OverlayAssignment a;
  try {
    a = OverlayAssignment::from_json(answer["overlay"]);
  } catch (const std::invalid_argument& e) {
    log::warn(kLog, std::string("ignoring the heartbeat answer's overlay block: ") + e.what());
    return;
  }
  std::lock_guard lock(mu_);
  if (!assignment_ || *assignment_ == a) return;
  if (a.runner_id != assignment_->runner_id || a.subnet != assignment_->subnet ||
      !parameter_mismatch(a, config_).empty()) {
    // A new id or subnet is a new registration's business, with all its checks.
    log::warn(kLog, "the host reports another allocation than ours; registering again");
    registered_ = false;
    return;
  }
  log::warn(kLog, "the host's overlay parameters changed (host address " +
                      assignment_->host_physical_ip.to_string() + " -> " +
                      a.host_physical_ip.to_string() + "); following");
  assignment_ = a;
  plan_ = make_overlay_plan(a, *physical_, config_.overlay_vxlan_id, config_.overlay_vxlan_port,
                            config_.overlay_mtu, config_.overlay_bridge_name);
}

// The host issues a credential at the first registration (or when it has none for us); without
// it this hostname could not move to another address later. A failure to store it is logged,
// not fatal: the runner keeps working from here and the operator can release it at the host.
void RunnerAgent::keep_issued_credential(const json& answer) {
  auto it = answer.find("runner_credential");
  if (it == answer.end() || !it->is_string()) return;
  const std::string credential = it->get<std::string>();
  if (!RunnerCredentialFile::well_formed(credential)) {
    log::warn(kLog, "the host sent a malformed runner_credential; not stored");
    return;
  }
  host_->set_runner_credential(credential);
  try {
    credential_file_.save(credential);
    log::info(kLog, "stored the runner credential issued by the host in " +
                        credential_file_.path().string());
  } catch (const std::exception& e) {
    log::error(kLog, std::string("cannot store the runner credential: ") + e.what() +
                         "; moving this runner to another address will need a release at the "
                         "host");
  }
}

bool RunnerAgent::try_register() {
  json body = build_register_body(config_, hostname_, *physical_);
  if (!config_.overlay_enabled) {
    // Without an overlay our VXLAN settings mean nothing; do not let them be refused.
    body.erase("vxlan_id");
    body.erase("vxlan_port");
    body.erase("mtu");
  }
  json answer;
  try {
    answer = host_->register_runner(body);
  } catch (const HostApiError& e) {
    if (e.status() == 0 || e.status() >= 500) {
      if (!host_unreachable_) {
        log::warn(kLog,
                  std::string("cannot register with the host yet: ") + e.what() + " (retrying)");
      }
      host_unreachable_ = true;
      registration_refused_ = false;
      if (config_.overlay_enabled && !assignment_) {
        set_state(State::kRegistering, std::string("host unreachable: ") + e.what());
      }
      return false;
    }
    host_unreachable_ = false;
    registration_refused_ = true;
    const std::string why = std::string("the host refused registration: ") + e.what();
    log::error(kLog, why + "; retrying every " + std::to_string(kRefusedRetry.count()) + " s");
    if (config_.overlay_enabled) set_state(State::kRefused, why);
    return false;
  }
  host_unreachable_ = false;
  registration_refused_ = false;
  keep_issued_credential(answer);

  std::optional<std::string> without_overlay;
  if (config_.overlay_enabled) without_overlay = no_overlay_reason(answer);
  if (without_overlay) {
    // As KohakuRiver's runner does with `overlay: null`: carry on without the overlay, new
    // workloads on the default network (kohakuriver-net). Said once per reason.
    const std::string why = "registered without an overlay allocation: " + *without_overlay;
    if (current_state() != std::make_pair(State::kNoAllocation, why))
      log::warn(kLog,
                why + "; new workloads go to the default network " + config_.docker_network_name);
    set_state(State::kNoAllocation, why);
    std::lock_guard lock(mu_);
    assignment_.reset();
    plan_.reset();
  } else if (config_.overlay_enabled) {
    OverlayAssignment a;
    try {
      a = parse_register_answer(answer);
      if (auto mismatch = parameter_mismatch(a, config_); !mismatch.empty()) {
        throw std::invalid_argument("VXLAN settings differ: " + mismatch);
      }
    } catch (const std::invalid_argument& e) {
      const std::string why = std::string("unusable register answer: ") + e.what();
      log::error(kLog, why + "; retrying every " + std::to_string(kRefusedRetry.count()) + " s");
      set_state(State::kRefused, why);
      registration_refused_ = true;
      return false;
    }
    if (assignment_ && assignment_->subnet != a.subnet) {
      log::warn(kLog, "the host moved us from " + assignment_->subnet.to_string() + " to " +
                          a.subnet.to_string() + "; existing workloads keep their old addresses");
    }
    {
      std::lock_guard lock(mu_);
      assignment_ = a;
      plan_ = make_overlay_plan(a, *physical_, config_.overlay_vxlan_id, config_.overlay_vxlan_port,
                                config_.overlay_mtu, config_.overlay_bridge_name);
    }
  }
  registered_ = true;
  heartbeats_since_register_ = 0;
  {
    std::lock_guard lock(mu_);
    ++registrations_;
    last_register_ms_ = unix_time_ms();
    last_heartbeat_ms_ = last_register_ms_;
  }
  log::info(kLog, answer.value("message", std::string("registered")) + " at " + host_->base_url() +
                      " as " + runner_url(*physical_, config_.runner_port));
  if (config_.overlay_enabled && assignment_) {
    apply_current_overlay(true);
    workloads_.reassert_addresses(assignment_->subnet);
    docker_.reassert();
  }
  return true;
}

void RunnerAgent::apply_current_overlay(bool announce) {
  OverlayPlan plan;
  OverlayAssignment a;
  {
    std::lock_guard lock(mu_);
    plan = *plan_;
    a = *assignment_;
  }
  try {
    ApplyResult result = apply_overlay(plan, current_state().first != State::kSetupFailed);
    if (result.changed) {
      std::lock_guard lock(mu_);
      for (const auto& r : result.repairs) {
        if (!announce) log::warn("overlay", "repaired: " + r);
        recent_repairs_.push_back(json{{"at_ms", unix_time_ms()}, {"what", r}});
      }
      if (recent_repairs_.size() > kRecentRepairs) {
        recent_repairs_.erase(recent_repairs_.begin(),
                              recent_repairs_.end() - static_cast<long>(kRecentRepairs));
      }
    }
    bool was_active;
    {
      std::lock_guard lock(mu_);
      was_active = state_ == State::kActive;
    }
    set_state(State::kActive, "");
    // When firewalld runs: the bridge and vxlan0 in its trusted zone, VXLAN's port open (as
    // KohakuRiver's runner does; cached, so drift repair asks firewalld nothing new).
    firewall_.trust(plan.bridge);
    firewall_.trust(plan.vxlan.name);
    firewall_.open_udp_port(config_.overlay_vxlan_port);
    datapath_.apply(a.network, a.host_physical_ip, physical_);
    workloads_.set_network(AttachNetwork{.kind = "overlay",
                                         .bridge = plan.bridge,
                                         .subnet = a.subnet,
                                         .gateway = a.gateway,
                                         .mtu = plan.mtu,
                                         .host_managed = true});
    if (announce || !was_active) {
      log::info("overlay", "overlay active: runner id " + std::to_string(a.runner_id) +
                               ", subnet " + a.subnet.to_string() + ", gateway " +
                               a.gateway.to_string() + ", " + plan.vxlan.name + " VNI " +
                               std::to_string(plan.vxlan.vni) + " local " + physical_->to_string() +
                               " remote " + plan.vxlan.remote.to_string() + " port " +
                               std::to_string(plan.vxlan.port) + ", route " +
                               plan.route.dst.to_string() + " via " + a.host_on_subnet.to_string());
    }
  } catch (const std::exception& e) {
    const std::string why = std::string("overlay setup failed: ") + e.what();
    bool first;
    {
      std::lock_guard lock(mu_);
      first = state_ != State::kSetupFailed || reason_ != why;
    }
    if (first) log::error("overlay", why + "; new workloads go to the default network");
    set_state(State::kSetupFailed, why);
    use_default_network(why);
  }
}

void RunnerAgent::use_default_network(const std::string& why) {
  DefaultNetworkPlan plan = make_default_plan(
      config_.docker_network_name, config_.docker_network_subnet, config_.docker_network_gateway);
  try {
    ApplyResult result = apply_default_network(plan);
    for (const auto& r : result.repairs) log::info(kLog, "default network: " + r);
    {
      std::lock_guard lock(mu_);
      default_plan_ = plan;
    }
    workloads_.set_network(AttachNetwork{.kind = "default",
                                         .bridge = plan.bridge,
                                         .subnet = config_.docker_network_subnet,
                                         .gateway = config_.docker_network_gateway,
                                         .mtu = plan.mtu,
                                         .host_managed = false},
                           why);
  } catch (const std::exception& e) {
    log::error(kLog, std::string("default network setup failed: ") + e.what());
    workloads_.set_network(std::nullopt, why + "; default network setup failed too: " + e.what());
  }
}

json RunnerAgent::status() const {
  json out;
  std::optional<OverlayPlan> plan;
  {
    std::lock_guard lock(mu_);
    out["hostname"] = hostname_;
    out["host_url"] = host_->base_url();
    out["physical_ip"] = physical_ ? json(physical_->to_string()) : json(nullptr);
    out["url"] = physical_ ? json(runner_url(*physical_, config_.runner_port)) : json(nullptr);
    out["enabled"] = config_.overlay_enabled;
    out["state"] = state_name(state_);
    // What scripts wait for: registered, devices applied, workloads go to the overlay.
    out["overlay_ready"] = state_ == State::kActive;
    out["reason"] = reason_.empty() ? json(nullptr) : json(reason_);
    out["registered"] = registered_.load();
    out["registrations"] = registrations_;
    out["last_register_ms"] = last_register_ms_;
    out["last_heartbeat_ms"] = last_heartbeat_ms_;
    out["vxlan_id_base"] = config_.overlay_vxlan_id;
    out["vxlan_port"] = config_.overlay_vxlan_port;
    out["mtu"] = config_.overlay_mtu;
    if (assignment_) {
      out["runner_id"] = assignment_->runner_id;
      out["subnet"] = assignment_->subnet.to_string();
      out["gateway"] = assignment_->gateway.to_string();
      out["host_ip"] = assignment_->host_overlay_ip.to_string();
      out["host_physical_ip"] = assignment_->host_physical_ip.to_string();
      out["host_ip_on_runner_subnet"] = assignment_->host_on_subnet.to_string();
      out["overlay_network_cidr"] = assignment_->network.to_string();
      out["vni"] = config_.overlay_vxlan_id + assignment_->runner_id;
    } else {
      out["runner_id"] = nullptr;
      out["subnet"] = nullptr;
    }
    out["recent_repairs"] = recent_repairs_;
    plan = plan_;
    if (default_plan_) {
      out["default_network"] = {{"name", config_.docker_network_name},
                                {"bridge", default_plan_->bridge},
                                {"subnet", config_.docker_network_subnet.to_string()},
                                {"gateway", config_.docker_network_gateway.to_string()}};
    }
  }
  if (config_.overlay_enabled) {
    json devices = observe_overlay(plan, config_.overlay_bridge_name);
    for (auto& [key, value] : devices.items()) out[key] = value;
  }
  out["datapath"] = datapath_.status();
  out["workloads"] = workloads_.list();
  out["docker"] = docker_.status();
  out["docker"]["named_networks"] = l2_docker_.status();
  return out;
}

}  // namespace kohaku::runner
