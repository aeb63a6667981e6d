#pragma once
// A small synchronous client for the Docker Engine API over its unix socket (Beast on an
// asio local stream). Covers only what the runner needs: networks and containers. Each call
// opens its own connection, so the client is safe to use from several threads and survives a
// Docker restart between calls.
#include <nlohmann/json.hpp>

#include <chrono>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kohaku::runner {

// A failed Engine API call: transport failure (status 0) or a non-2xx answer, with Docker's
// own "message" when it sent one.
class DockerError : public std::runtime_error {
 public:
  DockerError(int status, const std::string& message)
      : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }  // 0: no HTTP answer (socket missing, timeout...)

 private:
  int status_;
};

class DockerClient {
 public:
  explicit DockerClient(std::string socket_path,
                        std::chrono::milliseconds timeout = std::chrono::seconds(10));

  const std::string& socket_path() const { return socket_path_; }

  // GET /_ping: true when an engine answers. Never throws.
  bool ping() const;

  // GET /networks
  nlohmann::json list_networks() const;
  // GET /networks/{id or name}; nullopt when Docker has no such network.
  std::optional<nlohmann::json> inspect_network(std::string_view id_or_name) const;
  // POST /networks/create; returns the new network's id.
  std::string create_network(const nlohmann::json& spec) const;
  // DELETE /networks/{id}; a network that is already gone is not an error.
  void remove_network(std::string_view id_or_name) const;
  // POST /networks/{id}/disconnect (force), used before removing a network that still has
  // endpoints of dead containers.
  void disconnect_container(std::string_view network, std::string_view container) const;

  // GET /containers/json?all=..&filters=..
  nlohmann::json list_containers(bool all, const nlohmann::json& filters) const;
  // GET /containers/{id}/json; nullopt when no such container.
  std::optional<nlohmann::json> inspect_container(std::string_view id_or_name) const;

 private:
  struct Reply {
    int status = 0;
    std::string body;
  };
  Reply request(std::string_view method, const std::string& target,
                const std::optional<nlohmann::json>& body) const;
  nlohmann::json expect_json(std::string_view what, const Reply& reply) const;
  [[noreturn]] void fail(std::string_view what, const Reply& reply) const;

  std::string socket_path_;
  std::chrono::milliseconds timeout_;
};

}  // namespace kohaku::runner
