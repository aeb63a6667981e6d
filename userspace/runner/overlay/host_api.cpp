#include "runner/overlay/host_api.h"

#include <stdexcept>

namespace kohaku::runner {

ErrorKind host_error_kind(const HostApiError& e, ErrorKind refused) {
  const int status = e.status();
  if (status == 0) return ErrorKind::kUnavailable;
  if (status == 409) return ErrorKind::kConflict;
  if (status >= 500 || (status >= 200 && status < 300)) return ErrorKind::kUpstreamFailed;
  return refused;
}

using nlohmann::json;

using wire::overlay_answer_addr;
using wire::overlay_answer_string;

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
    return Reservation{overlay_answer_addr(answer, "ip"), overlay_answer_string(answer, "token")};
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
