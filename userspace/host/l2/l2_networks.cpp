#include "host/l2/l2_networks.h"

#include "common/log.h"

namespace kohaku {

using nlohmann::json;

namespace {

constexpr std::string_view kLog = "l2-networks";
std::string describe(const L2NetworkSpec& s) {
  return "subnet " + s.subnet.to_string() + ", gateway " + s.gateway.to_string() + ", VNI " +
         std::to_string(s.vni) + ", outbound NAT " + (s.outbound_nat ? "on" : "off");
}

std::string spec_difference(const L2NetworkSpec& have, const L2NetworkSpec& want) {
  std::string d;
  auto add = [&d](const std::string& s) { d += (d.empty() ? "" : ", ") + s; };
  if (have.subnet != want.subnet)
    add("subnet " + have.subnet.to_string() + " vs " + want.subnet.to_string());
  if (have.gateway != want.gateway)
    add("gateway " + have.gateway.to_string() + " vs " + want.gateway.to_string());
  if (have.vni != want.vni)
    add("VNI " + std::to_string(have.vni) + " vs " + std::to_string(want.vni));
  if (have.outbound_nat != want.outbound_nat)
    add(std::string("outbound_nat ") + (have.outbound_nat ? "true" : "false") + " vs " +
        (want.outbound_nat ? "true" : "false"));
  return d;
}

bool overlaps(const Ipv4Cidr& a, const Ipv4Cidr& b) {
  return a.contains(b) || b.contains(a);
}

std::string join_names(const std::set<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "" : ", ") + n;
  return s;
}

}  // namespace

L2NetworkRegistry::L2NetworkRegistry(Options options, L2RunnerLookup lookup, Clock clock)
    : options_(std::move(options)), lookup_(std::move(lookup)), clock_(std::move(clock)) {
  store_ = std::make_unique<StateStore>(options_.state_dir / "l2-networks");
  load();
}

void L2NetworkRegistry::set_listener(Listener listener) {
  std::lock_guard lock(listener_mu_);
  listener_ = std::move(listener);
}

void L2NetworkRegistry::notify(const std::vector<L2Change>& changes) {
  std::lock_guard lock(listener_mu_);
  if (!listener_) return;
  for (const auto& c : changes) listener_(c);
}

uint64_t L2NetworkRegistry::revision() const {
  std::lock_guard lock(mu_);
  return revision_;
}

L2Network& L2NetworkRegistry::find_locked(const std::string& name) {
  validate_l2_network_name(name);
  auto it = networks_.find(name);
  if (it == networks_.end())
    throw DomainError(ErrorKind::kNotFound, "network '" + name + "' does not exist");
  return it->second;
}

const L2Network& L2NetworkRegistry::find_locked(const std::string& name) const {
  return const_cast<L2NetworkRegistry*>(this)->find_locked(name);
}

L2RunnerInfo L2NetworkRegistry::require_member_candidate(const std::string& runner) const {
  auto info = lookup_(runner);
  if (!info) throw DomainError(ErrorKind::kNotFound, "runner '" + runner + "' is not registered");
  if (info->vxlan_disabled)
    throw DomainError(ErrorKind::kPreconditionFailed,
                      "runner '" + runner +
                          "' has VXLAN disabled (OVERLAY_DISABLE_VXLAN = True in its "
                          "runner_config.py) and cannot be a member of an L2 network");
  return *info;
}

// ---- routes ----

json L2NetworkRegistry::create(const L2NetworkCreate& request) {
  const std::string& name = request.name;
  validate_l2_network_name(name);  // parse_l2_network_create checked it; a typed caller may not
  // The defaults of an omitted field: the subnet's first host address as the gateway, the
  // VNI from the name's hash (kcore's rule), outbound NAT on.
  L2NetworkSpec spec;
  spec.subnet = request.subnet;
  spec.gateway = request.gateway.value_or(Ipv4Addr{request.subnet.addr.value + 1});
  spec.vni = request.vni.value_or(default_l2_vni(name));
  const bool vni_given = request.vni.has_value();
  spec.outbound_nat = request.outbound_nat.value_or(true);
  const std::optional<std::set<std::string>>& runners = request.runners;

  std::vector<L2Change> changes;
  json answer;
  {
    std::lock_guard lock(mu_);
    if (auto it = networks_.find(name); it != networks_.end()) {
      const L2Network& have = it->second;
      std::string diff = spec_difference(have.spec, spec);
      if (!diff.empty())
        throw DomainError(ErrorKind::kConflict, "network '" + name +
                                                    "' already exists with another spec (" + diff +
                                                    "); delete it first or use the same spec");
      if (runners && *runners != have.members)
        throw DomainError(ErrorKind::kConflict,
                          "network '" + name + "' already exists with members [" +
                              join_names(have.members) + "]; use join/leave to change membership");
      answer = network_json(have, false);
      answer["created"] = false;
      return answer;
    }
    if (options_.hub_vni_first <= options_.hub_vni_last && spec.vni >= options_.hub_vni_first &&
        spec.vni <= options_.hub_vni_last)
      throw DomainError(
          ErrorKind::kConflict,
          "VNI " + std::to_string(spec.vni) + (vni_given ? "" : " (from the name's hash)") +
              " collides with the hub-and-spoke range " + std::to_string(options_.hub_vni_first) +
              ".." + std::to_string(options_.hub_vni_last) +
              " (OVERLAY_VXLAN_ID+1 .. +max runner id); choose another --vni");
    for (const auto& [other_name, other] : networks_) {
      if (other.spec.vni == spec.vni)
        throw DomainError(ErrorKind::kConflict, "VNI " + std::to_string(spec.vni) +
                                                    " of network '" + name + "'" +
                                                    (vni_given ? "" : " (from the name's hash)") +
                                                    " is already used by network '" + other_name +
                                                    "'; choose another --vni");
      if (overlaps(other.spec.subnet, spec.subnet))
        throw DomainError(ErrorKind::kConflict, "subnet " + spec.subnet.to_string() +
                                                    " overlaps network '" + other_name + "' (" +
                                                    other.spec.subnet.to_string() + ")");
    }
    if (options_.overlay_network && overlaps(*options_.overlay_network, spec.subnet))
      throw DomainError(ErrorKind::kConflict, "subnet " + spec.subnet.to_string() +
                                                  " overlaps the overlay network " +
                                                  options_.overlay_network->to_string());
    if (runners)
      for (const auto& r : *runners) require_member_candidate(r);

    L2Network n;
    n.name = name;
    n.spec = spec;
    n.members = runners.value_or(std::set<std::string>{});
    n.created_ms = clock_();
    n.revision = ++revision_;
    journal_network_locked(n);
    commit_locked();
    log::info(kLog, "created network '" + n.name + "' (" + describe(spec) + ", members [" +
                        join_names(n.members) + "])");
    changes.push_back({n.name, n.members});
    answer = network_json(n, false);
    answer["created"] = true;
    networks_[n.name] = std::move(n);
  }
  notify(changes);
  return answer;
}

