#include "runner/docker/docker_network_sync.h"

#include "common/crash_safe_file.h"
#include "common/json_parse.h"
#include "common/log.h"
#include "runner/docker/docker_network_reconcile.h"

namespace kohaku::runner {

using nlohmann::json;

namespace {

constexpr std::string_view kLog = "docker";

}  // namespace

ReportPlan plan_reports(const std::map<std::string, Ipv4Addr>& reported,
                        const std::map<std::string, Ipv4Addr>& current) {
  ReportPlan plan;
  for (const auto& [id, ip] : reported) {
    auto it = current.find(id);
    if (it == current.end() || it->second != ip) plan.release.insert(id);
  }
  for (const auto& [id, ip] : current) {
    auto it = reported.find(id);
    if (it == reported.end() || it->second != ip) plan.use[id] = ip;
  }
  return plan;
}

DockerNetworkSync::DockerNetworkSync(std::string docker_socket, std::filesystem::path reported_file)
    : docker_(std::move(docker_socket)), reported_file_(std::move(reported_file)) {
  std::error_code ec;
  if (!std::filesystem::exists(reported_file_, ec)) return;
  try {
    json doc = parse_json(read_whole_file(reported_file_), kFileJsonLimits);
    for (const auto& [id, ip] : doc.at("reported").items()) {
      reported_[id] = Ipv4Addr::parse(ip.get<std::string>());
    }
  } catch (const std::exception& e) {
    // Losing this list only means containers gone while we were down keep their address at the
    // host until released by hand; not a reason to refuse to start.
    log::warn(kLog, "ignoring unreadable " + reported_file_.string() + ": " + e.what());
  }
}

void DockerNetworkSync::save_reported() const {
  json list = json::object();
  for (const auto& [id, ip] : reported_) list[id] = ip.to_string();
  try {
    std::filesystem::create_directories(reported_file_.parent_path());
    write_file_atomically(reported_file_, json{{"reported", list}}.dump(2));
  } catch (const std::exception& e) {
    log::warn(kLog, "cannot save " + reported_file_.string() + ": " + e.what());
  }
}

bool DockerNetworkSync::ensure(const DockerNetworkSpec& spec, bool may_recreate) {
  const bool available = docker_.ping();
  {
    std::lock_guard lock(mu_);
    spec_ = spec;
    if (available != docker_available_) {
      log::info(kLog, available ? "Docker engine answers on " + docker_.socket_path()
                                : "no Docker engine on " + docker_.socket_path() +
                                      "; Docker network not managed");
    }
    docker_available_ = available;
    if (!available) {
      state_ = "no-docker";
      error_.clear();
      containers_.clear();
      container_names_.clear();
      return false;
    }
  }

  std::string state = "ok";
  std::string error;
  std::string network_id;
  std::map<std::string, Ipv4Addr> containers;
  std::map<std::string, std::string> names;
  bool created = false;
  try {
    auto inspected = docker_.inspect_network(spec.name);
    if (inspected)
      state = reconcile_existing_network(docker_, spec, inspected, may_recreate,
                                         [this](const std::string& message) {
                                           std::lock_guard lock(mu_);
                                           if (pending_soft_diff_ != message)
                                             log::warn(kLog, message);
                                           pending_soft_diff_ = message;
                                         });
    if (!inspected) {
      // Another network holding our bridge name would make Docker refuse the create.
      for (const auto& other : docker_.list_networks()) {
        if (docker_network_bridge(other) == spec.bridge &&
            docker_string_at(other, "Name") != spec.name) {
          log::warn(kLog, "removing Docker network " + docker_string_at(other, "Name") +
                              " which also claims bridge " + spec.bridge);
          docker_.remove_network(docker_string_at(other, "Id"));
        }
      }
      docker_.create_network(build_create_request(spec));
      if (state != "recreated") state = "created";
      log::info(kLog, "Docker network " + spec.name + " " + state + " on bridge " + spec.bridge +
                          " (" + spec.subnet.to_string() + ", gateway " + spec.gateway.to_string() +
                          ", mtu " + std::to_string(spec.mtu) + ")");
      created = true;
      inspected = docker_.inspect_network(spec.name);
      if (!inspected) throw DockerError(404, "network " + spec.name + " vanished after create");
    }
    network_id = docker_string_at(*inspected, "Id");
    containers = container_addresses(*inspected);
    if (inspected->contains("Containers") && (*inspected)["Containers"].is_object()) {
      for (const auto& [cid, endpoint] : (*inspected)["Containers"].items()) {
        names[cid] = docker_string_at(endpoint, "Name");
      }
    }
  } catch (const DockerError& e) {
    state = "error";
    error = e.what();
  }

  std::lock_guard lock(mu_);
  if (state == "error" && error != error_) log::error(kLog, error);
  if (state == "ok" || state == "created" || state == "recreated") pending_soft_diff_.clear();
  state_ = state;
  error_ = error;
  network_id_ = network_id;
  containers_ = std::move(containers);
  container_names_ = std::move(names);
  return created;
}

void DockerNetworkSync::report(const HostApi& host, const std::string& runner) {
  std::map<std::string, Ipv4Addr> current;
  std::map<std::string, Ipv4Addr> reported;
  {
    std::lock_guard lock(mu_);
    // Without an answer from Docker we cannot tell a gone container from a silent engine.
    if (!docker_available_ || state_ == "error") return;
    current = containers_;
    reported = reported_;
  }
  ReportPlan plan = plan_reports(reported, current);
  bool reasserting;
  {
    std::lock_guard lock(mu_);
    reasserting = reassert_;
    reassert_ = false;
  }
  if (reasserting) plan.use = current;
  if (plan.use.empty() && plan.release.empty()) return;

  std::map<std::string, std::string> conflicts;
  for (const auto& id : plan.release) {
    try {
      host.release_container(id, runner);
      log::info(kLog, "released " + reported[id].to_string() + " of container " +
                          docker_short_id(id) + " at the host");
      reported.erase(id);
    } catch (const HostApiError& e) {
      if (e.status() == 0) continue;  // host unreachable: retry next pass
      // Anything else (e.g. 404: the host no longer has it) leaves nothing to release.
      log::warn(kLog, "release of container " + docker_short_id(id) + ": " + e.what());
      reported.erase(id);
    }
  }
  for (const auto& [id, ip] : plan.use) {
    try {
      host.use_ip(runner, ip, id);
      if (!reported.count(id) || reported[id] != ip) {
        log::info(kLog, "reported " + ip.to_string() + " of container " + docker_short_id(id) +
                            " to the host as used");
      }
      reported[id] = ip;
    } catch (const HostApiError& e) {
      if (e.status() == 0) continue;
      conflicts[id] = e.what();
    }
  }

  std::lock_guard lock(mu_);
  for (const auto& [id, why] : conflicts) {
    if (conflicts_[id] != why) {
      log::error(kLog, "host refused address " + current[id].to_string() + " of container " +
                           docker_short_id(id) + ": " + why);
    }
  }
  for (auto it = conflicts_.begin(); it != conflicts_.end();) {
    it = conflicts.count(it->first) ? std::next(it) : conflicts_.erase(it);
  }
  for (auto& [id, why] : conflicts) conflicts_[id] = why;
  if (reported != reported_) {
    reported_ = std::move(reported);
    save_reported();
  }
}

std::set<uint32_t> DockerNetworkSync::addresses_on(const std::string& network) const {
  std::set<uint32_t> out;
  try {
    if (auto inspected = docker_.inspect_network(network)) {
      for (const auto& [id, ip] : container_addresses(*inspected)) out.insert(ip.value);
    }
  } catch (const DockerError&) {
    // No engine: nothing of Docker's to avoid.
  }
  return out;
}

json DockerNetworkSync::status() const {
  std::lock_guard lock(mu_);
  json containers = json::array();
  for (const auto& [id, ip] : containers_) {
    json c = {{"id", docker_short_id(id)},
              {"name", container_names_.count(id) ? container_names_.at(id) : ""},
              {"ip", ip.to_string()},
              {"reported_to_host", reported_.count(id) && reported_.at(id) == ip}};
    if (conflicts_.count(id)) c["host_error"] = conflicts_.at(id);
    containers.push_back(c);
  }
  json out = {{"socket", docker_.socket_path()},
              {"available", docker_available_},
              {"state", state_},
              {"containers", containers}};
  if (spec_) {
    out["network"] = spec_->name;
    out["bridge"] = spec_->bridge;
    out["subnet"] = spec_->subnet.to_string();
    if (spec_->ip_range.prefix) out["ip_range"] = spec_->ip_range.to_string();
  }
  if (!network_id_.empty()) out["network_id"] = docker_short_id(network_id_);
  if (!error_.empty()) out["error"] = error_;
  return out;
}

}  // namespace kohaku::runner
