// Runner takeover: a hostname that was registered once cannot be moved to another address (its
// tunnel vxkr<id>, its subnet, its named networks) without the credential issued to it.
#include <gtest/gtest.h>

#include "host_api_helpers.h"
#include "hostd_process.h"

namespace kohaku::test {
namespace {

const char* kHeader = "X-Kohaku-Runner-Credential";

http::ClientResponse post_register(const http::HttpClient& c, const std::string& hostname,
                                   const std::string& ip, const std::string& credential = {}) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!credential.empty()) headers.emplace_back(kHeader, credential);
  json body = {{"hostname", hostname}, {"url", "http://" + ip + ":8001"}};
  return c.request("POST", "/api/register", body.dump(), "application/json", headers);
}

http::ClientResponse heartbeat(const http::HttpClient& c, const std::string& hostname,
                               const std::string& credential = {}) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!credential.empty()) headers.emplace_back(kHeader, credential);
  return c.request("PUT", "/api/heartbeat/" + hostname, "{}", "application/json", headers);
}

json allocation_of(const http::HttpClient& c, const std::string& hostname) {
  const json status = get_json(c, "/api/overlay/status");
  for (const auto& a : status["allocations"])
    if (a["runner_name"] == hostname) return a;
  return nullptr;
}

TEST(HostdRunnerCredential, AnotherAddressCannotTakeOverARegisteredHostname) {
  Hostd hostd;
  hostd.start();
  auto c = hostd.client();
  json first = register_runner(c, "gpu-1", "10.1.0.5");
  ASSERT_TRUE(first["runner_credential"].is_string()) << first.dump();
  const std::string credential = first["runner_credential"];
  EXPECT_EQ(credential.size(), 64u);
  json nodes_before = get_json(c, "/api/nodes");
  json allocation_before = allocation_of(c, "gpu-1");

  // From another IP, without the credential or with a wrong one: 403, nothing moves.
  auto stolen = post_register(c, "gpu-1", "10.1.0.66");
  EXPECT_EQ(stolen.status, 403) << stolen.body;
  EXPECT_NE(stolen.error_message().find("credential"), std::string::npos) << stolen.body;
  EXPECT_NE(stolen.error_message().find("10.1.0.5"), std::string::npos) << stolen.body;
  auto wrong = post_register(c, "gpu-1", "10.1.0.66", std::string(64, 'a'));
  EXPECT_EQ(wrong.status, 403) << wrong.body;
  auto wrong_here = post_register(c, "gpu-1", "10.1.0.5", std::string(64, 'a'));
  EXPECT_EQ(wrong_here.status, 403) << "a wrong credential is refused even in place";
  EXPECT_EQ(allocation_of(c, "gpu-1"), allocation_before);
  EXPECT_EQ(get_json(c, "/api/nodes"), nodes_before);

  // A restart in place (upstream KohakuRiver runners never send a credential) still works and
  // is not handed the credential.
  auto in_place = post_register(c, "gpu-1", "10.1.0.5");
  ASSERT_EQ(in_place.status, 200) << in_place.body;
  EXPECT_FALSE(in_place.json().contains("runner_credential"));
  EXPECT_EQ(in_place.json()["overlay"]["runner_id"], 1);

  // Heartbeats: a wrong credential is refused; none or the right one is accepted.
  EXPECT_EQ(heartbeat(c, "gpu-1", std::string(64, 'b')).status, 403);
  EXPECT_EQ(heartbeat(c, "gpu-1").status, 200);
  EXPECT_EQ(heartbeat(c, "gpu-1", credential).status, 200);

  // The credential is never shown.
  for (const char* route : {"/api/nodes", "/api/overlay/status"})
    EXPECT_EQ(get_json(c, route).dump().find(credential), std::string::npos) << route;

  // It survives a restart of the host, and with it the runner moves.
  hostd.stop();
  hostd.start();
  c = hostd.client();
  EXPECT_EQ(post_register(c, "gpu-1", "10.1.0.66").status, 403);
  auto moved = post_register(c, "gpu-1", "10.1.0.66", credential);
  ASSERT_EQ(moved.status, 200) << moved.body;
  EXPECT_EQ(moved.json()["overlay"]["runner_id"], 1);
  EXPECT_EQ(allocation_of(c, "gpu-1")["physical_ip"], "10.1.0.66");
}

}  // namespace
}  // namespace kohaku::test