json L2NetworkRegistry::list(const std::optional<std::string>& runner) const {
  std::lock_guard lock(mu_);
  json out = json::array();
  for (const auto& [name, n] : networks_) {
    if (!runner) {
      out.push_back(network_json(n, false));
    } else if (n.members.count(*runner)) {
      out.push_back(runner_view_locked(n, *runner).to_json());
    }
  }
  return {{"networks", out}, {"revision", revision_}};
}

json L2NetworkRegistry::get(const std::string& name) const {
  std::lock_guard lock(mu_);
  return network_json(find_locked(name), true);
}

json L2NetworkRegistry::remove(const std::string& name, bool force) {
  L2Change change;
  {
    std::lock_guard lock(mu_);
    L2Network& n = find_locked(name);
    if (!n.leases.empty() && !force)
      throw DomainError(ErrorKind::kConflict,
                        "network '" + name + "' still has " + std::to_string(n.leases.size()) +
                            " allocated address(es); release them or delete with force");
    change = {name, n.members};
    ++revision_;
    store_->append({{"op", "delete"}, {"name", name}, {"revision", revision_}});
    networks_.erase(name);
    commit_locked();
    log::info(kLog, "deleted network '" + name + "'");
  }
  notify({change});
  return {{"deleted", true}, {"name", name}};
}

json L2NetworkRegistry::join(const std::string& name, const std::string& runner) {
  L2Change change;
  json answer;
  {
    std::lock_guard lock(mu_);
    L2Network& n = find_locked(name);
    require_member_candidate(runner);
    if (n.members.count(runner)) return {{"joined", false}, {"network", name}, {"runner", runner}};
    n.members.insert(runner);
    n.revision = ++revision_;
    journal_network_locked(n);
    commit_locked();
    log::info(kLog, "runner '" + runner + "' joined network '" + name + "'");
    change = {name, n.members};
    answer = {{"joined", true}, {"network", name}, {"runner", runner}};
  }
  notify({change});
  return answer;
}

json L2NetworkRegistry::leave(const std::string& name, const std::string& runner, bool force) {
  L2Change change;
  json answer;
  {
    std::lock_guard lock(mu_);
    L2Network& n = find_locked(name);
    if (!n.members.count(runner)) return {{"left", false}, {"network", name}, {"runner", runner}};
    std::vector<uint32_t> held;
    for (const auto& [ip, l] : n.leases)
      if (l.runner == runner) held.push_back(ip);
    if (!held.empty() && !force)
      throw DomainError(ErrorKind::kConflict, "runner '" + runner + "' still holds " +
                                                  std::to_string(held.size()) +
                                                  " address(es) on network '" + name +
                                                  "'; detach its workloads or leave with force");
    const int64_t now = clock_();
    for (uint32_t ip : held) {
      store_->append(
          {{"op", "release"}, {"name", name}, {"ip", Ipv4Addr{ip}.to_string()}, {"ms", now}});
      n.leases.erase(ip);
      n.quarantine[ip] = now;
    }
    // The runner disconnects its Docker containers when it leaves, so its block goes too: into
    // the quarantine, like any released address.
    if (n.blocks.count(runner)) {
      store_->append({{"op", "block_release"}, {"name", name}, {"runner", runner}, {"ms", now}});
      release_block_locked(n, runner, now);
    }
    change = {name, n.members};
    n.members.erase(runner);
    n.revision = ++revision_;
    journal_network_locked(n);
    commit_locked();
    log::info(kLog, "runner '" + runner + "' left network '" + name + "'");
    answer = {{"left", true}, {"network", name}, {"runner", runner}};
  }
  notify({change});
  return answer;
}

}  // namespace kohaku
