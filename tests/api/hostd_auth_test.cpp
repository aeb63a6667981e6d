// OVERLAY_API_TOKEN: every mutating route needs "Authorization: Bearer <token>", reads do not.
#include <gtest/gtest.h>

#include "host_api_helpers.h"
#include "hostd_process.h"

namespace kohaku::test {
namespace {

constexpr const char* kToken = "correct-horse-battery-staple";

class HostdAuth : public ::testing::Test {
 protected:
  void SetUp() override {
    hostd_.start();
    // Something to act on, set up with the right token.
    register_runner(hostd_.client(kToken), "gpu-1", "10.1.0.5");
    token_ = reserve_ip(hostd_.client(kToken), "gpu-1")["token"];
  }
  Hostd hostd_{{std::string("OVERLAY_API_TOKEN=") + kToken}};
  std::string token_;
};

struct Call {
  std::string method;
  std::string target;
  std::string body;
};

std::vector<Call> mutating_calls(const std::string& token) {
  return {{"POST", "/api/register", R"({"hostname": "gpu-2", "url": "http://10.1.0.6:8001"})"},
          {"PUT", "/api/heartbeat/gpu-1", "{}"},
          {"POST", "/api/overlay/release/gpu-1", ""},
          {"POST", "/api/overlay/cleanup", ""},
          {"POST", "/api/overlay/ip/reserve?runner=gpu-1", ""},
          {"POST", "/api/overlay/ip/release?token=" + token, ""},
          {"POST", "/api/overlay/ip/validate?token=" + token, ""},
          {"POST", "/api/overlay/ip/use?token=" + token + "&container_id=c1", ""}};
}

TEST_F(HostdAuth, MutatingRoutesNeedTheToken) {
  json before = get_json(hostd_.client(), "/api/overlay/ip/reservations?include_used=true");
  for (const std::string& presented : {std::string(), std::string("wrong"),
                                       std::string(kToken) + "x", std::string(kToken).substr(1)}) {
    for (const auto& call : mutating_calls(token_)) {
      auto res = hostd_.client(presented).request(call.method, call.target, call.body,
                                                  call.body.empty() ? "" : "application/json");
      EXPECT_EQ(res.status, 401) << "token '" << presented << "' " << call.method << " "
                                 << call.target << ": " << res.body;
      EXPECT_TRUE(res.json()["error"].is_string());
    }
  }
  // Nothing happened.
  EXPECT_EQ(get_json(hostd_.client(), "/api/overlay/ip/reservations?include_used=true"), before);
  EXPECT_EQ(get_json(hostd_.client(), "/api/nodes").size(), 1u);
}

TEST_F(HostdAuth, ReadsAreOpen) {
  auto c = hostd_.client();
  for (const char* target :
       {"/healthz", "/api/nodes", "/api/overlay/status", "/api/overlay/ip/available",
        "/api/overlay/ip/info/gpu-1", "/api/overlay/ip/reservations", "/api/overlay/ip/stats"})
    EXPECT_EQ(c.get(target).status, 200) << target;
}

TEST_F(HostdAuth, TheRightTokenWorks) {
  auto c = hostd_.client(kToken);
  EXPECT_EQ(c.put("/api/heartbeat/gpu-1", json::object()).status, 200);
  EXPECT_EQ(c.post(http::with_query("/api/overlay/ip/validate", {{"token", token_}})).status, 200);
  EXPECT_EQ(c.post(http::with_query("/api/overlay/ip/release", {{"token", token_}})).status, 200);
  // The scheme name is case-insensitive (RFC 7235).
  auto lower = hostd_.client().request("POST", "/api/overlay/ip/reserve?runner=gpu-1", "", "",
                                       {{"Authorization", std::string("bearer ") + kToken}});
  EXPECT_EQ(lower.status, 200) << lower.body;
}

}  // namespace
}  // namespace kohaku::test
