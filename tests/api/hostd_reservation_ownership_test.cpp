// Reservations are taken and freed by their token, or by the runner itself (its credential):
// knowing a runner's name, an address or a container id (all listed by open read routes) is
// not enough.
#include <gtest/gtest.h>

#include "host_api_helpers.h"
#include "hostd_process.h"

namespace kohaku::test {
namespace {

http::ClientResponse post(const http::HttpClient& c, const std::string& target,
                          const std::string& credential = {}) {
  std::vector<std::pair<std::string, std::string>> headers;
  if (!credential.empty()) headers.emplace_back("X-Kohaku-Runner-Credential", credential);
  return c.request("POST", target, {}, {}, headers);
}

TEST(HostdReservationOwnership, ContainerIdAndAddressAreNotCredentials) {
  Hostd hostd;
  hostd.start();
  auto c = hostd.client();
  const std::string credential = register_runner(c, "gpu-1", "10.1.0.5")["runner_credential"];
  register_runner(c, "gpu-2", "10.1.0.6");
  json pending = reserve_ip(c, "gpu-1", "10.128.64.40");
  const std::string token = pending["token"];
  const std::string list = "/api/overlay/ip/reservations?include_used=true";
  const json before = get_json(c, list);

  // Claiming someone's pending reservation by runner + ip: refused without the runner's
  // credential (and with another runner's), nothing changes.
  const std::string claim = "/api/overlay/ip/use?runner=gpu-1&ip=10.128.64.40&container_id=evil";
  auto no_cred = post(c, claim);
  EXPECT_EQ(no_cred.status, 403) << no_cred.body;
  EXPECT_NE(no_cred.error_message().find("token"), std::string::npos) << no_cred.body;
  EXPECT_EQ(post(c, claim, std::string(64, 'f')).status, 403);
  EXPECT_EQ(get_json(c, list), before);

  // The token holder uses it; a stranger cannot release it by container id.
  ASSERT_EQ(post(c, "/api/overlay/ip/use?token=" + token + "&container_id=ctr-1").status, 200);
  const json used = get_json(c, list);
  EXPECT_EQ(post(c, "/api/overlay/ip/release?container_id=ctr-1").status, 422)
      << "which runner's container must be said";
  auto stranger = post(c, "/api/overlay/ip/release?container_id=ctr-1&runner=gpu-1");
  EXPECT_EQ(stranger.status, 403) << stranger.body;
  EXPECT_EQ(get_json(c, list), used);

  // The runner itself (its credential) records addresses and frees its containers.
  auto own =
      post(c, "/api/overlay/ip/use?runner=gpu-1&ip=10.128.64.41&container_id=ctr-2", credential);
  EXPECT_EQ(own.status, 200) << own.body;
  auto freed = post(c, "/api/overlay/ip/release?container_id=ctr-1&runner=gpu-1", credential);
  ASSERT_EQ(freed.status, 200) << freed.body;
  EXPECT_EQ(freed.json()["released_count"], 1);
  EXPECT_EQ(post(c, "/api/overlay/ip/validate?token=" + token).json()["valid"], false);
}

}  // namespace
}  // namespace kohaku::test
