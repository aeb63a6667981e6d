#include "common/wire/overlay_assignment.h"

#include <limits>
#include <stdexcept>
#include <string>

#include "common/json_parse.h"
#include "common/wire/limits.h"

namespace kohaku::wire {

using nlohmann::json;

std::string overlay_answer_string(const json& object, const char* key) {
  if (!object.contains(key) || !object[key].is_string()) {
    throw std::invalid_argument(std::string("overlay answer: '") + key +
                                "' missing or not a string");
  }
  return object[key].get<std::string>();
}

Ipv4Addr overlay_answer_addr(const json& object, const char* key) {
  auto text = overlay_answer_string(object, key);
  auto addr = Ipv4Addr::try_parse(text);
  if (!addr) {
    throw std::invalid_argument(std::string("overlay answer: '") + key + "' is not an IPv4 " +
                                "address: " + text);
  }
  return *addr;
}

namespace {

// A port is a uint16_t field: the type is the limit.
static_assert(kMaxPort == std::numeric_limits<uint16_t>::max());

Ipv4Cidr required_cidr(const json& object, const char* key) {
  auto text = overlay_answer_string(object, key);
  auto cidr = Ipv4Cidr::try_parse(text, true);
  if (!cidr) {
    throw std::invalid_argument(std::string("overlay answer: '") + key +
                                "' is not a CIDR: " + text);
  }
  return *cidr;
}

template <typename T>
std::optional<T> optional_uint(const json& object, const char* key) {
  if (!object.contains(key) || object[key].is_null()) return std::nullopt;
  if (!object[key].is_number_integer() || object[key].get<int64_t>() < 0) {
    throw std::invalid_argument(std::string("overlay answer: '") + key + "' is not a number");
  }
  try {
    return json_integer<T>(object[key], key);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(std::string("overlay answer: ") + e.what());
  }
}

// A value the data plane could never apply (a VNI over 24 bits, an impossible MTU) is refused
// here, naming the limit, rather than failing later in netlink.
template <typename T>
std::optional<T> optional_uint(const json& object, const char* key, T lo, T hi) {
  auto v = optional_uint<T>(object, key);
  if (v && (*v < lo || *v > hi)) {
    throw std::invalid_argument(std::string("overlay answer: '") + key + "' must be " +
                                std::to_string(lo) + ".." + std::to_string(hi) + ", got " +
                                std::to_string(*v));
  }
  return v;
}

}  // namespace

OverlayAssignment OverlayAssignment::from_json(const json& overlay) {
  if (!overlay.is_object()) throw std::invalid_argument("overlay answer is not an object");
  OverlayAssignment a;
  if (!overlay.contains("runner_id") || !overlay["runner_id"].is_number_integer() ||
      overlay["runner_id"].get<int64_t>() <= 0) {
    throw std::invalid_argument("overlay answer: 'runner_id' missing or not a positive number");
  }
  a.runner_id = json_integer<uint32_t>(overlay["runner_id"], "runner_id");
  a.subnet = required_cidr(overlay, "overlay_subnet");
  a.gateway = overlay_answer_addr(overlay, "overlay_gateway");
  a.host_overlay_ip = overlay_answer_addr(overlay, "host_overlay_ip");
  a.host_physical_ip = overlay_answer_addr(overlay, "host_physical_ip");
  a.network = required_cidr(overlay, "overlay_network_cidr");
  a.host_on_subnet = overlay_answer_addr(overlay, "host_ip_on_runner_subnet");
  a.vxlan_id = optional_uint<uint32_t>(overlay, "vxlan_id", 0, kMaxVni);
  a.vxlan_port = optional_uint<uint16_t>(overlay, "vxlan_port");
  a.mtu = optional_uint<uint32_t>(overlay, "mtu", kMinIpv4Mtu, kMaxIpv4Mtu);
  if (!a.subnet.contains(a.gateway) || !a.subnet.contains(a.host_on_subnet)) {
    throw std::invalid_argument("overlay answer: gateway " + a.gateway.to_string() +
                                " or host address " + a.host_on_subnet.to_string() +
                                " outside subnet " + a.subnet.to_string());
  }
  return a;
}

json OverlayAssignment::to_json() const {
  json out = {{"runner_id", runner_id},
              {"overlay_subnet", subnet.to_string()},
              {"overlay_gateway", gateway.to_string()},
              {"host_overlay_ip", host_overlay_ip.to_string()},
              {"host_physical_ip", host_physical_ip.to_string()},
              {"overlay_network_cidr", network.to_string()},
              {"host_ip_on_runner_subnet", host_on_subnet.to_string()}};
  if (vxlan_id) out["vxlan_id"] = *vxlan_id;
  if (vxlan_port) out["vxlan_port"] = *vxlan_port;
  if (mtu) out["mtu"] = *mtu;
  return out;
}

}  // namespace kohaku::wire
