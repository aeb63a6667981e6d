#include "runner/l2/l2_docker_networks.h"

#include "common/log.h"
#include "common/netlink/link.h"
#include "runner/docker/docker_network_reconcile.h"
#include "runner/overlay/host_api.h"

namespace kohaku::runner {

using nlohmann::json;
namespace nl = kohaku::netlink;

namespace {

constexpr std::string_view kLog = "docker-l2";
// The block is asked for again now and then even when cached: a host that lost its state, or
// gave the block away while we were unreachable, is noticed (the network is then fixed once no
// container uses the old range).
constexpr std::chrono::seconds kBlockRefresh{60};

}  // namespace

std::string l2_docker_network_name(const std::string& network) {
  return "kohaku-" + network;
}

DockerNetworkSpec l2_docker_network_spec(const L2NetworkView& view, const Ipv4Cidr& block) {
  DockerNetworkSpec spec;
  spec.name = l2_docker_network_name(view.name);
  spec.bridge = l2_bridge_name(view.name);
  spec.subnet = view.subnet;
  spec.gateway = view.gateway;
  spec.mtu = view.mtu;
  spec.ip_range = block;
  // Outbound NAT of a named network is the runner's datapath (per network, outbound_nat);
  // Docker's MASQUERADE rule would NAT traffic the datapath must see untranslated.
  spec.masquerade = false;
  spec.labels[kL2NetworkLabel] = view.name;
  return spec;
}

Ipv4Cidr parse_block_answer(const json& answer, const Ipv4Cidr& subnet) {
  const std::string text = docker_string_at(answer, "cidr");
  if (text.empty()) throw std::invalid_argument("the host's block answer has no 'cidr'");
  auto block = Ipv4Cidr::try_parse(text);
  if (!block)
    throw std::invalid_argument("the host's block '" + text +
                                "' is not a CIDR with zero host bits");
  if (block->prefix > 30)
    throw std::invalid_argument("the host's block " + text + " is smaller than 4 addresses");
  if (!subnet.contains(*block) || *block == subnet)
    throw std::invalid_argument("the host's block " + text + " is not a part of the subnet " +
                                subnet.to_string());
  return *block;
}

bool docker_network_is_ours(const json& network) {
  return docker_string_at(network.value("Labels", json::object()), kManagedByLabel) ==
         kManagedByValue;
}

std::optional<std::string> docker_network_l2_label(const json& network) {
  if (!docker_network_is_ours(network)) return std::nullopt;
  std::string label = docker_string_at(network.value("Labels", json::object()), kL2NetworkLabel);
  if (label.empty()) return std::nullopt;
  return label;
}

L2DockerNetworks::L2DockerNetworks(const RunnerConfig& config, std::string hostname)
    : config_(config), hostname_(std::move(hostname)), docker_(config.docker_socket) {}

L2DockerNetworks::~L2DockerNetworks() {
  stop();
}

void L2DockerNetworks::start() {
  thread_ = std::thread([this] { run(); });
}

void L2DockerNetworks::stop() {
  {
    std::lock_guard lock(wake_mu_);
    stopping_ = true;
  }
  wake_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void L2DockerNetworks::update(std::vector<L2NetworkView> applied) {
  {
    std::lock_guard lock(wake_mu_);
    pending_ = std::move(applied);
  }
  wake_cv_.notify_one();
}

void L2DockerNetworks::run() {
  std::unique_lock lock(wake_mu_);
  for (;;) {
    wake_cv_.wait(lock, [this] { return stopping_ || pending_.has_value(); });
    if (stopping_) return;
    std::vector<L2NetworkView> applied = std::move(*pending_);
    pending_.reset();
    lock.unlock();
    sync_once(applied);
    lock.lock();
  }
}

void L2DockerNetworks::note(const std::string& key, const std::string& message, bool error) {
  auto& last = logged_[key];
  if (last == message) return;
  last = message;
  if (message.empty()) return;
  if (error)
    log::error(kLog, message);
  else
    log::warn(kLog, message);
}

Ipv4Cidr L2DockerNetworks::block_for(const L2NetworkView& view) {
  const auto now = std::chrono::steady_clock::now();
  auto cached = blocks_.find(view.name);
  if (cached != blocks_.end() && cached->second.subnet == view.subnet &&
      now - cached->second.fetched < kBlockRefresh)
    return cached->second.block;
  json answer;
  try {
    answer = HostApi(config_.host_url(), config_.overlay_api_token, std::chrono::seconds(5))
                 .l2_block(view.name, hostname_);
  } catch (const std::exception& e) {
    // A block we already have stays valid while the host cannot be asked.
    if (cached != blocks_.end() && cached->second.subnet == view.subnet)
      return cached->second.block;
    throw std::runtime_error(std::string("no address block for this runner: ") + e.what());
  }
  const Ipv4Cidr block = parse_block_answer(answer, view.subnet);
  if (cached != blocks_.end() && cached->second.block != block)
    log::warn(kLog, "network '" + view.name + "': the host now gives us block " +
                        block.to_string() + " instead of " + cached->second.block.to_string());
  blocks_[view.name] = {view.subnet, block, now};
  return block;
}

void L2DockerNetworks::remove_docker_network(const json& network, const std::string& why) {
  const std::string id = docker_string_at(network, "Id"), name = docker_string_at(network, "Name");
  // The listing may not carry the endpoints: inspect for them.
  auto inspected = docker_.inspect_network(id);
  if (!inspected) return;
  const auto attached = container_addresses(*inspected);
  for (const auto& [cid, ip] : attached) docker_.disconnect_container(id, cid);
  docker_.remove_network(id);
  log::info(kLog, "removed Docker network " + name + " (" + why + "), disconnected " +
                      std::to_string(attached.size()) + " container(s)");
}

L2DockerNetworks::Entry L2DockerNetworks::ensure(const L2NetworkView& view, const json& listed) {
  Entry e;
  e.network = view.name;
  e.docker_network = l2_docker_network_name(view.name);
  e.bridge = l2_bridge_name(view.name);
  try {
    // Docker would create a bare bridge of its own under that name; the L2 agent builds ours
    // (gateway, MAC, vxlan port) before it tells us about the network.
    if (!nl::link_exists(e.bridge)) {
      e.state = "waiting-for-bridge";
      e.error = "bridge " + e.bridge + " does not exist yet";
      return e;
    }
    e.block = block_for(view);
    const DockerNetworkSpec spec = l2_docker_network_spec(view, *e.block);
    auto inspected = docker_.inspect_network(spec.name);
    if (inspected && !docker_network_is_ours(*inspected))
      throw std::runtime_error("a Docker network named " + spec.name +
                               " exists that kohaku-runnerd did not create; left alone "
                               "(remove or rename it to let the runner create its own)");
    std::string state = "ok";
    if (inspected)
      state = reconcile_existing_network(
          docker_, spec, inspected, true,
          [&](const std::string& message) { note("differs:" + spec.name, message, false); });
    if (!inspected) {
      // Docker refuses a second network on one bridge. A leftover of ours goes; someone
      // else's is left alone and reported.
      for (const auto& other : listed) {
        if (docker_network_bridge(other) != spec.bridge ||
            docker_string_at(other, "Name") == spec.name)
          continue;
        if (!docker_network_is_ours(other))
          throw std::runtime_error("Docker network " + docker_string_at(other, "Name") +
                                   " (not created by kohaku-runnerd) already uses bridge " +
                                   spec.bridge + "; left alone");
        remove_docker_network(other, "it also claimed bridge " + spec.bridge);
      }
      docker_.create_network(build_create_request(spec));
      if (state != "recreated") state = "created";
      log::info(kLog, "Docker network " + spec.name + " " + state + " on bridge " + spec.bridge +
                          " (" + spec.subnet.to_string() + ", gateway " + spec.gateway.to_string() +
                          ", addresses from block " + spec.ip_range.to_string() + ", mtu " +
                          std::to_string(spec.mtu) + ")");
      inspected = docker_.inspect_network(spec.name);
      if (!inspected) throw DockerError(404, "network " + spec.name + " vanished after create");
    }
    if (state == "ok") logged_.erase("differs:" + spec.name);
    e.state = state;
    e.network_id = docker_short_id(docker_string_at(*inspected, "Id"));
    const json endpoints = inspected->value("Containers", json::object());
    for (const auto& [cid, ip] : container_addresses(*inspected)) {
      const json endpoint = endpoints.is_object() ? endpoints.value(cid, json::object()) : json{};
      e.containers.push_back({{"id", docker_short_id(cid)},
                              {"name", docker_string_at(endpoint, "Name")},
                              {"ip", ip.to_string()}});
    }
  } catch (const std::exception& ex) {
    e.state = "error";
    e.error = ex.what();
  }
  note("error:" + view.name,
       e.state == "error" ? "network '" + view.name + "': " + e.error : std::string(), true);
  return e;
}

void L2DockerNetworks::sync_once(const std::vector<L2NetworkView>& applied) {
  std::lock_guard pass(pass_mu_);
  const bool available = docker_.ping();
  std::map<std::string, Entry> entries;
  if (!available) {
    for (const auto& v : applied) {
      Entry e;
      e.network = v.name;
      e.docker_network = l2_docker_network_name(v.name);
      e.bridge = l2_bridge_name(v.name);
      e.state = "no-docker";
      entries[v.name] = std::move(e);
    }
  } else {
    json listed = json::array();
    try {
      listed = docker_.list_networks();
    } catch (const std::exception& e) {
      note("list", std::string("cannot list Docker networks: ") + e.what(), true);
    }
    std::set<std::string> wanted;
    for (const auto& v : applied) {
      wanted.insert(v.name);
      seen_.insert(v.name);
      entries[v.name] = ensure(v, listed);
    }
    // Ours for a network we are no longer a member of. Removed when the network left the
    // applied set in this process's lifetime, or when its bridge is gone (the L2 agent removes
    // stale bridges only after a successful poll of the host): an empty set before the first
    // poll (host down at start) must not disconnect anybody's containers.
    for (const auto& net : listed) {
      auto label = docker_network_l2_label(net);
      if (!label || wanted.count(*label)) continue;
      const std::string bridge = docker_network_bridge(net);
      try {
        if (!seen_.count(*label) && !bridge.empty() && nl::link_exists(bridge)) continue;
        remove_docker_network(net, "this runner is no longer a member of '" + *label + "'");
        blocks_.erase(*label);
        logged_.erase("error:" + *label);
      } catch (const std::exception& e) {
        note("remove:" + *label,
             "cannot remove Docker network " + docker_string_at(net, "Name") + ": " + e.what(),
             true);
      }
    }
    for (auto it = seen_.begin(); it != seen_.end();)
      it = wanted.count(*it) ? std::next(it) : seen_.erase(it);
    for (auto it = blocks_.begin(); it != blocks_.end();)
      it = wanted.count(it->first) ? std::next(it) : blocks_.erase(it);
  }
  if (available != available_)
    log::info(kLog, available ? "Docker engine answers on " + docker_.socket_path() +
                                    "; managing a Docker network per named network"
                              : "no Docker engine on " + docker_.socket_path() +
                                    "; no Docker networks for named networks");
  std::lock_guard lock(mu_);
  available_ = available;
  entries_ = std::move(entries);
}

json L2DockerNetworks::status() const {
  std::lock_guard lock(mu_);
  json out = json::array();
  for (const auto& [name, e] : entries_) {
    json j = {{"network", e.network},
              {"docker_network", e.docker_network},
              {"bridge", e.bridge},
              {"block", e.block ? json(e.block->to_string()) : json(nullptr)},
              {"state", e.state},
              {"error", e.error.empty() ? json(nullptr) : json(e.error)},
              {"containers", e.containers}};
    if (!e.network_id.empty()) j["network_id"] = e.network_id;
    out.push_back(std::move(j));
  }
  return out;
}

}  // namespace kohaku::runner
