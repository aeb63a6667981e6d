// KohakuRiver's clients against kohaku-hostd: an upstream runner's registration and heartbeat
// bodies, the node fields its `node list` / `node summary` / `node health` read, the answers its
// `node overlay-release` and `ip-list` print, a full pool answered with `overlay: null`, and
// the setting that admits its runners, which send no token.
#include <gtest/gtest.h>

#include <algorithm>
#include <thread>

#include "host_api_helpers.h"
#include "hostd_process.h"

namespace kohaku::test {
namespace {

// What KohakuRiver's runner/app.py register_with_host() sends.
json upstream_register_body(const std::string& hostname, const std::string& ip) {
  json numa = json::object();
  numa["numa_nodes"] = json::array({json{{"id", 0}, {"cores", json::array({0, 1})}}});
  json gpu = json{{"gpu_id", 0}, {"name", "A100"}, {"memory_total_mib", 40960}};
  return json{{"hostname", hostname},  {"url", "http://" + ip + ":8001"},
              {"total_cores", 64},     {"total_ram_bytes", int64_t{549755813888}},
              {"numa_topology", numa}, {"gpu_info", json::array({gpu})}};
}

// What its heartbeat sends (models/requests.py HeartbeatRequest).
json upstream_heartbeat_body() {
  return {
      {"running_tasks", json::array({7})},
      {"killed_tasks", json::array()},
      {"cpu_percent", 12.5},
      {"memory_percent", 25.0},
      {"memory_used_bytes", int64_t{137438953472}},
      {"memory_total_bytes", int64_t{549755813888}},
      {"current_avg_temp", 41.0},
      {"current_max_temp", 55.5},
      {"gpu_info", json::array({json{{"gpu_id", 0}, {"name", "A100"}, {"gpu_utilization", 90}}})},
      {"vm_capable", false},
      {"vfio_gpus", nullptr},
      {"runner_version", "0.3.0"}};
}

class HostdUpstream : public ::testing::Test {
 protected:
  void SetUp() override { hostd_.start(); }
  Hostd hostd_;
  http::HttpClient c() const { return hostd_.client(); }
};

TEST_F(HostdUpstream, AnUpstreamRunnersRegistrationAndHeartbeatAreAcceptedAndShown) {
  auto reg = c().post("/api/register", upstream_register_body("gpu-01", "10.1.0.5"));
  ASSERT_EQ(reg.status, 200) << reg.body;
  // What its runner reads from the answer.
  EXPECT_EQ(reg.json()["overlay"]["runner_id"], 1);
  EXPECT_EQ(reg.json()["overlay"]["overlay_subnet"], "10.128.64.0/18");

  json n = get_json(c(), "/api/nodes").at(0);
  EXPECT_EQ(n["hostname"], "gpu-01");
  EXPECT_EQ(n["status"], "online");
  EXPECT_EQ(n["total_cores"], 64);
  EXPECT_EQ(n["cores_in_use"], 0);
  EXPECT_EQ(n["available_cores"], 64);
  EXPECT_EQ(n["gpu_info"][0]["name"], "A100");
  EXPECT_EQ(n["numa_topology"]["numa_nodes"][0]["id"], 0);
  // Before the first heartbeat the registration's RAM stands for the total.
  EXPECT_EQ(n["memory_total_bytes"], int64_t{549755813888});
  EXPECT_TRUE(n["memory_used_bytes"].is_null());
  EXPECT_TRUE(n["last_heartbeat"].is_string());

  auto hb = c().put("/api/heartbeat/gpu-01", upstream_heartbeat_body());
  ASSERT_EQ(hb.status, 200) << hb.body;
  EXPECT_EQ(hb.json()["message"], "Heartbeat received");
  n = get_json(c(), "/api/nodes").at(0);
  EXPECT_EQ(n["memory_used_bytes"], int64_t{137438953472});
  EXPECT_EQ(n["memory_total_bytes"], int64_t{549755813888});
  EXPECT_EQ(n["cpu_percent"], 12.5);
  EXPECT_EQ(n["memory_percent"], 25.0);
  EXPECT_EQ(n["current_max_temp"], 55.5);
  EXPECT_EQ(n["gpu_info"][0]["gpu_utilization"], 90) << "the heartbeat's GPU list wins";
  EXPECT_EQ(n["vm_capable"], false);
  EXPECT_EQ(n["vfio_gpus"], json::array());
  EXPECT_EQ(n["runner_version"], "0.3.0");
  EXPECT_EQ(n["runner_id"], 1);
  EXPECT_EQ(n["vxlan_device"], "vxkr1");
}

TEST_F(HostdUpstream, HealthHasUpstreamsShapeForAllNodesAndForOne) {
  ASSERT_EQ(c().post("/api/register", upstream_register_body("gpu-01", "10.1.0.5")).status, 200);
  ASSERT_EQ(c().post("/api/register", upstream_register_body("gpu-02", "10.1.0.6")).status, 200);
  ASSERT_EQ(c().put("/api/heartbeat/gpu-01", upstream_heartbeat_body()).status, 200);

  json h = get_json(c(), "/api/health");
  ASSERT_TRUE(h["nodes"].is_array() && h["aggregate"].is_array()) << h;
  ASSERT_EQ(h["nodes"].size(), 1u) << "one sample";
  ASSERT_EQ(h["nodes"][0].size(), 2u);
  const json& agg = h["aggregate"][0];
  EXPECT_EQ(agg["totalNodes"], 2);
  EXPECT_EQ(agg["onlineNodes"], 2);
  EXPECT_EQ(agg["totalCores"], 128);
  EXPECT_EQ(agg["usedMemBytes"], int64_t{137438953472});
  EXPECT_EQ(agg["totalMemBytes"], int64_t{2} * 549755813888);
  EXPECT_DOUBLE_EQ(agg["avgCpuPercent"].get<double>(), 6.25);  // weighted by cores
  EXPECT_EQ(agg["maxMaxCpuTemp"], 55.5);
  EXPECT_TRUE(agg["lastUpdated"].is_string());

  json one = get_json(c(), "/api/health?hostname=gpu-01");
  ASSERT_TRUE(one.is_array() && one.size() == 1u) << one;
  EXPECT_EQ(one[0]["hostname"], "gpu-01");
  EXPECT_EQ(one[0]["memory_used_bytes"], int64_t{137438953472});
  EXPECT_EQ(one[0]["total_cores"], 64);
  auto ghost = c().get("/api/health?hostname=ghost");
  EXPECT_EQ(ghost.status, 404);
  EXPECT_EQ(ghost.json()["detail"], "Node ghost not found in health data.");
}

TEST_F(HostdUpstream, StatusReleaseAndReservationListAsUpstreamsCliReadsThem) {
  register_runner(c(), "gpu-01", "10.1.0.5");
  json s = get_json(c(), "/api/overlay/status");
  EXPECT_EQ(s["host_ip"], "10.128.0.1/12");
  EXPECT_EQ(s["stats"]["host_ip"], "10.128.0.1/12");
  EXPECT_EQ(s["without_overlay"], json::array());

  // `node overlay-release ghost`: an answer it prints, not an error.
  auto rel = c().post("/api/overlay/release/ghost");
  ASSERT_EQ(rel.status, 200) << rel.body;
  EXPECT_EQ(rel.json(), (json{{"released", false}, {"reason", "No allocation found for ghost"}}));

  std::string pending = reserve_ip(c(), "gpu-01")["token"];
  std::string used = reserve_ip(c(), "gpu-01")["token"];
  ASSERT_EQ(c().post("/api/overlay/ip/use?token=" + used + "&container_id=c1").status, 200);
  // include_used defaults to true; tokens show their first 20 characters and "...".
  json all = get_json(c(), "/api/overlay/ip/reservations")["reservations"];
  ASSERT_EQ(all.size(), 2u) << all;
  for (const auto& r : all) {
    const std::string& full = r["is_used"].get<bool>() ? used : pending;
    EXPECT_EQ(r["token"], full.substr(0, 20) + "...");
  }
  EXPECT_EQ(get_json(c(), "/api/overlay/ip/reservations?include_used=false")["reservations"].size(),
            1u);
}

TEST(HostdUpstreamPool, AFullPoolRegistersWithoutOverlayAndSaysWhyUntilAnIdIsFree) {
  // 10.0.0.0/22/2/8: three runner ids.
  Hostd hostd({"OVERLAY_SUBNET=10.0.0.0/22/2/8", "HEARTBEAT_INTERVAL_SECONDS=1",
               "HEARTBEAT_TIMEOUT_FACTOR=2"});
  hostd.start();
  auto c = hostd.client();
  for (const char* h : {"a", "b", "c"})
    register_runner(c, h, std::string("10.1.0.") + (h[0] == 'a' ? "1" : h[0] == 'b' ? "2" : "3"));
  auto full = c.post("/api/register", upstream_register_body("d", "10.1.0.4"));
  ASSERT_EQ(full.status, 200) << "KohakuRiver registers it anyway: " << full.body;
  EXPECT_TRUE(full.json()["overlay"].is_null()) << full.body;
  EXPECT_NE(full.json()["overlay_reason"].get<std::string>().find("pool of 3"), std::string::npos);

  json s = get_json(c, "/api/overlay/status");
  ASSERT_EQ(s["without_overlay"].size(), 1u) << s;
  EXPECT_EQ(s["without_overlay"][0]["hostname"], "d");
  // ... and `kohakuctl node overlay` says so, with the reason.
  auto ctl = run_program({bin_path("kohakuctl"), "--host", hostd.url(), "node", "overlay"},
                         {{"KOHAKU_HOST", ""}, {"KOHAKU_TOKEN", ""}});
  EXPECT_EQ(ctl.exit_code, 0) << ctl.err;
  const auto listed = ctl.out.find("Runners without an overlay allocation");
  ASSERT_NE(listed, std::string::npos) << ctl.out;
  EXPECT_NE(ctl.out.find("pool of 3", listed), std::string::npos) << ctl.out;
  json nodes = get_json(c, "/api/nodes");
  auto d =
      std::find_if(nodes.begin(), nodes.end(), [](const json& n) { return n["hostname"] == "d"; });
  ASSERT_NE(d, nodes.end());
  EXPECT_TRUE((*d)["runner_id"].is_null());
  EXPECT_TRUE((*d)["overlay_reason"].is_string());

  // While every holder is active its heartbeats are answered, without an overlay.
  for (const char* h : {"a", "b", "c"})
    ASSERT_EQ(c.put(std::string("/api/heartbeat/") + h, json::object()).status, 200);
  auto hb = c.put("/api/heartbeat/d", json::object());
  ASSERT_EQ(hb.status, 200) << hb.body;
  EXPECT_TRUE(hb.json()["overlay"].is_null());

  // Once a holder is inactive (a and b stop), d is told to register again and gets an id.
  auto deadline = deadline_in(std::chrono::seconds(10));
  int status = 200;
  while (status == 200 && !past(deadline)) {
    c.put("/api/heartbeat/c", json::object());
    status = c.put("/api/heartbeat/d", json::object()).status;
    if (status == 200) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  ASSERT_EQ(status, 404) << "d was never told an id is free";
  auto again = c.post("/api/register", upstream_register_body("d", "10.1.0.4"));
  ASSERT_EQ(again.status, 200) << again.body;
  EXPECT_TRUE(again.json()["overlay"]["runner_id"].is_number()) << again.body;
}

TEST(HostdUpstreamAuth, RunnersWithoutATokenAreRefusedByDefault) {
  Hostd hostd;
  hostd.start();
  auto res = hostd.client("").post("/api/register", upstream_register_body("gpu-01", "10.1.0.5"));
  EXPECT_EQ(res.status, 401) << res.body;
  EXPECT_TRUE(res.json()["detail"].is_string());
}

TEST(HostdUpstreamAuth, AllowRunnersWithoutTokenOpensRegistrationAndHeartbeatOnly) {
  Hostd hostd({"ALLOW_RUNNERS_WITHOUT_TOKEN=True"});
  hostd.start();
  auto anonymous = hostd.client("");
  auto reg = anonymous.post("/api/register", upstream_register_body("gpu-01", "10.1.0.5"));
  ASSERT_EQ(reg.status, 200) << reg.body;
  EXPECT_EQ(anonymous.put("/api/heartbeat/gpu-01", upstream_heartbeat_body()).status, 200);
  // Everything else still wants the token.
  EXPECT_EQ(anonymous.post("/api/overlay/ip/reserve?runner=gpu-01").status, 401);
  EXPECT_EQ(anonymous.post("/api/overlay/cleanup").status, 401);
  EXPECT_EQ(anonymous.post("/api/overlay/release/gpu-01").status, 401);
  EXPECT_EQ(hostd.client().post("/api/overlay/ip/reserve?runner=gpu-01").status, 200);
  // And the runner credential still guards a registered hostname against a move.
  auto moved = anonymous.post("/api/register", upstream_register_body("gpu-01", "10.1.0.99"));
  EXPECT_EQ(moved.status, 403) << moved.body;
}

}  // namespace
}  // namespace kohaku::test
