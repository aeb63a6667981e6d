// The runner's wanted overlay state from a register answer, the drift decisions made against
// what the kernel reports, and the register body/answer handling.
#include <gtest/gtest.h>

#include <fstream>

#include "runner/overlay/host_link.h"
#include "runner/overlay/overlay_setup.h"
#include "support/temp_dir.h"

namespace kohaku::runner {
namespace {

using nlohmann::json;
namespace nl = kohaku::netlink;

json register_answer() {
  return json{{"message", "Runner 'r3' registered"},
              {"created", true},
              {"overlay",
               {{"runner_id", 3},
                {"overlay_subnet", "10.128.192.0/18"},
                {"overlay_gateway", "10.128.192.1"},
                {"host_overlay_ip", "10.128.0.1"},
                {"host_physical_ip", "192.168.1.10"},
                {"overlay_network_cidr", "10.128.0.0/12"},
                {"host_ip_on_runner_subnet", "10.128.192.254"},
                {"vxlan_id", 103},
                {"vxlan_port", 4789},
                {"mtu", 1450}}}};
}

RunnerConfig config() {
  RunnerConfig c;
  c.overlay_enabled = true;
  c.overlay_vxlan_id = 100;
  c.overlay_vxlan_port = 4789;
  c.overlay_mtu = 1450;
  c.runner_port = 8001;
  return c;
}

OverlayPlan plan() {
  return make_overlay_plan(parse_register_answer(register_answer()),
                           Ipv4Addr::parse("192.168.1.23"), 100, 4789, 1450);
}

nl::VxlanInfo matching_vxlan(const OverlayPlan& p) {
  nl::VxlanInfo v;
  v.link.name = "vxlan0";
  v.link.kind = "vxlan";
  v.link.mtu = 1450;
  v.link.admin_up = true;
  v.vni = p.vxlan.vni;
  v.local = p.vxlan.local;
  v.remote = p.vxlan.remote;
  v.port = p.vxlan.port;
  v.learning = false;
  return v;
}

TEST(RunnerOverlayPlan, FromRegisterAnswer) {
  const OverlayPlan p = plan();
  EXPECT_EQ(p.bridge, "kohaku-overlay");
  EXPECT_EQ(p.bridge_address.to_string(), "10.128.192.1/18");
  EXPECT_EQ(p.vxlan.name, "vxlan0");
  EXPECT_EQ(p.vxlan.vni, 103u);
  EXPECT_EQ(p.vxlan.local, Ipv4Addr::parse("192.168.1.23"));
  EXPECT_EQ(p.vxlan.remote, Ipv4Addr::parse("192.168.1.10"));
  EXPECT_FALSE(p.vxlan.learning);
  EXPECT_EQ(p.vxlan.mtu, 1450u);
  EXPECT_EQ(p.route.dst, Ipv4Cidr::parse("10.128.0.0/12"));
  EXPECT_EQ(p.route.gateway, Ipv4Addr::parse("10.128.192.254"));
  EXPECT_EQ(mac_to_string(p.bridge_mac), "02:6b:0a:80:c0:01");
}

TEST(RunnerOverlayDrift, MatchingDeviceHasNoDrift) {
  const OverlayPlan p = plan();
  EXPECT_TRUE(vxlan_drift(p.vxlan, matching_vxlan(p)).empty());
}

TEST(RunnerOverlayDrift, EveryAttributeIsReported) {
  const OverlayPlan p = plan();
  EXPECT_EQ(vxlan_drift(p.vxlan, std::nullopt), std::vector<std::string>{"missing"});
  struct Case {
    std::function<void(nl::VxlanInfo&)> change;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {[](auto& v) { v.vni = 999; }, "VNI 999, want 103"},
      {[](auto& v) { v.remote = Ipv4Addr::parse("192.168.1.99"); },
       "remote 192.168.1.99, want 192.168.1.10"},
      {[](auto& v) { v.local = Ipv4Addr::parse("192.168.1.50"); },
       "local 192.168.1.50, want 192.168.1.23"},
      {[](auto& v) { v.local.reset(); }, "local none, want 192.168.1.23"},
      {[](auto& v) { v.port = 8472; }, "port 8472, want 4789"},
      {[](auto& v) { v.link.mtu = 1500; }, "MTU 1500, want 1450"},
      {[](auto& v) { v.learning = true; }, "learning on, want off"},
      {[](auto& v) { v.link.admin_up = false; }, "down, want up"},
  };
  for (const auto& c : cases) {
    auto have = matching_vxlan(p);
    c.change(have);
    EXPECT_EQ(vxlan_drift(p.vxlan, have), std::vector<std::string>{c.expect});
  }
}

TEST(RunnerOverlayDrift, Bridge) {
  const OverlayPlan p = plan();
  nl::LinkInfo br;
  br.name = "kohaku-overlay";
  br.kind = "bridge";
  br.mtu = 1450;
  br.admin_up = true;
  EXPECT_TRUE(bridge_drift(p, br, {p.bridge_address}).empty());
  EXPECT_EQ(bridge_drift(p, std::nullopt, {}), std::vector<std::string>{"missing"});
  EXPECT_EQ(bridge_drift(p, br, {nl::IfAddr::parse("10.128.128.1/18")}),
            std::vector<std::string>{"address 10.128.192.1/18 missing"});
  br.mtu = 1500;
  br.admin_up = false;
  EXPECT_EQ(bridge_drift(p, br, {p.bridge_address}).size(), 2u);
}

TEST(RunnerHostLink, RegisterBodyCarriesVxlanSettingsAndUrl) {
  const json body = build_register_body(config(), "r3", Ipv4Addr::parse("192.168.1.23"));
  EXPECT_EQ(body["hostname"], "r3");
  EXPECT_EQ(body["url"], "http://192.168.1.23:8001");
  EXPECT_EQ(body["vxlan_id"], 100);
  EXPECT_EQ(body["vxlan_port"], 4789);
  EXPECT_EQ(body["mtu"], 1450);
}

TEST(RunnerHostLink, MemoryMetricsComeFromMeminfoAsKohakuRiverNamesThem) {
  test_support::TempDir dir;
  auto path = dir.path() / "meminfo";
  std::ofstream(path) << "MemTotal:       16384 kB\nMemFree:  1024 kB\nMemAvailable:    4096 kB\n";
  json m = memory_metrics(path.string());
  EXPECT_EQ(m["memory_total_bytes"], int64_t{16384} * 1024);
  EXPECT_EQ(m["memory_used_bytes"], int64_t{12288} * 1024);
  EXPECT_DOUBLE_EQ(m["memory_percent"].get<double>(), 75.0);
  EXPECT_TRUE(memory_metrics((dir.path() / "missing").string()).empty());
  json real = memory_metrics();
  ASSERT_TRUE(real.contains("memory_total_bytes")) << "this machine's /proc/meminfo";
  EXPECT_LE(real["memory_used_bytes"].get<int64_t>(), real["memory_total_bytes"].get<int64_t>());
}

TEST(RunnerHostLink, NoOverlayInTheAnswerIsARegistrationWithoutOverlay) {
  json answer = register_answer();
  EXPECT_FALSE(no_overlay_reason(answer));
  answer["overlay"] = nullptr;
  answer["overlay_reason"] = "overlay pool of 3 runner ids is full";
  EXPECT_EQ(no_overlay_reason(answer), "overlay pool of 3 runner ids is full");
  answer.erase("overlay");
  answer.erase("overlay_reason");  // a KohakuRiver host with its overlay off
  ASSERT_TRUE(no_overlay_reason(answer));
  EXPECT_NE(no_overlay_reason(answer)->find("OVERLAY_ENABLED"), std::string::npos);
}

TEST(RunnerHostLink, AnswerWithoutOverlayOrWithBadFieldsIsRejected) {
  json answer = register_answer();
  answer.erase("overlay");
  EXPECT_THROW(parse_register_answer(answer), std::invalid_argument);
  answer = register_answer();
  answer["overlay"]["host_physical_ip"] = "not-an-ip";
  EXPECT_THROW(parse_register_answer(answer), std::invalid_argument);
  answer = register_answer();
  answer["overlay"]["overlay_gateway"] = "10.200.0.1";  // outside the subnet
  EXPECT_THROW(parse_register_answer(answer), std::invalid_argument);
}

TEST(RunnerHostLink, ParameterMismatchNamesBothValues) {
  auto a = parse_register_answer(register_answer());
  EXPECT_EQ(parameter_mismatch(a, config()), "");
  auto c = config();
  c.overlay_vxlan_id = 200;
  const std::string m = parameter_mismatch(a, c);
  EXPECT_NE(m.find("103"), std::string::npos) << m;
  EXPECT_NE(m.find("203"), std::string::npos) << m;
  c = config();
  c.overlay_mtu = 1400;
  EXPECT_NE(parameter_mismatch(a, c).find("1400"), std::string::npos);
  a.vxlan_id.reset();
  a.vxlan_port.reset();
  a.mtu.reset();
  EXPECT_EQ(parameter_mismatch(a, c), "");  // a host that does not say cannot disagree
}

TEST(RunnerHostLink, BindIpWinsOverRouteLookup) {
  auto c = config();
  c.runner_bind_ip = Ipv4Addr::parse("192.168.1.77");
  c.host_address = "192.168.1.10";
  EXPECT_EQ(physical_ip(c), Ipv4Addr::parse("192.168.1.77"));
  c.runner_bind_ip = Ipv4Addr::parse("0.0.0.0");
  c.host_address = "127.0.0.1";
  EXPECT_EQ(physical_ip(c), Ipv4Addr::parse("127.0.0.1"));  // loopback route picks 127.0.0.1
}

}  // namespace
}  // namespace kohaku::runner
