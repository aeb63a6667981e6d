// Every route of kohaku-hostd's API on its happy path, with KohakuRiver's field names.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "host_api_helpers.h"
#include "hostd_process.h"
#include "support/default_overlay.h"

namespace kohaku::test {
namespace {

class HostdRoutes : public ::testing::Test {
 protected:
  void SetUp() override { hostd_.start(); }
  Hostd hostd_;
  http::HttpClient c() const { return hostd_.client(); }
};

TEST_F(HostdRoutes, Healthz) {
  auto res = c().get("/healthz");
  EXPECT_EQ(res.status, 200);
  EXPECT_EQ(res.json()["status"], "ok");
}

TEST_F(HostdRoutes, RegisterHandsOutTheOverlayLayout) {
  json j = register_runner(c(), "gpu-1", "10.1.0.5");
  EXPECT_EQ(j["created"], true);
  EXPECT_TRUE(j["message"].is_string());
  const json& o = j["overlay"];
  // Default OVERLAY_SUBNET 10.128.0.0/12/6/14: runner 1 owns 10.128.64.0/18.
  test_support::expect_default_runner1_overlay(o, "192.0.2.1");

  // Second runner gets the next id; the first keeps its id on reconnect, even from a new IP
  // when it presents the credential it was issued.
  EXPECT_EQ(register_runner(c(), "gpu-2", "10.1.0.6")["overlay"]["runner_id"], 2);
  ASSERT_TRUE(j["runner_credential"].is_string()) << j.dump();
  json again = register_runner(c(), "gpu-1", "10.1.0.99", json::object(),
                               j["runner_credential"].get<std::string>());
  EXPECT_EQ(again["created"], false);
  EXPECT_EQ(again["overlay"]["runner_id"], 1);
  EXPECT_EQ(again["overlay"]["overlay_subnet"], "10.128.64.0/18");
}

TEST(HostdRoutesClassic, ClassicLayout) {
  Hostd hostd({"OVERLAY_SUBNET=10.0.0.0/8/8/16"});
  hostd.start();
  json o = register_runner(hostd.client(), "r", "10.1.0.5")["overlay"];
  EXPECT_EQ(o["overlay_subnet"], "10.1.0.0/16");
  EXPECT_EQ(o["overlay_gateway"], "10.1.0.1");
  EXPECT_EQ(o["host_ip_on_runner_subnet"], "10.1.0.254");
  EXPECT_EQ(o["host_overlay_ip"], "10.0.0.1");
  EXPECT_EQ(o["overlay_network_cidr"], "10.0.0.0/8");
}

TEST_F(HostdRoutes, HeartbeatAndNodes) {
  register_runner(c(), "gpu-1", "10.1.0.5", {{"total_cores", 32}});
  auto hb = c().put("/api/heartbeat/gpu-1", json{{"running_tasks", json::array()}});
  EXPECT_EQ(hb.status, 200) << hb.body;
  auto unknown = c().put("/api/heartbeat/ghost", json::object());
  EXPECT_EQ(unknown.status, 404);
  EXPECT_TRUE(unknown.json()["error"].is_string());

  json nodes = get_json(c(), "/api/nodes");
  ASSERT_TRUE(nodes.is_array());
  ASSERT_EQ(nodes.size(), 1u);
  EXPECT_EQ(nodes[0]["hostname"], "gpu-1");
  EXPECT_EQ(nodes[0]["url"], "http://10.1.0.5:8001");
  EXPECT_EQ(nodes[0]["status"], "online");
  EXPECT_EQ(nodes[0]["total_cores"], 32);  // extra registration fields are kept
}

TEST_F(HostdRoutes, OverlayStatus) {
  register_runner(c(), "gpu-1", "10.1.0.5");
  json s = get_json(c(), "/api/overlay/status");
  EXPECT_EQ(s["enabled"], true);
  EXPECT_EQ(s["subnet_config"], "10.128.0.0/12/6/14");
  EXPECT_EQ(s["host_ip"], "10.128.0.1/12");  // with its prefix, as KohakuRiver shows it
  ASSERT_EQ(s["allocations"].size(), 1u);
  const json& a = s["allocations"][0];
  EXPECT_EQ(a["runner_name"], "gpu-1");
  EXPECT_EQ(a["runner_id"], 1);
  EXPECT_EQ(a["subnet"], "10.128.64.0/18");
  EXPECT_EQ(a["gateway"], "10.128.64.1");
  EXPECT_EQ(a["physical_ip"], "10.1.0.5");
  EXPECT_EQ(a["is_active"], true);
  EXPECT_TRUE(a["last_used"].is_string());
  EXPECT_EQ(a["vxlan_device"], "vxkr1");
  const json& st = s["stats"];
  EXPECT_EQ(st["total_allocations"], 1);
  EXPECT_EQ(st["active_allocations"], 1);
  EXPECT_EQ(st["inactive_allocations"], 0);
  EXPECT_EQ(st["available_ids"], 62);
  EXPECT_EQ(st["max_runners"], 63);
  EXPECT_EQ(st["subnet_config"], "10.128.0.0/12/6/14");
  EXPECT_EQ(st["overlay_network"], "10.128.0.0/12");
  EXPECT_EQ(st["host_ip"], "10.128.0.1/12");
  EXPECT_EQ(st["base_vxlan_id"], 100);
  EXPECT_EQ(st["vxlan_port"], 4789);
  EXPECT_EQ(st["mtu"], 1450);
}

TEST_F(HostdRoutes, ReservationLifecycle) {
  register_runner(c(), "gpu-1", "10.1.0.5");

  json r = reserve_ip(c(), "gpu-1", std::nullopt, "120");
  EXPECT_EQ(r["ip"], "10.128.64.2");  // first container address: subnet + 2
  EXPECT_EQ(r["runner"], "gpu-1");
  EXPECT_EQ(r["ttl_seconds"], 120);
  EXPECT_TRUE(r["expires_at"].is_string());
  std::string token = r["token"];
  EXPECT_GE(token.size(), 32u);  // >= 128 bits

  json chosen = reserve_ip(c(), "gpu-1", "10.128.64.77");
  EXPECT_EQ(chosen["ip"], "10.128.64.77");
  EXPECT_EQ(chosen["ttl_seconds"], 300);  // default ttl
  EXPECT_NE(chosen["token"], token);

  json list = get_json(c(), "/api/overlay/ip/reservations?runner=gpu-1");
  ASSERT_EQ(list["reservations"].size(), 2u);
  for (const auto& e : list["reservations"]) {
    for (const char* k :
         {"ip", "runner", "token", "created_at", "expires_at", "is_used", "container_id"})
      EXPECT_TRUE(e.contains(k)) << k;
    EXPECT_NE(e["token"], token);  // listed tokens are shortened
    EXPECT_EQ(e["is_used"], false);
  }

  json v = c().post(http::with_query("/api/overlay/ip/validate", {{"token", token}})).json();
  EXPECT_EQ(v["valid"], true);
  EXPECT_EQ(v["ip"], "10.128.64.2");
  EXPECT_EQ(v["runner"], "gpu-1");
  EXPECT_TRUE(v.contains("expires_at"));
  EXPECT_EQ(v["is_used"], false);
  json wrong_runner = c().post(http::with_query("/api/overlay/ip/validate",
                                                {{"token", token}, {"runner", "gpu-1"}}))
                          .json();
  EXPECT_EQ(wrong_runner["valid"], true);
  EXPECT_EQ(
      c().post(http::with_query("/api/overlay/ip/validate", {{"token", "nope"}})).json()["valid"],
      false);

  json info = get_json(c(), "/api/overlay/ip/info/gpu-1");
  EXPECT_EQ(info["runner_name"], "gpu-1");
  EXPECT_EQ(info["runner_id"], 1);
  EXPECT_EQ(info["subnet"], "10.128.64.0/18");
  EXPECT_EQ(info["gateway"], "10.128.64.1");
  EXPECT_EQ(info["ip_range"]["first"], "10.128.64.2");
  EXPECT_EQ(info["ip_range"]["last"], "10.128.127.254");
  EXPECT_EQ(info["reserved"], 2);
  EXPECT_EQ(info["used"], 0);
  EXPECT_EQ(info["total_ips"].get<int64_t>(), info["available"].get<int64_t>() +
                                                  info["reserved"].get<int64_t>() +
                                                  info["used"].get<int64_t>());

  // Reserved addresses are not offered.
  json avail = get_json(c(), "/api/overlay/ip/available?runner=gpu-1&limit=5");
  ASSERT_EQ(avail["available_ips"]["gpu-1"].size(), 5u);
  for (const auto& ip : avail["available_ips"]["gpu-1"]) {
    EXPECT_NE(ip, "10.128.64.2");
    EXPECT_NE(ip, "10.128.64.254");  // the host's own address on the runner subnet
  }
  EXPECT_EQ(avail["available_ips"]["gpu-1"][0], "10.128.64.3");

  // use: the reservation becomes a used IP.
  auto use = c().post(
      http::with_query("/api/overlay/ip/use", {{"token", token}, {"container_id", "c0ffee"}}));
  ASSERT_EQ(use.status, 200) << use.body;
  json stats = get_json(c(), "/api/overlay/ip/stats");
  EXPECT_EQ(stats["total_reservations"], 2);
  EXPECT_EQ(stats["pending_reservations"], 1);
  EXPECT_EQ(stats["in_use_reservations"], 1);
  EXPECT_EQ(stats["total_used_ips"], 1);
  EXPECT_EQ(stats["runners_with_used_ips"], 1);
  info = get_json(c(), "/api/overlay/ip/info/gpu-1");
  EXPECT_EQ(info["used"], 1);
  EXPECT_EQ(info["reserved"], 1);

  // An in-use reservation cannot be released by token (409); the pending one can.
  auto in_use = c().post(http::with_query("/api/overlay/ip/release", {{"token", token}}));
  EXPECT_EQ(in_use.status, 409) << in_use.body;
  auto rel = c().post(http::with_query("/api/overlay/ip/release", {{"token", chosen["token"]}}));
  EXPECT_EQ(rel.status, 200) << rel.body;
  EXPECT_EQ(
      c().post(http::with_query("/api/overlay/ip/release", {{"token", chosen["token"]}})).status,
      404);
  // include_used=false hides used entries; the default (true, as KohakuRiver) shows them.
  EXPECT_EQ(get_json(c(), "/api/overlay/ip/reservations?include_used=false")["reservations"].size(),
            0u);
  json all = get_json(c(), "/api/overlay/ip/reservations");
  ASSERT_EQ(all["reservations"].size(), 1u);
  EXPECT_EQ(all["reservations"][0]["is_used"], true);
  EXPECT_EQ(all["reservations"][0]["container_id"], "c0ffee");
}

TEST(HostdRoutesTimed, ReleaseAndCleanupOfInactiveRunners) {
  // One missed 1 s heartbeat makes a runner inactive.
  Hostd hostd({"HEARTBEAT_INTERVAL_SECONDS=1", "HEARTBEAT_TIMEOUT_FACTOR=1"});
  hostd.start();
  auto c = hostd.client();
  register_runner(c, "a", "10.1.0.1");
  register_runner(c, "b", "10.1.0.2");
  register_runner(c, "c", "10.1.0.3");

  auto d = deadline_in(std::chrono::seconds(10));
  while (!past(d) && get_json(c, "/api/overlay/status")["stats"]["inactive_allocations"] != 3)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  ASSERT_EQ(get_json(c, "/api/overlay/status")["stats"]["inactive_allocations"], 3);

  auto rel = c.post("/api/overlay/release/b");
  ASSERT_EQ(rel.status, 200) << rel.body;
  EXPECT_EQ(rel.json()["released"], true);
  EXPECT_EQ(rel.json()["runner_name"], "b");
  // By placeholder-style name too.
  auto by_id = c.post("/api/overlay/release/runner_1");
  EXPECT_EQ(by_id.status, 200) << by_id.body;
  EXPECT_EQ(by_id.json()["runner_name"], "a");
  auto again = c.post("/api/overlay/release/b");  // nothing left: an answer, as KohakuRiver
  EXPECT_EQ(again.status, 200) << again.body;
  EXPECT_EQ(again.json()["released"], false);

  auto cleaned = c.post("/api/overlay/cleanup");
  ASSERT_EQ(cleaned.status, 200) << cleaned.body;
  EXPECT_EQ(cleaned.json()["cleaned_count"], 1);
  EXPECT_EQ(get_json(c, "/api/overlay/status")["allocations"].size(), 0u);
}

TEST_F(HostdRoutes, ActiveRunnerIsNotReleased) {
  register_runner(c(), "gpu-1", "10.1.0.5");
  auto res = c().post("/api/overlay/release/gpu-1");
  EXPECT_EQ(res.status, 409) << res.body;
  EXPECT_EQ(get_json(c(), "/api/overlay/status")["allocations"].size(), 1u);
  EXPECT_EQ(c().post("/api/overlay/cleanup").json()["cleaned_count"], 0);
}

}  // namespace
}  // namespace kohaku::test
