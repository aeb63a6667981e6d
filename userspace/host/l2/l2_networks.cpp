#include "host/l2/l2_networks.h"

#include <algorithm>
#include <bit>
#include <charconv>

#include "common/json_parse.h"
#include "common/log.h"
#include "common/wire/limits.h"
#include "common/wire/names.h"

namespace kohaku {

using nlohmann::json;

namespace {

constexpr std::string_view kLog = "l2-networks";
constexpr size_t kMaxNameLength = 64;

std::string ip_string(uint32_t v) {
  return Ipv4Addr{v}.to_string();
}

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

uint32_t djb2(std::string_view bytes) {
  uint32_t h = 5381;
  for (unsigned char c : bytes) h = h * 33 + c;
  return h;
}

uint32_t default_l2_vni(std::string_view name) {
  return 10000 + djb2(name) % 6000;
}

void validate_l2_network_name(const std::string& name) {
  if (name.empty() || name.size() > kMaxNameLength)
    throw ApiError(400, "network name must be 1.." + std::to_string(kMaxNameLength) +
                            " characters, got '" + name + "'");
  for (unsigned char c : name)
    if (!std::isalnum(c) && c != '_' && c != '-')
      throw ApiError(400,
                     "network name may only hold letters, digits, '_' and '-', got '" + name + "'");
  if (name == "default")
    throw ApiError(400, "network name 'default' is reserved (the runner's own network)");
}

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

// ---- persistence ----

json L2NetworkRegistry::to_state(const L2Network& n) {
  json leases = json::array();
  for (const auto& [ip, l] : n.leases)
    leases.push_back({{"ip", ip_string(ip)},
                      {"container_id", l.container_id},
                      {"runner", l.runner},
                      {"allocated_ms", l.allocated_ms}});
  json quarantine = json::array();
  for (const auto& [ip, ms] : n.quarantine)
    quarantine.push_back({{"ip", ip_string(ip)}, {"released_ms", ms}});
  json blocks = json::array();
  for (const auto& [runner, b] : n.blocks)
    blocks.push_back(
        {{"runner", runner}, {"cidr", b.cidr.to_string()}, {"allocated_ms", b.allocated_ms}});
  return {{"name", n.name},
          {"subnet", n.spec.subnet.to_string()},
          {"gateway", n.spec.gateway.to_string()},
          {"vni", n.spec.vni},
          {"outbound_nat", n.spec.outbound_nat},
          {"members", n.members},
          {"created_ms", n.created_ms},
          {"revision", n.revision},
          {"cursor", n.cursor},
          {"leases", leases},
          {"quarantine", quarantine},
          {"blocks", blocks}};
}

L2Network L2NetworkRegistry::from_state(const json& j) {
  L2Network n;
  n.name = j.at("name").get<std::string>();
  n.spec.subnet = Ipv4Cidr::parse(j.at("subnet").get<std::string>());
  n.spec.gateway = Ipv4Addr::parse(j.at("gateway").get<std::string>());
  n.spec.vni = json_integer_at<uint32_t>(j, "vni");
  n.spec.outbound_nat = j.at("outbound_nat").get<bool>();
  n.members = j.at("members").get<std::set<std::string>>();
  n.created_ms = json_integer_or<int64_t>(j, "created_ms", 0);
  n.revision = json_integer_or<uint64_t>(j, "revision", 0);
  n.cursor = json_integer_or<uint32_t>(j, "cursor", 0);
  for (const auto& l : j.value("leases", json::array()))
    n.leases[Ipv4Addr::parse(l.at("ip").get<std::string>()).value] = {
        l.at("container_id").get<std::string>(), l.at("runner").get<std::string>(),
        json_integer_or<int64_t>(l, "allocated_ms", 0)};
  for (const auto& q : j.value("quarantine", json::array()))
    n.quarantine[Ipv4Addr::parse(q.at("ip").get<std::string>()).value] =
        json_integer_at<int64_t>(q, "released_ms");
  // State written before Docker blocks existed has none.
  for (const auto& b : j.value("blocks", json::array()))
    n.blocks[b.at("runner").get<std::string>()] = {Ipv4Cidr::parse(b.at("cidr").get<std::string>()),
                                                   json_integer_or<int64_t>(b, "allocated_ms", 0)};
  return n;
}

void L2NetworkRegistry::load() {
  try {
    json snap = store_->take_snapshot();
    if (snap.is_object()) {
      revision_ = json_integer_or<uint64_t>(snap, "revision", 0);
      for (const auto& j : snap.value("networks", json::array())) {
        auto n = from_state(j);
        networks_[n.name] = std::move(n);
      }
    }
    for (const auto& r : store_->take_records()) {
      const std::string op = r.at("op").get<std::string>();
      revision_ = std::max(revision_, json_integer_or<uint64_t>(r, "revision", 0));
      if (op == "network") {
        // Spec and members; the IPAM part stays as replayed so far.
        auto n = from_state(r.at("network"));
        auto it = networks_.find(n.name);
        if (it != networks_.end()) {
          n.leases = std::move(it->second.leases);
          n.quarantine = std::move(it->second.quarantine);
          n.cursor = it->second.cursor;
          n.blocks = std::move(it->second.blocks);
        }
        networks_[n.name] = std::move(n);
      } else if (op == "delete") {
        networks_.erase(r.at("name").get<std::string>());
      } else if (op == "lease") {
        auto& n = networks_.at(r.at("name").get<std::string>());
        uint32_t ip = Ipv4Addr::parse(r.at("ip").get<std::string>()).value;
        n.leases[ip] = {r.at("container_id").get<std::string>(), r.at("runner").get<std::string>(),
                        json_integer_at<int64_t>(r, "ms")};
        n.quarantine.erase(ip);
        n.cursor = json_integer_at<uint32_t>(r, "cursor");
      } else if (op == "release") {
        auto& n = networks_.at(r.at("name").get<std::string>());
        uint32_t ip = Ipv4Addr::parse(r.at("ip").get<std::string>()).value;
        n.leases.erase(ip);
        n.quarantine[ip] = json_integer_at<int64_t>(r, "ms");
      } else if (op == "block") {
        auto& n = networks_.at(r.at("name").get<std::string>());
        const Ipv4Cidr cidr = Ipv4Cidr::parse(r.at("cidr").get<std::string>());
        for (auto q = n.quarantine.lower_bound(cidr.first().value);
             q != n.quarantine.end() && q->first <= cidr.last().value;)
          q = n.quarantine.erase(q);
        n.blocks[r.at("runner").get<std::string>()] = {cidr, json_integer_at<int64_t>(r, "ms")};
      } else if (op == "block_release") {
        auto& n = networks_.at(r.at("name").get<std::string>());
        release_block_locked(n, r.at("runner").get<std::string>(),
                             json_integer_at<int64_t>(r, "ms"));
      } else {
        throw std::runtime_error("unknown record op '" + op + "'");
      }
    }
  } catch (const std::exception& e) {
    throw std::runtime_error("cannot load L2 networks from " + store_->dir().string() + ": " +
                             e.what());
  }
  std::lock_guard lock(mu_);
  commit_locked();
  store_->compact([this] {
    json nets = json::array();
    for (const auto& [_, n] : networks_) nets.push_back(to_state(n));
    return json{{"revision", revision_}, {"networks", nets}};
  }());
}

void L2NetworkRegistry::journal_network_locked(const L2Network& n) {
  json state = to_state(n);
  state.erase("leases");
  state.erase("quarantine");
  state.erase("blocks");
  store_->append({{"op", "network"}, {"network", state}, {"revision", revision_}});
}

void L2NetworkRegistry::commit_locked() {
  if (!store_->compaction_due()) return;
  json nets = json::array();
  for (const auto& [_, n] : networks_) nets.push_back(to_state(n));
  store_->compact({{"revision", revision_}, {"networks", nets}});
}

// ---- views ----

json L2NetworkRegistry::network_json(const L2Network& n, bool with_leases) const {
  const int64_t now = clock_();
  json members = json::array();
  for (const auto& m : n.members) {
    auto info = lookup_(m);
    members.push_back({{"runner", m},
                       {"physical_ip", info ? json(info->physical_ip.to_string()) : json(nullptr)},
                       {"registered", info.has_value()}});
  }
  size_t quarantined = 0;
  for (const auto& [ip, ms] : n.quarantine) quarantined += now - ms < options_.quarantine_ms;
  json blocks = json::array();
  for (const auto& [runner, b] : n.blocks)
    blocks.push_back({{"runner", runner}, {"cidr", b.cidr.to_string()}});
  json j = {{"name", n.name},
            {"subnet", n.spec.subnet.to_string()},
            {"gateway", n.spec.gateway.to_string()},
            {"vni", n.spec.vni},
            {"outbound_nat", n.spec.outbound_nat},
            {"mtu", options_.mtu},
            {"vxlan_device", "vxlan" + std::to_string(n.spec.vni)},
            {"members", members},
            {"allocated", n.leases.size()},
            {"quarantined", quarantined},
            {"blocks", blocks},
            {"revision", n.revision}};
  if (with_leases) {
    json leases = json::array();
    for (const auto& [ip, l] : n.leases)
      leases.push_back(
          {{"ip", ip_string(ip)}, {"container_id", l.container_id}, {"runner", l.runner}});
    j["leases"] = leases;
  }
  return j;
}

json L2NetworkRegistry::runner_view_locked(const L2Network& n, const std::string& runner) const {
  json peers = json::array();
  std::optional<L2RunnerInfo> self = lookup_(runner);
  for (const auto& m : n.members) {
    if (m == runner) continue;
    auto info = lookup_(m);
    // A member the host no longer knows (released) has no address to send to.
    if (!info) continue;
    // Two runners behind one address would make the device flood to itself.
    if (self && info->physical_ip == self->physical_ip) continue;
    peers.push_back(info->physical_ip.to_string());
  }
  return {{"name", n.name},
          {"vni", n.spec.vni},
          {"subnet", n.spec.subnet.to_string()},
          {"gateway", n.spec.gateway.to_string()},
          {"mtu", options_.mtu},
          {"port", options_.vxlan_port},
          {"peers", peers},
          {"outbound_nat", n.spec.outbound_nat},
          {"revision", revision_}};
}

std::optional<json> L2NetworkRegistry::runner_view(const std::string& network,
                                                   const std::string& runner) const {
  std::lock_guard lock(mu_);
  auto it = networks_.find(network);
  if (it == networks_.end() || !it->second.members.count(runner)) return std::nullopt;
  return runner_view_locked(it->second, runner);
}

L2Network& L2NetworkRegistry::find_locked(const std::string& name) {
  validate_l2_network_name(name);
  auto it = networks_.find(name);
  if (it == networks_.end()) throw ApiError(404, "network '" + name + "' does not exist");
  return it->second;
}

const L2Network& L2NetworkRegistry::find_locked(const std::string& name) const {
  return const_cast<L2NetworkRegistry*>(this)->find_locked(name);
}

L2RunnerInfo L2NetworkRegistry::require_member_candidate(const std::string& runner) const {
  auto info = lookup_(runner);
  if (!info) throw ApiError(404, "runner '" + runner + "' is not registered");
  if (info->vxlan_disabled)
    throw ApiError(412, "runner '" + runner +
                            "' has VXLAN disabled (OVERLAY_DISABLE_VXLAN = True in its "
                            "runner_config.py) and cannot be a member of an L2 network");
  return *info;
}

// ---- routes ----

json L2NetworkRegistry::create(const json& body) {
  if (!body.is_object()) throw ApiError(400, "body must be a JSON object");
  for (const auto& [key, _] : body.items())
    if (key != "name" && key != "subnet" && key != "gateway" && key != "vni" &&
        key != "outbound_nat" && key != "runners")
      throw ApiError(400, "unknown field '" + key +
                              "' (known: name, subnet, gateway, vni, outbound_nat, runners)");
  auto str = [&body](const char* key) -> std::optional<std::string> {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (!it->is_string()) throw ApiError(400, std::string("'") + key + "' must be a string");
    return it->get<std::string>();
  };
  auto name = str("name");
  if (!name) throw ApiError(400, "'name' is required");
  validate_l2_network_name(*name);

  L2NetworkSpec spec;
  auto subnet_text = str("subnet");
  if (!subnet_text) throw ApiError(400, "'subnet' is required (CIDR like 10.200.0.0/24)");
  auto subnet = Ipv4Cidr::try_parse(*subnet_text);
  if (!subnet)
    throw ApiError(400,
                   "'subnet' must be an IPv4 CIDR with zero host bits, got '" + *subnet_text + "'");
  if (subnet->prefix < 8 || subnet->prefix > 30)
    throw ApiError(400, "'subnet' prefix must be /8../30, got " + subnet->to_string());
  spec.subnet = *subnet;
  spec.gateway = Ipv4Addr{subnet->addr.value + 1};
  if (auto g = str("gateway")) {
    auto gw = Ipv4Addr::try_parse(*g);
    if (!gw) throw ApiError(400, "'gateway' is not an IPv4 address: '" + *g + "'");
    if (!subnet->contains(*gw) || *gw == subnet->first() || *gw == subnet->last())
      throw ApiError(400, "'gateway' " + *g + " is not a host address of " + subnet->to_string());
    spec.gateway = *gw;
  }
  spec.vni = default_l2_vni(*name);
  bool vni_given = false;
  if (auto it = body.find("vni"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > wire::kMaxVni)
      throw ApiError(400, "'vni' must be an integer 1.." + std::to_string(wire::kMaxVni));
    spec.vni = it->get<uint32_t>();
    vni_given = true;
  }
  if (auto it = body.find("outbound_nat"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) throw ApiError(400, "'outbound_nat' must be true or false");
    spec.outbound_nat = it->get<bool>();
  }
  std::optional<std::set<std::string>> runners;
  if (auto it = body.find("runners"); it != body.end() && !it->is_null()) {
    if (!it->is_array()) throw ApiError(400, "'runners' must be an array of runner names");
    runners.emplace();
    for (const auto& r : *it) {
      if (!r.is_string()) throw ApiError(400, "'runners' must hold runner hostnames (strings)");
      try {
        runners->insert(Hostname::parse(r.get<std::string>()).str());
      } catch (const InvalidName& e) {
        throw ApiError(400, std::string("'runners': ") + e.what());
      }
    }
  }

  std::vector<L2Change> changes;
  json answer;
  {
    std::lock_guard lock(mu_);
    if (auto it = networks_.find(*name); it != networks_.end()) {
      const L2Network& have = it->second;
      std::string diff = spec_difference(have.spec, spec);
      if (!diff.empty())
        throw ApiError(409, "network '" + *name + "' already exists with another spec (" + diff +
                                "); delete it first or use the same spec");
      if (runners && *runners != have.members)
        throw ApiError(409, "network '" + *name + "' already exists with members [" +
                                join_names(have.members) +
                                "]; use join/leave to change membership");
      answer = network_json(have, false);
      answer["created"] = false;
      return answer;
    }
    if (options_.hub_vni_first <= options_.hub_vni_last && spec.vni >= options_.hub_vni_first &&
        spec.vni <= options_.hub_vni_last)
      throw ApiError(409, "VNI " + std::to_string(spec.vni) +
                              (vni_given ? "" : " (from the name's hash)") +
                              " collides with the hub-and-spoke range " +
                              std::to_string(options_.hub_vni_first) + ".." +
                              std::to_string(options_.hub_vni_last) +
                              " (OVERLAY_VXLAN_ID+1 .. +max runner id); choose another --vni");
    for (const auto& [other_name, other] : networks_) {
      if (other.spec.vni == spec.vni)
        throw ApiError(409, "VNI " + std::to_string(spec.vni) + " of network '" + *name + "'" +
                                (vni_given ? "" : " (from the name's hash)") +
                                " is already used by network '" + other_name +
                                "'; choose another --vni");
      if (overlaps(other.spec.subnet, spec.subnet))
        throw ApiError(409, "subnet " + spec.subnet.to_string() + " overlaps network '" +
                                other_name + "' (" + other.spec.subnet.to_string() + ")");
    }
    if (options_.overlay_network && overlaps(*options_.overlay_network, spec.subnet))
      throw ApiError(409, "subnet " + spec.subnet.to_string() + " overlaps the overlay network " +
                              options_.overlay_network->to_string());
    if (runners)
      for (const auto& r : *runners) require_member_candidate(r);

    L2Network n;
    n.name = *name;
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
      out.push_back(runner_view_locked(n, *runner));
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
      throw ApiError(409, "network '" + name + "' still has " + std::to_string(n.leases.size()) +
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
      throw ApiError(409, "runner '" + runner + "' still holds " + std::to_string(held.size()) +
                              " address(es) on network '" + name +
                              "'; detach its workloads or leave with force");
    const int64_t now = clock_();
    for (uint32_t ip : held) {
      store_->append({{"op", "release"}, {"name", name}, {"ip", ip_string(ip)}, {"ms", now}});
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

json L2NetworkRegistry::allocate(const std::string& name, const std::string& runner,
                                 const std::string& container_id) {
  if (runner.empty()) throw ApiError(400, "missing query parameter 'runner'");
  if (container_id.empty()) throw ApiError(400, "missing query parameter 'container_id'");
  if (container_id.size() > 256)
    throw ApiError(400, "'container_id' is longer than 256 characters");
  for (unsigned char c : container_id)
    if (c <= ' ' || c >= 0x7f)
      throw ApiError(400, "'container_id' must be printable ASCII without spaces");
  std::lock_guard lock(mu_);
  L2Network& n = find_locked(name);
  if (!n.members.count(runner))
    throw ApiError(
        409, "runner '" + runner + "' is not a member of network '" + name + "'; join it first");
  auto answer = [&](uint32_t ip) {
    return json{{"ip", ip_string(ip)},
                {"prefix", n.spec.subnet.prefix},
                {"gateway", n.spec.gateway.to_string()},
                {"network", name},
                {"runner", runner},
                {"container_id", container_id}};
  };
  // Idempotent: a retried allocation gets the address it already holds.
  for (const auto& [ip, l] : n.leases) {
    if (l.container_id != container_id) continue;
    if (l.runner != runner)
      throw ApiError(409, "container '" + container_id + "' already holds " + ip_string(ip) +
                              " on runner '" + l.runner + "'");
    return answer(ip);
  }
  const int64_t now = clock_();
  const uint32_t first = n.spec.subnet.first().value + 1, last = n.spec.subnet.last().value - 1;
  const uint32_t count = last - first + 1;
  uint32_t start = n.cursor >= first && n.cursor <= last ? n.cursor : first;
  // Round robin from the cursor: freed addresses go to the back of the line, so an address is
  // reused as late as possible even after its quarantine.
  for (uint32_t i = 0; i < count; ++i) {
    uint32_t ip = first + (start - first + i) % count;
    if (ip == n.spec.gateway.value || n.leases.count(ip) || in_block_locked(n, ip)) continue;
    if (auto q = n.quarantine.find(ip); q != n.quarantine.end()) {
      if (now - q->second < options_.quarantine_ms) continue;
      n.quarantine.erase(q);
    }
    uint32_t next = ip == last ? first : ip + 1;
    store_->append({{"op", "lease"},
                    {"name", name},
                    {"ip", ip_string(ip)},
                    {"container_id", container_id},
                    {"runner", runner},
                    {"ms", now},
                    {"cursor", next}});
    n.leases[ip] = {container_id, runner, now};
    n.cursor = next;
    commit_locked();
    return answer(ip);
  }
  throw ApiError(409, "network '" + name + "' has no free address (" +
                          std::to_string(n.leases.size()) + " allocated, " +
                          std::to_string(n.blocks.size()) +
                          " Docker block(s), the rest quarantined)");
}

json L2NetworkRegistry::release(const std::string& name, const std::optional<std::string>& ip,
                                const std::optional<std::string>& container_id) {
  if (!ip && !container_id) throw ApiError(400, "give 'ip' or 'container_id'");
  std::lock_guard lock(mu_);
  L2Network& n = find_locked(name);
  std::optional<uint32_t> target;
  if (ip) {
    auto addr = Ipv4Addr::try_parse(*ip);
    if (!addr) throw ApiError(400, "'ip' is not an IPv4 address: '" + *ip + "'");
    if (n.leases.count(addr->value)) target = addr->value;
  } else {
    for (const auto& [a, l] : n.leases)
      if (l.container_id == *container_id) target = a;
  }
  if (!target)
    throw ApiError(404, "nothing allocated on network '" + name + "' for " +
                            (ip ? "ip " + *ip : "container '" + *container_id + "'"));
  const int64_t now = clock_();
  store_->append({{"op", "release"}, {"name", name}, {"ip", ip_string(*target)}, {"ms", now}});
  std::string holder = n.leases[*target].container_id;
  n.leases.erase(*target);
  n.quarantine[*target] = now;
  commit_locked();
  return {{"released", true},
          {"ip", ip_string(*target)},
          {"container_id", holder},
          {"quarantine_seconds", options_.quarantine_ms / 1000}};
}

// ---- Docker address blocks ----

bool L2NetworkRegistry::in_block_locked(const L2Network& n, uint32_t ip) const {
  for (const auto& [_, b] : n.blocks)
    if (b.cidr.contains(Ipv4Addr{ip})) return true;
  return false;
}

bool L2NetworkRegistry::block_free_locked(const L2Network& n, uint32_t base, uint32_t size,
                                          int64_t now) const {
  const Ipv4Cidr block{Ipv4Addr{base}, static_cast<uint8_t>(32 - std::countr_zero(size))};
  for (const auto& [_, b] : n.blocks)
    if (b.cidr.contains(block) || block.contains(b.cidr)) return false;
  for (uint32_t ip = base; ip - base < size; ++ip) {
    if (ip == n.spec.subnet.first().value || ip == n.spec.subnet.last().value ||
        ip == n.spec.gateway.value || n.leases.count(ip))
      return false;
    if (auto q = n.quarantine.find(ip);
        q != n.quarantine.end() && now - q->second < options_.quarantine_ms)
      return false;
  }
  return true;
}

void L2NetworkRegistry::release_block_locked(L2Network& n, const std::string& runner, int64_t now) {
  auto it = n.blocks.find(runner);
  if (it == n.blocks.end()) return;
  // Containers held these addresses: other members' ARP caches and conntrack forget them first.
  const Ipv4Cidr cidr = it->second.cidr;
  for (uint64_t i = 0; i < cidr.size(); ++i)
    n.quarantine[cidr.first().value + static_cast<uint32_t>(i)] = now;
  n.blocks.erase(it);
}

json L2NetworkRegistry::allocate_block(const std::string& name, const std::string& runner) {
  if (runner.empty()) throw ApiError(400, "missing query parameter 'runner'");
  std::lock_guard lock(mu_);
  L2Network& n = find_locked(name);
  require_member_candidate(runner);
  if (!n.members.count(runner))
    throw ApiError(
        409, "runner '" + runner + "' is not a member of network '" + name + "'; join it first");
  auto answer = [&](const L2Block& b, bool created) {
    return json{{"network", name},
                {"runner", runner},
                {"cidr", b.cidr.to_string()},
                {"first", b.cidr.first().to_string()},
                {"last", b.cidr.last().to_string()},
                {"size", b.cidr.size()},
                {"created", created}};
  };
  if (auto it = n.blocks.find(runner); it != n.blocks.end()) return answer(it->second, false);
  const int64_t now = clock_();
  const Ipv4Cidr& subnet = n.spec.subnet;
  for (uint32_t size = options_.docker_block_size; size >= 4; size /= 2) {
    if (size > subnet.size()) continue;
    // From the top of the subnet down: ordinary allocations start at the bottom, so the two
    // meet as late as possible.
    for (uint64_t k = subnet.size() / size; k-- > 0;) {
      const uint32_t base = subnet.first().value + static_cast<uint32_t>(k * size);
      if (!block_free_locked(n, base, size, now)) continue;
      L2Block b{Ipv4Cidr{Ipv4Addr{base}, static_cast<uint8_t>(32 - std::countr_zero(size))}, now};
      store_->append({{"op", "block"},
                      {"name", name},
                      {"runner", runner},
                      {"cidr", b.cidr.to_string()},
                      {"ms", now}});
      for (auto q = n.quarantine.lower_bound(b.cidr.first().value);
           q != n.quarantine.end() && q->first <= b.cidr.last().value;)
        q = n.quarantine.erase(q);
      n.blocks[runner] = b;
      commit_locked();
      log::info(kLog, "network '" + name + "': Docker address block " + b.cidr.to_string() +
                          " for runner '" + runner + "'");
      return answer(b, true);
    }
  }
  throw ApiError(409, "network '" + name + "' has no free address block of " +
                          std::to_string(options_.docker_block_size) + " down to 4 addresses (" +
                          std::to_string(n.leases.size()) + " allocated, " +
                          std::to_string(n.blocks.size()) + " block(s))");
}

}  // namespace kohaku
