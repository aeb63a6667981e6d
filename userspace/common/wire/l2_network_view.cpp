#include "common/wire/l2_network_view.h"

#include <set>
#include <stdexcept>

#include "common/domain_error.h"
#include "common/json_parse.h"
#include "common/wire/limits.h"

namespace kohaku::wire {

using nlohmann::json;

L2NetworkView L2NetworkView::from_json(const std::string& name, const json& j) {
  if (!j.is_object()) throw DomainError(ErrorKind::kMalformed, "body must be a JSON object");
  auto bad = [](const std::string& why) { return DomainError(ErrorKind::kMalformed, why); };
  L2NetworkView v;
  v.name = name;
  try {
    v.vni = json_integer_at<uint32_t>(j, "vni");
    auto subnet = Ipv4Cidr::try_parse(j.at("subnet").get<std::string>());
    if (!subnet || subnet->prefix > 30) throw bad("'subnet' must be a CIDR up to /30");
    v.subnet = *subnet;
    auto gw = Ipv4Addr::try_parse(j.at("gateway").get<std::string>());
    if (!gw || !v.subnet.contains(*gw)) throw bad("'gateway' must be an address of the subnet");
    v.gateway = *gw;
    v.mtu = json_integer_or<uint32_t>(j, "mtu", 1450u);
    v.port = json_integer_or<uint16_t>(j, "port", 4789);
    std::set<Ipv4Addr> peers;
    for (const auto& p : j.at("peers")) {
      auto ip = Ipv4Addr::try_parse(p.get<std::string>());
      if (!ip) throw bad("'peers' must hold IPv4 addresses");
      peers.insert(*ip);
    }
    v.peers.assign(peers.begin(), peers.end());
    v.outbound_nat = j.value("outbound_nat", true);
    v.revision = json_integer_or<uint64_t>(j, "revision", 0);
  } catch (const json::exception& e) {
    throw bad(std::string("malformed network view: ") + e.what());
  } catch (const std::invalid_argument& e) {
    throw bad(std::string("malformed network view: ") + e.what());
  }
  if (v.vni == 0 || v.vni > kMaxVni) throw bad("'vni' must be 1.." + std::to_string(kMaxVni));
  if (v.mtu < kMinIpv4Mtu || v.mtu > kMaxIpv4Mtu) throw bad("'mtu' must be 68..65535");
  return v;
}

json L2NetworkView::to_json() const {
  json peers = json::array();
  for (auto p : this->peers) peers.push_back(p.to_string());
  return {{"name", name},
          {"vni", vni},
          {"subnet", subnet.to_string()},
          {"gateway", gateway.to_string()},
          {"mtu", mtu},
          {"port", port},
          {"peers", peers},
          {"outbound_nat", outbound_nat},
          {"revision", revision}};
}

}  // namespace kohaku::wire
