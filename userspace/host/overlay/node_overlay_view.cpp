#include "host/overlay/node_overlay_view.h"

#include <chrono>
#include <optional>

#include "common/http_client.h"
#include "common/wire/names.h"

namespace kohaku {

nlohmann::json node_overlay_view(OverlayService& service, RunnerCalls& calls,
                                 const std::string& hostname) {
  try {
    Hostname::parse(hostname);
  } catch (const InvalidName& e) {
    throw DomainError(ErrorKind::kMalformed, e.what());
  }
  std::optional<nlohmann::json> node;
  for (const auto& n : service.nodes())
    if (n.value("hostname", "") == hostname) node = n;
  if (!node) throw DomainError(ErrorKind::kNotFound, "runner '" + hostname + "' is not registered");
  std::string url = node->value("url", "");
  if (url.empty())
    throw DomainError(ErrorKind::kUpstreamFailed,
                      "runner '" + hostname + "' registered without a url");

  // Short: a dead runner must not hold a handler thread for long (and RunnerCalls bounds how
  // many wait at all).
  nlohmann::json status = calls.call(hostname, [&] {
    http::ClientOptions options;
    options.timeout = std::chrono::milliseconds(3000);
    http::ClientResponse res;
    try {
      res = http::HttpClient(url, options).get("/api/overlay/status");
    } catch (const std::exception& e) {
      throw DomainError(ErrorKind::kUpstreamFailed,
                        "runner '" + hostname + "' did not answer: " + e.what());
    }
    if (!res.ok())
      throw DomainError(ErrorKind::kUpstreamFailed, "runner '" + hostname + "' answered HTTP " +
                                                        std::to_string(res.status) + ": " +
                                                        res.error_message());
    try {
      return res.json();
    } catch (const std::exception& e) {
      throw DomainError(ErrorKind::kUpstreamFailed,
                        "runner '" + hostname + "' sent a malformed status: " + e.what());
    }
  });
  return {{"hostname", hostname}, {"node", *node}, {"runner", status}};
}

}  // namespace kohaku
