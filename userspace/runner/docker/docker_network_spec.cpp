#include "runner/docker/docker_network_spec.h"

#include <set>

namespace kohaku::runner {

using nlohmann::json;

namespace {

constexpr const char* kOptBridgeName = "com.docker.network.bridge.name";
constexpr const char* kOptMtu = "com.docker.network.driver.mtu";
constexpr const char* kOptIcc = "com.docker.network.bridge.enable_icc";
constexpr const char* kOptMasquerade = "com.docker.network.bridge.enable_ip_masquerade";

// Docker writes option values back as given; booleans may come back as "true"/"True"/"1".
bool option_true(const std::string& value) {
  return value == "true" || value == "True" || value == "1";
}

// The IPv4 IPAM entry of an inspected network (Docker may list an IPv6 one too).
json ipv4_ipam_config(const json& inspected) {
  if (!inspected.contains("IPAM")) return json::object();
  const json& ipam = inspected["IPAM"];
  if (!ipam.is_object() || !ipam.contains("Config") || !ipam["Config"].is_array()) {
    return json::object();
  }
  for (const auto& entry : ipam["Config"]) {
    if (Ipv4Cidr::try_parse(docker_string_at(entry, "Subnet"), true)) return entry;
  }
  return json::object();
}

}  // namespace

std::string docker_string_at(const json& object, const char* key) {
  if (!object.is_object()) return {};
  auto it = object.find(key);
  if (it == object.end() || !it->is_string()) return {};
  return it->get<std::string>();
}

std::string docker_short_id(const std::string& id) {
  return id.substr(0, 12);
}

std::string docker_network_bridge(const json& network) {
  return docker_string_at(network.value("Options", json::object()), kOptBridgeName);
}

Ipv4Cidr upper_half(const Ipv4Cidr& subnet) {
  if (subnet.prefix >= 31) return Ipv4Cidr{};
  return Ipv4Cidr{Ipv4Addr{subnet.addr.value + static_cast<uint32_t>(subnet.size() / 2)},
                  static_cast<uint8_t>(subnet.prefix + 1)};
}

DockerNetworkSpec overlay_network_spec(std::string name, std::string bridge, Ipv4Cidr subnet,
                                       Ipv4Addr gateway, Ipv4Addr host_address, uint32_t mtu) {
  DockerNetworkSpec spec;
  spec.name = std::move(name);
  spec.bridge = std::move(bridge);
  spec.subnet = subnet;
  spec.gateway = gateway;
  spec.mtu = mtu;
  spec.ip_range = upper_half(subnet);
  spec.excluded["kohaku-host"] = host_address;
  // Docker hands out the range's first address first; x.y.128.0 is valid but confuses people
  // and some tools, so the dynamic range starts one above it.
  if (spec.ip_range.prefix != 0) spec.excluded["kohaku-range-base"] = spec.ip_range.first();
  spec.masquerade = false;
  return spec;
}

json build_create_request(const DockerNetworkSpec& spec) {
  json ipam_config = {{"Subnet", spec.subnet.to_string()}, {"Gateway", spec.gateway.to_string()}};
  if (spec.ip_range.prefix != 0) ipam_config["IPRange"] = spec.ip_range.to_string();
  if (!spec.excluded.empty()) {
    json aux = json::object();
    for (const auto& [key, addr] : spec.excluded) aux[key] = addr.to_string();
    ipam_config["AuxiliaryAddresses"] = aux;
  }
  json labels = {{kManagedByLabel, kManagedByValue}};
  for (const auto& [key, value] : spec.labels) labels[key] = value;
  return json{
      {"Name", spec.name},
      {"Driver", "bridge"},
      {"CheckDuplicate", true},
      {"Internal", false},
      {"Attachable", true},
      {"EnableIPv6", false},
      {"IPAM", {{"Driver", "default"}, {"Config", json::array({ipam_config})}}},
      {"Options",
       {{kOptBridgeName, spec.bridge},
        {kOptMtu, std::to_string(spec.mtu)},
        {kOptIcc, "true"},
        {kOptMasquerade, spec.masquerade ? "true" : "false"}}},
      {"Labels", labels},
  };
}

std::string NetworkDiff::describe() const {
  std::string out;
  for (const auto* list : {&fatal, &soft}) {
    for (const auto& item : *list) {
      if (!out.empty()) out += "; ";
      out += item;
    }
  }
  return out;
}

NetworkDiff compare_network(const DockerNetworkSpec& spec, const json& inspected) {
  NetworkDiff diff;
  const std::string driver = docker_string_at(inspected, "Driver");
  if (driver != "bridge") diff.fatal.push_back("driver is '" + driver + "', want 'bridge'");

  const json options = inspected.contains("Options") && inspected["Options"].is_object()
                           ? inspected["Options"]
                           : json::object();
  const std::string bridge = docker_string_at(options, kOptBridgeName);
  if (bridge != spec.bridge) {
    diff.fatal.push_back("bridge is '" + bridge + "', want '" + spec.bridge + "'");
  }

  const json ipam = ipv4_ipam_config(inspected);
  const auto subnet = Ipv4Cidr::try_parse(docker_string_at(ipam, "Subnet"), true);
  if (!subnet || *subnet != spec.subnet) {
    diff.fatal.push_back("subnet is '" + docker_string_at(ipam, "Subnet") + "', want '" +
                         spec.subnet.to_string() + "'");
  }
  const auto gateway = Ipv4Addr::try_parse(docker_string_at(ipam, "Gateway"));
  if (!gateway || *gateway != spec.gateway) {
    diff.fatal.push_back("gateway is '" + docker_string_at(ipam, "Gateway") + "', want '" +
                         spec.gateway.to_string() + "'");
  }

  const std::string mtu = docker_string_at(options, kOptMtu);
  // Docker treats a missing MTU option as 1500.
  if (mtu != std::to_string(spec.mtu) && !(mtu.empty() && spec.mtu == 1500)) {
    diff.soft.push_back("mtu is '" + mtu + "', want " + std::to_string(spec.mtu));
  }
  const std::string icc = docker_string_at(options, kOptIcc);
  if (!icc.empty() && !option_true(icc)) diff.soft.push_back("icc is off, want on");
  const std::string masq = docker_string_at(options, kOptMasquerade);
  // Docker's default is masquerade on, so a missing option means on.
  const bool masq_on = masq.empty() || option_true(masq);
  if (masq_on != spec.masquerade) {
    diff.soft.push_back(std::string("ip masquerade is ") + (masq_on ? "on" : "off") + ", want " +
                        (spec.masquerade ? "on" : "off"));
  }

  const std::string range_text = docker_string_at(ipam, "IPRange");
  const std::string want_range = spec.ip_range.prefix != 0 ? spec.ip_range.to_string() : "";
  const auto range = Ipv4Cidr::try_parse(range_text, true);
  if ((range ? range->to_string() : range_text) != want_range) {
    diff.soft.push_back("ip range is '" + range_text + "', want '" + want_range + "'");
  }

  std::set<uint32_t> aux;
  if (ipam.contains("AuxiliaryAddresses") && ipam["AuxiliaryAddresses"].is_object()) {
    for (const auto& [key, value] : ipam["AuxiliaryAddresses"].items()) {
      if (value.is_string()) {
        if (auto a = Ipv4Addr::try_parse(value.get<std::string>())) aux.insert(a->value);
      }
    }
  }
  for (const auto& [key, addr] : spec.excluded) {
    if (!aux.count(addr.value)) {
      diff.soft.push_back("address " + addr.to_string() + " (" + key + ") is not excluded");
    }
  }
  return diff;
}

std::map<std::string, Ipv4Addr> container_addresses(const json& inspected) {
  std::map<std::string, Ipv4Addr> out;
  if (!inspected.is_object() || !inspected.contains("Containers") ||
      !inspected["Containers"].is_object()) {
    return out;
  }
  for (const auto& [id, endpoint] : inspected["Containers"].items()) {
    // Keys that are not container ids: load-balancer endpoints ("lb-<network>") and endpoints
    // of containers still being started ("ep-<endpoint id>"), which reappear under the real id.
    if (id.rfind("lb-", 0) == 0 || id.rfind("ep-", 0) == 0) continue;
    // "10.1.0.5/16": the address part only.
    const std::string text = docker_string_at(endpoint, "IPv4Address");
    const auto addr = Ipv4Addr::try_parse(text.substr(0, text.find('/')));
    if (addr) out[id] = *addr;
  }
  return out;
}

}  // namespace kohaku::runner
