#pragma once
// What the host tells a member runner about one named L2 network (docs/l2-networks.md): the
// body of PUT /api/l2/networks/{name} and each item of GET /api/networks?runner=. The host
// builds it (host/l2/l2_network_views.cpp) and the runner parses it (runner/l2/), both through
// this one type, so the two sides cannot drift apart on a field name or a limit.
#include <nlohmann/json.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "common/ipv4.h"

namespace kohaku::wire {

struct L2NetworkView {
  std::string name;
  uint32_t vni = 0;
  Ipv4Cidr subnet;
  Ipv4Addr gateway;
  uint32_t mtu = 1450;
  uint16_t port = 4789;
  // The other members' physical addresses. The host lists them in member order; from_json
  // yields them sorted and without duplicates (the runner compares views by their peer set).
  std::vector<Ipv4Addr> peers;
  bool outbound_nat = true;
  uint64_t revision = 0;

  // The runner's checks: throws DomainError(kMalformed) naming the field. `name` comes from
  // the route (PUT) or the item's "name" (poll); the body's own "name" is not read.
  static L2NetworkView from_json(const std::string& name, const nlohmann::json& j);
  nlohmann::json to_json() const;
  bool same_devices(const L2NetworkView& o) const {
    return vni == o.vni && subnet == o.subnet && gateway == o.gateway && mtu == o.mtu &&
           port == o.port && peers == o.peers;
  }
};

}  // namespace kohaku::wire
