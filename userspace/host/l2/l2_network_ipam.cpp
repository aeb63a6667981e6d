#include "host/l2/l2_networks.h"

#include <bit>

#include "common/log.h"

// The registry's IPAM: single addresses for workloads (round robin with a quarantine) and the
// aligned blocks member runners hand to Docker.

namespace kohaku {

using nlohmann::json;

namespace {

constexpr std::string_view kLog = "l2-networks";

}  // namespace

json L2NetworkRegistry::allocate(const std::string& name, const std::string& runner,
                                 const std::string& container_id) {
  if (runner.empty()) throw DomainError(ErrorKind::kMalformed, "missing query parameter 'runner'");
  if (container_id.empty())
    throw DomainError(ErrorKind::kMalformed, "missing query parameter 'container_id'");
  if (container_id.size() > 256)
    throw DomainError(ErrorKind::kMalformed, "'container_id' is longer than 256 characters");
  for (unsigned char c : container_id)
    if (c <= ' ' || c >= 0x7f)
      throw DomainError(ErrorKind::kMalformed,
                        "'container_id' must be printable ASCII without spaces");
  std::lock_guard lock(mu_);
  L2Network& n = find_locked(name);
  if (!n.members.count(runner))
    throw DomainError(ErrorKind::kConflict, "runner '" + runner + "' is not a member of network '" +
                                                name + "'; join it first");
  auto answer = [&](uint32_t ip) {
    return json{{"ip", Ipv4Addr{ip}.to_string()},
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
      throw DomainError(ErrorKind::kConflict, "container '" + container_id + "' already holds " +
                                                  Ipv4Addr{ip}.to_string() + " on runner '" +
                                                  l.runner + "'");
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
                    {"ip", Ipv4Addr{ip}.to_string()},
                    {"container_id", container_id},
                    {"runner", runner},
                    {"ms", now},
                    {"cursor", next}});
    n.leases[ip] = {container_id, runner, now};
    n.cursor = next;
    commit_locked();
    return answer(ip);
  }
  throw DomainError(ErrorKind::kConflict, "network '" + name + "' has no free address (" +
                                              std::to_string(n.leases.size()) + " allocated, " +
                                              std::to_string(n.blocks.size()) +
                                              " Docker block(s), the rest quarantined)");
}

json L2NetworkRegistry::release(const std::string& name, const std::optional<std::string>& ip,
                                const std::optional<std::string>& container_id) {
  if (!ip && !container_id) throw DomainError(ErrorKind::kMalformed, "give 'ip' or 'container_id'");
  std::lock_guard lock(mu_);
  L2Network& n = find_locked(name);
  std::optional<uint32_t> target;
  if (ip) {
    auto addr = Ipv4Addr::try_parse(*ip);
    if (!addr)
      throw DomainError(ErrorKind::kMalformed, "'ip' is not an IPv4 address: '" + *ip + "'");
    if (n.leases.count(addr->value)) target = addr->value;
  } else {
    for (const auto& [a, l] : n.leases)
      if (l.container_id == *container_id) target = a;
  }
  if (!target)
    throw DomainError(ErrorKind::kNotFound,
                      "nothing allocated on network '" + name + "' for " +
                          (ip ? "ip " + *ip : "container '" + *container_id + "'"));
  const int64_t now = clock_();
  store_->append(
      {{"op", "release"}, {"name", name}, {"ip", Ipv4Addr{*target}.to_string()}, {"ms", now}});
  std::string holder = n.leases[*target].container_id;
  n.leases.erase(*target);
  n.quarantine[*target] = now;
  commit_locked();
  return {{"released", true},
          {"ip", Ipv4Addr{*target}.to_string()},
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
  if (runner.empty()) throw DomainError(ErrorKind::kMalformed, "missing query parameter 'runner'");
  std::lock_guard lock(mu_);
  L2Network& n = find_locked(name);
  require_member_candidate(runner);
  if (!n.members.count(runner))
    throw DomainError(ErrorKind::kConflict, "runner '" + runner + "' is not a member of network '" +
                                                name + "'; join it first");
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
  throw DomainError(ErrorKind::kConflict, "network '" + name + "' has no free address block of " +
                                              std::to_string(options_.docker_block_size) +
                                              " down to 4 addresses (" +
                                              std::to_string(n.leases.size()) + " allocated, " +
                                              std::to_string(n.blocks.size()) + " block(s))");
}

}  // namespace kohaku
