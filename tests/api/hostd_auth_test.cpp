// OVERLAY_API_TOKEN: every mutating route needs "Authorization: Bearer <token>", reads do not.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>

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

namespace kohaku::test {
namespace {

bool all_hex(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

const std::string kRegisterBody = R"({"hostname": "gpu-1", "url": "http://10.1.0.5:8001"})";

// Secure by default: without OVERLAY_API_TOKEN the host generates a token at its first start,
// keeps it across restarts and wants it on every mutating route, registration included.
TEST(HostdSecureDefault, GeneratesATokenAtFirstStartAndKeepsIt) {
  Hostd hostd;
  hostd.start();
  const auto file = hostd.state_dir() / "api_token";
  ASSERT_TRUE(std::filesystem::exists(file)) << hostd.log();
  EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::all,
            std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  const std::string token = hostd.api_token();
  EXPECT_EQ(token.size(), 64u);
  EXPECT_TRUE(all_hex(token)) << token;
  EXPECT_NE(hostd.log().find("generated the API token in " + file.string()), std::string::npos)
      << hostd.log();
  EXPECT_EQ(hostd.log().find(token), std::string::npos) << "the token itself is never logged";

  // A stranger can neither register nor reserve; the 401 says where the token is.
  auto anon = hostd.client("").request("POST", "/api/register", kRegisterBody, "application/json");
  EXPECT_EQ(anon.status, 401) << anon.body;
  EXPECT_NE(anon.json()["error"].get<std::string>().find("api_token"), std::string::npos)
      << anon.body;
  EXPECT_EQ(get_json(hostd.client(""), "/api/nodes").size(), 0u);
  register_runner(hostd.client(), "gpu-1", "10.1.0.5");
  EXPECT_EQ(hostd.client("").post("/api/overlay/ip/reserve?runner=gpu-1").status, 401);
  reserve_ip(hostd.client(), "gpu-1");

  // The same token after a restart: the runners hold it.
  hostd.stop();
  hostd.start();
  EXPECT_EQ(hostd.api_token(), token);
  EXPECT_NE(hostd.log().find("API token from " + file.string()), std::string::npos);
  reserve_ip(hostd.client(token), "gpu-1");
  EXPECT_EQ(hostd.client("").post("/api/overlay/ip/reserve?runner=gpu-1").status, 401);
}

// Every runner holds the token, so a damaged file is never silently replaced by a new one.
TEST(HostdSecureDefault, ADamagedTokenFileIsRefusedNotReplaced) {
  Hostd hostd;
  hostd.start();
  hostd.stop();
  const auto file = hostd.state_dir() / "api_token";
  write_file(file, "short\n");
  EXPECT_EQ(hostd.run_expecting_exit(), 1);
  EXPECT_NE(hostd.log().find(file.string() + " does not hold an API token"), std::string::npos)
      << hostd.log();
  EXPECT_EQ(read_file(file), "short\n");
}

// OVERLAY_API_TOKEN written out empty (or None) is the operator's explicit opt-out: no file,
// mutating routes open, and a warning at every start.
TEST(HostdSecureDefault, AnEmptyTokenIsAnExplicitOptOut) {
  for (const char* value : {"OVERLAY_API_TOKEN=", "OVERLAY_API_TOKEN=None"}) {
    Hostd hostd({value});
    hostd.start();
    EXPECT_FALSE(std::filesystem::exists(hostd.state_dir() / "api_token")) << value;
    register_runner(hostd.client(""), "gpu-1", "10.1.0.5");
    reserve_ip(hostd.client(""), "gpu-1");
    EXPECT_NE(hostd.log().find("every mutating route is open"), std::string::npos) << value << "\n"
                                                                                   << hostd.log();
  }
}

}  // namespace
}  // namespace kohaku::test
