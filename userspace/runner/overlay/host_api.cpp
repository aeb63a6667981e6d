#include "runner/overlay/host_api.h"

#include <stdexcept>

#include "common/json_parse.h"

namespace kohaku::runner {

using nlohmann::json;

namespace {

std::string required_string(const json& object, const char* key) {
  if (!object.contains(key) || !object[key].is_string()) {
    throw std::invalid_argument(std::string("overlay answer: '") + key +
                                "' missing or not a string");
  }
  return object[key].get<std::string>();
}

Ipv4Addr required_addr(const json& object, const char* key) {
  auto text = required_string(object, key);
  auto addr = Ipv4Addr::try_parse(text);
  if (!addr) {
    throw std::invalid_argument(std::string("overlay answer: '") + key + "' is not an IPv4 " +
                                "address: " + text);
  }
  return *addr;
}

Ipv4Cidr required_cidr(const json& object, const char* key) {
  auto text = required_string(object, key);
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
  a.gateway = required_addr(overlay, "overlay_gateway");
  a.host_overlay_ip = required_addr(overlay, "host_overlay_ip");
  a.host_physical_ip = required_addr(overlay, "host_physical_ip");
  a.network = required_cidr(overlay, "overlay_network_cidr");
  a.host_on_subnet = required_addr(overlay, "host_ip_on_runner_subnet");
  a.vxlan_id = optional_uint<uint32_t>(overlay, "vxlan_id");
  a.vxlan_port = optional_uint<uint16_t>(overlay, "vxlan_port");
  a.mtu = optional_uint<uint32_t>(overlay, "mtu");
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

HostApi::HostApi(const std::string& base_url, const std::string& bearer_token,
                 std::chrono::milliseconds timeout)
    : base_url_(base_url),
      client_(base_url, http::ClientOptions{.timeout = timeout, .bearer_token = bearer_token}) {}

void HostApi::set_runner_credential(std::string credential) {
  std::lock_guard lock(credential_mu_);
  credential_ = std::move(credential);
}

std::string HostApi::runner_credential() const {
  std::lock_guard lock(credential_mu_);
  return credential_;
}

json HostApi::call(std::string_view method, const std::string& target,
                   const std::optional<json>& body, bool with_credential) const {
  std::vector<std::pair<std::string, std::string>> headers;
  if (with_credential) {
    std::lock_guard lock(credential_mu_);
    if (!credential_.empty()) headers.emplace_back("X-Kohaku-Runner-Credential", credential_);
  }
  http::ClientResponse res;
  try {
    res = body ? client_.request(method, target, body->dump(), "application/json", headers)
               : client_.request(method, target, {}, {}, headers);
  } catch (const http::ClientError& e) {
    throw HostApiError(0, e.what());
  }
  if (!res.ok()) {
    throw HostApiError(res.status, std::string(method) + " " + target + ": HTTP " +
                                       std::to_string(res.status) + ": " + res.error_message());
  }
  try {
    return res.body.empty() ? json::object() : res.json();
  } catch (const http::ClientError& e) {
    throw HostApiError(res.status, std::string(method) + " " + target + ": " + e.what());
  }
}

json HostApi::register_runner(const json& body) const {
  return call("POST", "/api/register", body, true);
}

json HostApi::heartbeat(const std::string& hostname, const json& body) const {
  return call("PUT", "/api/heartbeat/" + http::percent_encode(hostname), body, true);
}

Reservation HostApi::reserve(const std::string& runner, std::optional<Ipv4Addr> ip,
                             std::optional<int> ttl_seconds) const {
  auto answer =
      call("POST",
           http::with_query(
               "/api/overlay/ip/reserve",
               {{"runner", runner},
                {"ip", ip ? std::optional(ip->to_string()) : std::nullopt},
                {"ttl", ttl_seconds ? std::optional(std::to_string(*ttl_seconds)) : std::nullopt}}),
           std::nullopt);
  try {
    return Reservation{required_addr(answer, "ip"), required_string(answer, "token")};
  } catch (const std::invalid_argument& e) {
    throw HostApiError(200, std::string("reserve: malformed answer: ") + e.what());
  }
}

json HostApi::validate(const std::string& token, const std::string& runner) const {
  return call("POST",
              http::with_query("/api/overlay/ip/validate", {{"token", token}, {"runner", runner}}),
              std::nullopt);
}

void HostApi::use_token(const std::string& token, const std::string& container_id) const {
  call("POST",
       http::with_query("/api/overlay/ip/use", {{"token", token}, {"container_id", container_id}}),
       std::nullopt);
}

void HostApi::use_ip(const std::string& runner, Ipv4Addr ip,
                     const std::string& container_id) const {
  call("POST",
       http::with_query(
           "/api/overlay/ip/use",
           {{"runner", runner}, {"ip", ip.to_string()}, {"container_id", container_id}}),
       std::nullopt, true);
}

void HostApi::release_token(const std::string& token) const {
  call("POST", http::with_query("/api/overlay/ip/release", {{"token", token}}), std::nullopt);
}

void HostApi::release_container(const std::string& container_id, const std::string& runner) const {
  call("POST",
       http::with_query("/api/overlay/ip/release",
                        {{"container_id", container_id}, {"runner", runner}}),
       std::nullopt, true);
}

json HostApi::l2_networks_of(const std::string& runner) const {
  return call("GET", http::with_query("/api/networks", {{"runner", runner}}), std::nullopt);
}

json HostApi::l2_allocate(const std::string& network, const std::string& runner,
                          const std::string& container_id) const {
  return call("POST",
              http::with_query("/api/networks/" + http::percent_encode(network) + "/ip/allocate",
                               {{"runner", runner}, {"container_id", container_id}}),
              std::nullopt);
}

void HostApi::l2_release(const std::string& network, const std::string& container_id) const {
  call("POST",
       http::with_query("/api/networks/" + http::percent_encode(network) + "/ip/release",
                        {{"container_id", container_id}}),
       std::nullopt);
}

json HostApi::l2_block(const std::string& network, const std::string& runner) const {
  return call("POST",
              http::with_query("/api/networks/" + http::percent_encode(network) + "/ip/block",
                               {{"runner", runner}}),
              std::nullopt);
}

}  // namespace kohaku::runner
