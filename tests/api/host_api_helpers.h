#pragma once
// Shorthands for the host API calls most tests need, asserting the call succeeded.
#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

#include "common/http_client.h"

namespace kohaku::test {

using nlohmann::json;

// POST /api/register for a runner at http://<ip>:8001; returns the answer (200 expected).
// `credential`: sent as X-Kohaku-Runner-Credential when not empty.
inline json register_runner(const http::HttpClient& c, const std::string& hostname,
                            const std::string& ip, json extra = json::object(),
                            const std::string& credential = {}) {
  json body = {{"hostname", hostname}, {"url", "http://" + ip + ":8001"}};
  body.update(extra);
  std::vector<std::pair<std::string, std::string>> headers;
  if (!credential.empty()) headers.emplace_back("X-Kohaku-Runner-Credential", credential);
  auto res = c.request("POST", "/api/register", body.dump(), "application/json", headers);
  EXPECT_EQ(res.status, 200) << res.body;
  return res.json();
}

// POST /api/overlay/ip/reserve; returns the answer (200 expected).
inline json reserve_ip(const http::HttpClient& c, const std::string& runner,
                       std::optional<std::string> ip = std::nullopt,
                       std::optional<std::string> ttl = std::nullopt) {
  auto res = c.post(
      http::with_query("/api/overlay/ip/reserve", {{"runner", runner}, {"ip", ip}, {"ttl", ttl}}));
  EXPECT_EQ(res.status, 200) << res.body;
  return res.json();
}

inline json get_json(const http::HttpClient& c, const std::string& target) {
  auto res = c.get(target);
  EXPECT_EQ(res.status, 200) << target << ": " << res.body;
  return res.json();
}

// Everything a request could have changed, as the API shows it (nodes, allocations, reservations
// and their counts, and with `runner` its address counts): equal before and after, a refused or
// failed request changed nothing.
inline json visible_state(const http::HttpClient& c, const std::string& runner = {}) {
  json state = {{"nodes", get_json(c, "/api/nodes")},
                {"allocations", get_json(c, "/api/overlay/status")["allocations"]},
                {"reservations", get_json(c, "/api/overlay/ip/reservations?include_used=true")},
                {"stats", get_json(c, "/api/overlay/ip/stats")}};
  if (!runner.empty()) state["info"] = get_json(c, "/api/overlay/ip/info/" + runner);
  return state;
}

}  // namespace kohaku::test
