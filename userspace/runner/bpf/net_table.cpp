#include "runner/bpf/net_table.h"

#include "common/bpf/map_io.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <set>
#include <stdexcept>

#include "lib/runner_types.h"

namespace kohaku::runner {
namespace {

runner_net_key encode_key(const Ipv4Cidr& subnet) {
  runner_net_key k{};
  k.prefixlen = subnet.prefix;
  uint32_t be = htonl(subnet.addr.value);
  std::memcpy(k.addr, &be, 4);
  return k;
}

runner_net_value encode_value(const NetEntry& e) {
  runner_net_value v{};
  v.id = e.id;
  v.flags = e.outbound_nat ? RUNNER_NET_OUTBOUND_NAT : 0;
  return v;
}

NetEntry decode(const runner_net_key& k, const runner_net_value& v) {
  uint32_t be;
  std::memcpy(&be, k.addr, 4);
  NetEntry e;
  e.subnet = Ipv4Cidr{Ipv4Addr{ntohl(be)}, static_cast<uint8_t>(k.prefixlen)};
  e.id = v.id;
  e.outbound_nat = (v.flags & RUNNER_NET_OUTBOUND_NAT) != 0;
  return e;
}

}  // namespace

std::string NetEntry::to_string() const {
  return subnet.to_string() + " id " + std::to_string(id) + " nat " + (outbound_nat ? "on" : "off");
}

void validate_net_entries(const std::vector<NetEntry>& entries) {
  if (entries.size() > RUNNER_NETS_MAX)
    throw std::invalid_argument("named networks: " + std::to_string(entries.size()) +
                                " subnets, at most " + std::to_string(RUNNER_NETS_MAX));
  std::set<Ipv4Cidr> seen;
  for (const auto& e : entries) {
    if (e.id == 0)
      throw std::invalid_argument("named network " + e.to_string() + ": id 0 is the overlay's");
    if (e.subnet.prefix == 0 || e.subnet.prefix > 32 ||
        (e.subnet.addr.value & ~e.subnet.mask()) != 0)
      throw std::invalid_argument("named network " + e.to_string() +
                                  ": subnet needs a prefix /1../32 and zero host bits");
    if (!seen.insert(e.subnet).second)
      throw std::invalid_argument("named network " + e.to_string() + ": subnet " +
                                  e.subnet.to_string() + " is listed twice");
  }
}

std::vector<NetEntry> read_net_table(int fd) {
  std::vector<NetEntry> out;
  for (const auto& [k, v] :
       bpf::map_entries<runner_net_key, runner_net_value>(fd, RUNNER_NETS_MAX + 1))
    out.push_back(decode(k, v));
  std::sort(out.begin(), out.end());
  return out;
}

size_t sync_net_table(int fd, const std::vector<NetEntry>& wanted) {
  validate_net_entries(wanted);
  const auto have = read_net_table(fd);
  std::vector<NetEntry> writes, stale;
  size_t new_keys = 0;
  for (const auto& e : wanted) {
    if (std::find(have.begin(), have.end(), e) != have.end()) continue;
    writes.push_back(e);
    if (std::none_of(have.begin(), have.end(),
                     [&](const NetEntry& h) { return h.subnet == e.subnet; }))
      ++new_keys;
  }
  for (const auto& e : have)
    if (std::none_of(wanted.begin(), wanted.end(),
                     [&](const NetEntry& w) { return w.subnet == e.subnet; }))
      stale.push_back(e);

  auto write = [&] {
    for (const auto& e : writes) {
      runner_net_key k = encode_key(e.subnet);
      runner_net_value v = encode_value(e);
      if (bpf_map_update_elem(fd, &k, &v, BPF_ANY) != 0)
        bpf::fail(errno, "write into runner_nets the named network", e.to_string());
    }
  };
  auto remove = [&] {
    for (const auto& e : stale) {
      runner_net_key k = encode_key(e.subnet);
      if (bpf_map_delete_elem(fd, &k) != 0 && errno != ENOENT)
        bpf::fail(errno, "delete from runner_nets the named network", e.to_string());
    }
  };
  // Writes first, so no address that stays in a network is ever unclassified; deletes first
  // only when the map would not hold old and new at once.
  if (have.size() + new_keys > RUNNER_NETS_MAX) {
    remove();
    write();
  } else {
    write();
    remove();
  }
  return writes.size() + stale.size();
}

}  // namespace kohaku::runner
