#include "runner/workloads/workload_manager.h"

#include <sys/stat.h>

#include <chrono>

#include "common/api_error.h"
#include "common/domain_error.h"
#include "common/log.h"
#include "common/netlink/bridge_link.h"
#include "common/netlink/link.h"
#include "common/netlink/netns.h"
#include "common/rollback.h"
#include "common/wall_clock.h"
#include "runner/workloads/workload_device.h"

namespace kohaku::runner {

using nlohmann::json;
namespace nl = kohaku::netlink;

namespace {

constexpr std::string_view kLog = "workload";

// The namespace inode, to refuse attaching the same namespace's interface twice.
std::optional<unsigned long> netns_inode(const Workload& w) {
  struct stat st {};
  const std::string path = w.netns.empty() ? "/proc/" + std::to_string(w.pid) + "/ns/net" : w.netns;
  if (::stat(path.c_str(), &st) != 0) return std::nullopt;
  return st.st_ino;
}

}  // namespace

WorkloadManager::WorkloadManager(std::filesystem::path state_file, std::string runner_name,
                                 std::string default_docker_network,
                                 DockerAddresses docker_addresses)
    : store_(std::move(state_file)),
      runner_name_(std::move(runner_name)),
      default_docker_network_(std::move(default_docker_network)),
      docker_addresses_(std::move(docker_addresses)) {
  workloads_ = store_.load();
  publish_locked();
  if (!workloads_.empty()) {
    log::info(kLog, "loaded " + std::to_string(workloads_.size()) + " workload(s) from " +
                        store_.file().string());
  }
}

void WorkloadManager::set_host(std::shared_ptr<const HostApi> host) {
  std::lock_guard lock(mu_);
  host_ = std::move(host);
}

void WorkloadManager::set_network(std::optional<AttachNetwork> network, std::string why) {
  std::lock_guard lock(mu_);
  network_ = std::move(network);
  network_why_ = std::move(why);
}

void WorkloadManager::publish_locked() const {
  std::vector<wire::WorkloadReport> list;
  for (const auto& w : workloads_) {
    if (!w.release_pending) list.push_back(w.report());
  }
  std::lock_guard lock(snapshot_mu_);
  snapshot_ = wire::to_json(list);
}

void WorkloadManager::save_locked() const {
  publish_locked();
  store_.save(workloads_);
}

std::optional<Workload> WorkloadManager::find_locked(const std::string& id) const {
  for (const auto& w : workloads_) {
    if (w.id == id && !w.release_pending) return w;
  }
  return std::nullopt;
}

AttachNetwork WorkloadManager::network_for_locked(const AttachRequest& req) const {
  const bool named = !req.network.empty();
  if (named && !named_)
    throw DomainError(ErrorKind::kUnavailable,
                      "named L2 networks are not available on this runner");
  if (named && req.token)
    throw DomainError(ErrorKind::kInvalid, "'token' is for the overlay, not a named network");
  if (!named && !network_) {
    throw DomainError(ErrorKind::kUnavailable,
                      "no network to attach workloads to: " +
                          (network_why_.empty() ? std::string("not set up yet") : network_why_));
  }
  const AttachNetwork net = named ? named_->attach_network(req.network) : *network_;
  if (net.host_managed && !host_)
    throw DomainError(ErrorKind::kUnavailable, "not registered with the host yet");
  if (req.token && !net.host_managed) {
    throw DomainError(ErrorKind::kInvalid,
                      "'token' is an overlay reservation, but workloads go to the default "
                      "network (" +
                          network_why_ + ")");
  }
  return net;
}

bool WorkloadManager::check_namespace_locked(const nl::Netns& ns,
                                             const std::string& interface) const {
  const unsigned long inode = ns.inode();
  // A pid still in our namespace (e.g. a process not yet moved into its own) would get a veth
  // and a default route in the runner's namespace: never.
  if (inode == nl::Netns::current().inode()) {
    throw DomainError(ErrorKind::kInvalid,
                      "that is the runner's own network namespace; give the workload's");
  }
  for (const auto& other : workloads_) {
    if (other.release_pending || other.interface != interface) continue;
    if (netns_inode(other) == inode) {
      throw DomainError(ErrorKind::kConflict, "namespace already attached as workload " + other.id +
                                                  " (" + other.interface + ")");
    }
  }
  std::set<std::string> ours;
  for (const auto& other : workloads_)
    if (!other.release_pending && netns_inode(other) == inode) ours.insert(other.interface);
  return check_namespace_is_ours(ns, ours);
}

AddressSources WorkloadManager::address_sources_locked(const std::string& kind) const {
  return AddressSources{
      .named = named_, .host = host_.get(), .runner_name = runner_name_, .taken = [this, kind] {
        std::set<uint32_t> taken;
        for (const auto& other : workloads_) {
          if (other.network == kind) taken.insert(other.ip.value);
        }
        if (docker_addresses_) {
          for (uint32_t v : docker_addresses_(default_docker_network_)) taken.insert(v);
        }
        return taken;
      }};
}

json WorkloadManager::attach(const AttachRequest& req) {
  std::lock_guard lock(mu_);
  const AttachNetwork net = network_for_locked(req);
  std::optional<nl::Netns> ns;
  try {
    ns = req.netns.empty() ? nl::Netns::of_pid(req.pid) : nl::Netns::open(req.netns);
  } catch (const std::exception& e) {
    throw DomainError(ErrorKind::kInvalid, std::string("cannot open the namespace: ") + e.what());
  }
  Workload w;
  w.id = new_workload_id();
  w.name = req.name;
  w.netns = req.netns;
  w.pid = req.pid;
  w.interface = req.interface;
  w.host_veth = host_veth_name(w.id);
  w.prefix = net.subnet.prefix;
  w.gateway = net.gateway;
  w.mtu = net.mtu;
  w.network = net.kind;
  w.bridge = net.bridge;
  w.host_managed = net.host_managed;
  w.created_at_ms = unix_time_ms();
  const bool has_default = check_namespace_locked(*ns, w.interface);

  const AddressSources sources = address_sources_locked(net.kind);
  const ChosenAddress address = choose_address(sources, net, req.network, req.token, w.id);
  w.ip = address.ip;
  {
    // Until the host marks the address used, a failure returns it the way it came.
    Rollback undo(std::string{kLog});
    undo.add([&] { return_address(sources, req.network, w.id, address); });
    set_up_workload_device(*ns, w, net.bridge, has_default, undo);
    if (address.token) {
      try {
        host_->use_token(*address.token, w.id);
      } catch (const HostApiError& e) {
        // A 4xx here: the token went stale or another container took it since it was checked.
        throw DomainError(host_error_kind(e, ErrorKind::kConflict),
                          std::string("host refused to mark the address used: ") + e.what());
      }
    }
    undo.commit();
  }

  {
    // Unpersisted, a restart would forget the veth and leak the address: undo everything, now
    // as a workload the host knows by its id.
    Rollback undo(std::string{kLog});
    if (w.host_managed || !req.network.empty()) undo.add([&] { release_at_host(w); });
    undo.add([&] { nl::delete_link_if_exists(w.host_veth); });
    workloads_.push_back(w);
    undo.add([this] {
      workloads_.pop_back();
      publish_locked();
    });
    try {
      save_locked();
    } catch (const std::exception& e) {
      throw DomainError(ErrorKind::kInternal,
                        std::string("cannot persist the workload: ") + e.what());
    }
    undo.commit();
  }
  log::info(kLog, "attached " + w.id + (w.name.empty() ? "" : " (" + w.name + ")") + " " +
                      (w.netns.empty() ? "pid " + std::to_string(w.pid) : w.netns) + " as " +
                      w.ip.to_string() + "/" + std::to_string(w.prefix) + " on " + net.bridge +
                      " via " + w.host_veth);
  return w.report().to_json();
}

bool WorkloadManager::release_at_host(const Workload& w) {
  if (w.network.starts_with("l2:")) return !named_ || named_->release(w.network.substr(3), w.id);
  if (!w.host_managed) return true;
  if (!host_) return false;
  try {
    host_->release_container(w.id, runner_name_);
    return true;
  } catch (const HostApiError& e) {
    if (e.status() == 0 || e.status() >= 500) {
      log::warn(kLog, "host did not free " + w.ip.to_string() + " of " + w.id +
                          " yet: " + e.what() + " (will retry)");
      return false;
    }
    // 404 and the like: the host holds nothing for it any more.
    log::warn(kLog, "host release of " + w.id + ": " + e.what());
    return true;
  }
}

json WorkloadManager::detach(const std::string& id) {
  std::lock_guard lock(mu_);
  auto it = std::find_if(workloads_.begin(), workloads_.end(),
                         [&](const Workload& w) { return w.id == id && !w.release_pending; });
  if (it == workloads_.end()) throw DomainError(ErrorKind::kNotFound, "no workload " + id);
  try {
    // Deleting our end destroys the peer inside the namespace too.
    nl::delete_link_if_exists(it->host_veth);
  } catch (const std::exception& e) {
    throw DomainError(ErrorKind::kInternal,
                      std::string("cannot remove ") + it->host_veth + ": " + e.what());
  }
  const Workload w = *it;
  const bool released = release_at_host(w);
  if (released) {
    workloads_.erase(it);
  } else {
    it->release_pending = true;
  }
  save_locked();
  log::info(kLog, "detached " + w.id + ", " + w.ip.to_string() +
                      (released ? " freed" : " to be freed at the host"));
  return json{
      {"id", w.id}, {"ip", w.ip.to_string()}, {"detached", true}, {"address_released", released}};
}

json WorkloadManager::list() const {
  std::lock_guard lock(snapshot_mu_);
  return snapshot_;
}

json WorkloadManager::get(const std::string& id) const {
  std::lock_guard lock(mu_);
  auto w = find_locked(id);
  if (!w) throw DomainError(ErrorKind::kNotFound, "no workload " + id);
  json out = w->report().to_json();
  try {
    auto link = nl::find_link(w->host_veth);
    out["host_veth_present"] = link.has_value();
    if (link) out["host_veth_up"] = link->admin_up;
  } catch (const std::exception& e) {
    out["error"] = e.what();
  }
  return out;
}

void WorkloadManager::reassert_addresses(const Ipv4Cidr& subnet) {
  std::lock_guard lock(mu_);
  if (!host_) return;
  for (const auto& w : workloads_) {
    if (w.release_pending || !w.host_managed) continue;
    if (!subnet.contains(w.ip)) {
      log::warn(kLog, "workload " + w.id + " keeps " + w.ip.to_string() + ", outside our subnet " +
                          subnet.to_string() + " now; detach and attach it again");
      continue;
    }
    try {
      host_->use_ip(runner_name_, w.ip, w.id);
    } catch (const HostApiError& e) {
      log::error(kLog, "host does not accept " + w.ip.to_string() + " of workload " + w.id +
                           " as in use: " + e.what());
    }
  }
}

size_t WorkloadManager::count() const {
  std::lock_guard lock(snapshot_mu_);
  return snapshot_.size();
}

std::vector<Workload> WorkloadManager::current() const {
  std::lock_guard lock(mu_);
  std::vector<Workload> out;
  for (const Workload& w : workloads_)
    if (!w.release_pending) out.push_back(w);
  return out;
}

void WorkloadManager::repair() {
  std::lock_guard lock(mu_);
  bool dirty = false;
  for (auto it = workloads_.begin(); it != workloads_.end();) {
    if (it->release_pending) {
      if (release_at_host(*it)) {
        log::info(kLog, "host freed " + it->ip.to_string() + " of detached " + it->id);
        it = workloads_.erase(it);
        dirty = true;
      } else {
        ++it;
      }
      continue;
    }
    try {
      auto link = nl::find_link(it->host_veth);
      if (!link) {
        log::info(kLog, "workload " + it->id + " is gone (" + it->host_veth +
                            " vanished with its namespace); freeing " + it->ip.to_string());
        if (release_at_host(*it)) {
          it = workloads_.erase(it);
        } else {
          it->release_pending = true;
          ++it;
        }
        dirty = true;
        continue;
      }
      // The bridge may be gone while its network is down (e.g. overlay setup failed).
      if (nl::link_exists(it->bridge) &&
          nl::ensure_bridge_port(it->bridge, it->host_veth) != nl::EnsureAction::kKept) {
        log::warn(kLog, "re-attached " + it->host_veth + " of " + it->id + " to " + it->bridge);
      }
      if (!link->admin_up) {
        nl::set_link_up(it->host_veth);
        log::warn(kLog, "brought " + it->host_veth + " of " + it->id + " back up");
      }
    } catch (const std::exception& e) {
      log::warn(kLog, "repair of workload " + it->id + ": " + e.what());
    }
    ++it;
  }
  if (dirty) {
    try {
      save_locked();
    } catch (const std::exception& e) {
      log::error(kLog, std::string("cannot persist workloads: ") + e.what());
    }
  }
}

}  // namespace kohaku::runner
