#pragma once
// Small synchronous HTTP/1.1 client (Boost.Beast inside http_client.cpp) for kohakuctl, the
// runner daemon and the API tests. One connection per request by default: callers talk to a
// daemon a few times a second at most, and a fresh connection never trips over a server-side
// idle close. ClientOptions::keep_alive keeps one connection for a client that sends many
// (a load generator, a scheduler), as HTTP/1.1 clients with a pool do.
#include <nlohmann/json.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace kohaku::http {

// Transport failure (bad URL, refused, timeout, broken reply). what() names the URL.
class ClientError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct BaseUrl {
  std::string host;  // name or literal (IPv6 without brackets)
  uint16_t port = 80;
  std::string prefix;  // path prefix without trailing '/', usually empty

  // "http://host[:port][/prefix]"; a bare "host[:port]" is taken as http. Throws ClientError.
  static BaseUrl parse(std::string_view url);
  std::string to_string() const;
};

struct ClientResponse {
  int status = 0;
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased

  bool ok() const { return status >= 200 && status < 300; }
  // Parses the body; throws ClientError when it is not JSON.
  nlohmann::json json() const;
  // The `error` field of a JSON error body, else the raw body, else "HTTP <status>".
  std::string error_message() const;
};

struct ClientOptions {
  std::chrono::milliseconds timeout{10000};  // connect + send + receive, per request
  std::string bearer_token;                  // sent as "Authorization: Bearer ..." when set
  // Reuse one connection across requests (one request at a time per client and its copies).
  // When a kept connection ends before a byte of the reply (the server closed it while idle),
  // the request is sent once more on a new one; every other failure is reported.
  bool keep_alive = false;
};

class HttpClient {
 public:
  explicit HttpClient(std::string_view base_url, ClientOptions options = {});

  // target: path relative to the base URL, may carry "?query". Non-2xx statuses are returned,
  // not thrown; only transport failures throw ClientError.
  ClientResponse get(std::string_view target) const { return request("GET", target); }
  ClientResponse del(std::string_view target) const { return request("DELETE", target); }
  ClientResponse post(std::string_view target) const { return request("POST", target); }
  ClientResponse post(std::string_view target, const nlohmann::json& body) const {
    return request("POST", target, body.dump(), "application/json");
  }
  ClientResponse put(std::string_view target, const nlohmann::json& body) const {
    return request("PUT", target, body.dump(), "application/json");
  }

  // Any method, raw body; extra headers are sent as given (tests use it for malformed input).
  ClientResponse request(
      std::string_view method, std::string_view target, std::string body = {},
      std::string_view content_type = {},
      const std::vector<std::pair<std::string, std::string>>& headers = {}) const;

  const BaseUrl& base() const { return base_; }

 private:
  struct Connection;
  BaseUrl base_;
  ClientOptions options_;
  std::shared_ptr<Connection> connection_;  // with keep_alive only
};

// "/api/x" + {a:1} -> "/api/x?a=1" (empty values are kept; nullopt values skipped).
std::string with_query(std::string_view path,
                       const std::vector<std::pair<std::string, std::optional<std::string>>>& q);

}  // namespace kohaku::http
