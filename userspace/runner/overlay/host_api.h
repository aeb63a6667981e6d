#pragma once
// Typed calls to kohaku-hostd's API, as the runner uses them. Every call sends the bearer token
// when one is configured. Non-2xx answers throw HostApiError carrying the status and the host's
// `error` text; transport failures throw HostApiError with status 0.
#include <nlohmann/json.hpp>

#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>

#include "common/domain_error.h"
#include "common/http_client.h"
#include "common/http_router.h"
#include "common/ipv4.h"
#include "common/wire/overlay_assignment.h"

namespace kohaku::runner {

class HostApiError : public std::runtime_error {
 public:
  HostApiError(int status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }  // 0: the host did not answer

 private:
  int status_;
};

// The one reading of a host failure as a domain error kind, so that one kind of host failure gets
// one HTTP status from the runner whichever call met it: no answer -> kUnavailable (503), an
// answer that is 2xx but unusable or a 5xx -> kUpstreamFailed (502), 409 -> kConflict; any other
// refusal (400, 403, 404, 422...) means what the caller's request was: `refused`.
ErrorKind host_error_kind(const HostApiError& e, ErrorKind refused);

// The overlay part of the register answer; defined in common/wire so the host builds the same
// message the runner parses.
using OverlayAssignment = wire::OverlayAssignment;

struct Reservation {
  Ipv4Addr ip;
  std::string token;
};

class HostApi {
 public:
  HostApi(const std::string& base_url, const std::string& bearer_token,
          std::chrono::milliseconds timeout = std::chrono::seconds(10));

  const std::string& base_url() const { return base_url_; }

  // The credential the host issued to this runner, presented on register and heartbeat
  // (header X-Kohaku-Runner-Credential); empty: none yet. Thread-safe.
  void set_runner_credential(std::string credential);
  std::string runner_credential() const;

  // POST /api/register; returns the whole answer.
  nlohmann::json register_runner(const nlohmann::json& body) const;
  // PUT /api/heartbeat/{hostname}; throws HostApiError(404) when the host forgot us. The
  // answer may carry the current `overlay` block (as in the register answer).
  nlohmann::json heartbeat(const std::string& hostname, const nlohmann::json& body) const;

  // POST /api/overlay/ip/reserve?runner=&ip=&ttl=
  Reservation reserve(const std::string& runner, std::optional<Ipv4Addr> ip,
                      std::optional<int> ttl_seconds = std::nullopt) const;
  // POST /api/overlay/ip/validate?token=&runner=; returns the answer ({valid, ip, is_used...}).
  nlohmann::json validate(const std::string& token, const std::string& runner) const;
  // POST /api/overlay/ip/use?token=&container_id=
  void use_token(const std::string& token, const std::string& container_id) const;
  // POST /api/overlay/ip/use?runner=&ip=&container_id=  (an address Docker chose; sends the
  // runner credential, which the host requires here)
  void use_ip(const std::string& runner, Ipv4Addr ip, const std::string& container_id) const;
  // POST /api/overlay/ip/release?token=
  void release_token(const std::string& token) const;
  // POST /api/overlay/ip/release?container_id=&runner=  (with the runner credential)
  void release_container(const std::string& container_id, const std::string& runner) const;

  // Named L2 networks (docs/l2-networks.md).
  // GET /api/networks?runner=: the views of the networks `runner` belongs to, with the revision.
  nlohmann::json l2_networks_of(const std::string& runner) const;
  // POST /api/networks/{name}/ip/allocate?runner=&container_id=
  nlohmann::json l2_allocate(const std::string& network, const std::string& runner,
                             const std::string& container_id) const;
  // POST /api/networks/{name}/ip/release?container_id=
  void l2_release(const std::string& network, const std::string& container_id) const;
  // POST /api/networks/{name}/ip/block?runner=: the runner's Docker address block.
  nlohmann::json l2_block(const std::string& network, const std::string& runner) const;

 private:
  nlohmann::json call(std::string_view method, const std::string& target,
                      const std::optional<nlohmann::json>& body,
                      bool with_credential = false) const;

  std::string base_url_;
  mutable std::mutex credential_mu_;
  std::string credential_;
  http::HttpClient client_;
};

}  // namespace kohaku::runner
