// Docker address blocks of named L2 networks against a running kohaku-hostd: one aligned block
// per member runner (idempotent), the refusals, ordinary allocations kept out of every block,
// `kohakuctl network show`, a leave releasing the block, and blocks surviving kill -9.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "common/ipv4.h"
#include "host_api_helpers.h"
#include "hostd_process.h"

namespace kohaku::test {
namespace {

http::ClientResponse block(const http::HttpClient& c, const std::string& network,
                           const std::string& runner) {
  return c.post("/api/networks/" + network + "/ip/block?runner=" + runner);
}

bool inside(const std::string& ip, const std::string& cidr) {
  return Ipv4Cidr::parse(cidr).contains(Ipv4Addr::parse(ip));
}

TEST(HostdL2DockerBlocks, BlocksPerRunnerRefusalsPersistence) {
  // Blocks of 16: a /26 holds four of them, minus the ones with the network, gateway and
  // broadcast addresses.
  Hostd d({"L2_DOCKER_BLOCK_SIZE=16", "L2_IP_QUARANTINE_SECONDS=300"});
  d.start();
  auto c = d.client();
  register_runner(c, "r1", "192.0.2.11");
  register_runner(c, "r2", "192.0.2.12");
  register_runner(c, "r3", "192.0.2.13");
  register_runner(c, "novx", "192.0.2.14", {{"vxlan_disabled", true}});
  auto created =
      c.post("/api/networks",
             json{{"name", "train"}, {"subnet", "172.20.0.0/26"}, {"runners", {"r1", "r2"}}});
  ASSERT_EQ(created.status, 200) << created.body;

  auto b1 = block(c, "train", "r1");
  ASSERT_EQ(b1.status, 200) << b1.body;
  // .48/28 holds the broadcast .63, so the top free block is .32/28.
  EXPECT_EQ(b1.json()["cidr"], "172.20.0.32/28");
  EXPECT_EQ(b1.json()["created"], true);
  auto b2 = block(c, "train", "r2");
  ASSERT_EQ(b2.status, 200) << b2.body;
  EXPECT_EQ(b2.json()["cidr"], "172.20.0.16/28");
  auto again = block(c, "train", "r1");
  EXPECT_EQ(again.json()["cidr"], "172.20.0.32/28");
  EXPECT_EQ(again.json()["created"], false);

  EXPECT_EQ(block(c, "train", "r3").status, 409);     // not a member
  EXPECT_EQ(block(c, "train", "ghost").status, 404);  // not registered
  EXPECT_EQ(block(c, "train", "novx").status, 412);   // VXLAN disabled
  EXPECT_EQ(block(c, "nope", "r1").status, 404);
  EXPECT_EQ(c.post("/api/networks/train/ip/block").status, 422);  // no runner
  auto e = block(c, "train", "r3").json();
  EXPECT_NE(e["error"].get<std::string>().find("not a member"), std::string::npos) << e;

  auto shown = get_json(c, "/api/networks/train");
  EXPECT_EQ(shown["blocks"], json::parse(R"([{"runner": "r1", "cidr": "172.20.0.32/28"},
                                            {"runner": "r2", "cidr": "172.20.0.16/28"}])"));

  // Every other host address: .2 .. .15 and .48 .. .62 (gateway .1): 29 addresses, none in a
  // block; then the network is full.
  std::set<std::string> ips;
  for (int i = 0;; ++i) {
    auto a = c.post("/api/networks/train/ip/allocate?runner=r1&container_id=c" + std::to_string(i));
    if (a.status != 200) {
      EXPECT_EQ(a.status, 409) << a.body;
      break;
    }
    std::string ip = a.json()["ip"];
    EXPECT_FALSE(inside(ip, "172.20.0.32/28") || inside(ip, "172.20.0.16/28")) << ip;
    ips.insert(ip);
  }
  EXPECT_EQ(ips.size(), 29u);

  // kohakuctl network show lists the blocks.
  auto ctl = run_program({bin_path("kohakuctl"), "--host", d.url(), "network", "show", "train"});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.err;
  EXPECT_NE(ctl.out.find("DOCKER BLOCK"), std::string::npos) << ctl.out;
  EXPECT_NE(ctl.out.find("172.20.0.16/28  r2"), std::string::npos) << ctl.out;

  // r2 leaves (its containers are the runner's business): not refused, the block is released.
  auto left = c.del("/api/networks/train/members/r2");
  ASSERT_EQ(left.status, 200) << left.body;
  shown = get_json(c, "/api/networks/train");
  EXPECT_EQ(shown["blocks"].size(), 1u);
  EXPECT_EQ(shown["quarantined"], 16);

  // kill -9: what was answered is kept.
  d.kill9();
  d.start();
  shown = get_json(c, "/api/networks/train");
  EXPECT_EQ(shown["blocks"], json::parse(R"([{"runner": "r1", "cidr": "172.20.0.32/28"}])"));
  EXPECT_EQ(shown["quarantined"], 16);
  EXPECT_EQ(block(c, "train", "r1").json()["created"], false);
  // r3 joins: r2's old block is quarantined and every other address is leased: nothing free.
  ASSERT_EQ(c.post("/api/networks/train/members/r3").status, 200);
  auto none = block(c, "train", "r3");
  EXPECT_EQ(none.status, 409) << none.body;
  EXPECT_NE(none.body.find("no free address block"), std::string::npos) << none.body;
}

}  // namespace
}  // namespace kohaku::test
