// kohaku-runnerd's kernel side in a fresh namespace: the overlay devices it builds, drift it
// repairs, and workloads attached through real veth pairs (pinged, persisted, detached, and
// dropped when their namespace dies).
#include <unistd.h>

#include <filesystem>

#include "common/domain_error.h"
#include "common/netlink/address.h"
#include "common/netlink/route.h"
#include "common/netlink/sysctl.h"
#include "common/netlink/vxlan_link.h"
#include "netlink_test_helpers.h"
#include "runner/api/attach_request_json.h"
#include "runner/overlay/host_api.h"
#include "runner/overlay/overlay_setup.h"
#include "runner/workloads/workload_manager.h"

namespace kohaku::runner {
namespace {

namespace nl = kohaku::netlink;
namespace fs = std::filesystem;
using nl::testing::in_ns;
using nl::testing::run_cmd;
using nlohmann::json;

class RunnerOverlayTest : public nl::testing::NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    // The "physical" uplink the tunnel runs over.
    ASSERT_EQ(run_cmd("ip link add up0 type veth peer name up1").status, 0);
    ASSERT_EQ(run_cmd("ip addr add 192.0.2.11/24 dev up0 && ip link set up0 up && ip link set "
                      "up1 up")
                  .status,
              0);
    OverlayAssignment a;
    a.runner_id = 3;
    a.subnet = Ipv4Cidr::parse("10.128.192.0/18");
    a.gateway = Ipv4Addr::parse("10.128.192.1");
    a.host_overlay_ip = Ipv4Addr::parse("10.128.0.1");
    a.host_physical_ip = Ipv4Addr::parse("192.0.2.1");
    a.network = Ipv4Cidr::parse("10.128.0.0/12");
    a.host_on_subnet = Ipv4Addr::parse("10.128.192.254");
    plan_ = make_overlay_plan(a, Ipv4Addr::parse("192.0.2.11"), 100, 4789, 1450);
    char tmpl[] = "/tmp/runner-overlay-test-XXXXXX";
    dir_ = ::mkdtemp(tmpl);
  }
  void TearDown() override {
    fs::remove_all(dir_);
    NetnsTest::TearDown();
  }

  void expect_overlay_as_planned() {
    const auto vx = nl::find_vxlan("vxlan0");
    ASSERT_TRUE(vx);
    EXPECT_TRUE(vxlan_drift(plan_.vxlan, vx).empty());
    const auto br = nl::find_link("kohaku-overlay");
    ASSERT_TRUE(br);
    EXPECT_EQ(vx->link.master_ifindex, br->ifindex);
    EXPECT_TRUE(bridge_drift(plan_, br, nl::list_addresses("kohaku-overlay")).empty());
    const auto route = nl::find_route(plan_.route.dst);
    ASSERT_TRUE(route);
    EXPECT_EQ(route->gateway, Ipv4Addr::parse("10.128.192.254"));
    EXPECT_EQ(nl::read_sysctl("net.ipv4.ip_forward"), "1");
    EXPECT_NE(run_cmd("ip link show kohaku-overlay").out.find("02:6b:0a:80:c0:01"),
              std::string::npos);
  }

  OverlayPlan plan_;
  fs::path dir_;
};

TEST_F(RunnerOverlayTest, ApplyBuildsTheOverlayAndIsIdempotent) {
  ApplyResult first = apply_overlay(plan_);
  EXPECT_TRUE(first.changed);
  expect_overlay_as_planned();
  const json ip = nl::testing::ip_link_json("vxlan0");
  ASSERT_FALSE(ip.is_null());
  EXPECT_EQ(ip["linkinfo"]["info_data"]["id"], 103);
  EXPECT_EQ(ip["linkinfo"]["info_data"]["remote"], "192.0.2.1");
  EXPECT_EQ(ip["linkinfo"]["info_data"]["local"], "192.0.2.11");
  EXPECT_FALSE(ip["linkinfo"]["info_data"]["learning"].get<bool>());

  ApplyResult second = apply_overlay(plan_);
  EXPECT_FALSE(second.changed) << (second.repairs.empty() ? "" : second.repairs.front());
}

TEST_F(RunnerOverlayTest, EveryKindOfDriftIsRepaired) {
  apply_overlay(plan_);
  const std::vector<std::string> breakages = {
      "ip link del vxlan0",
      "ip link set vxlan0 type vxlan remote 192.0.2.99",
      "ip link set vxlan0 mtu 1400",
      "ip link del vxlan0 && ip link add vxlan0 type vxlan id 999 remote 192.0.2.1 local "
      "192.0.2.11 dstport 4789 nolearning",
      "ip link del vxlan0 && ip link add vxlan0 type vxlan id 103 remote 192.0.2.1 local "
      "192.0.2.12 dstport 4789 nolearning",
      "ip link set vxlan0 nomaster",
      "ip addr flush dev kohaku-overlay",
      "ip route del 10.128.0.0/12",
      "ip link del kohaku-overlay",
      "ip link set kohaku-overlay address 02:00:00:00:00:01",
      "sysctl -qw net.ipv4.ip_forward=0",
  };
  for (const auto& breakage : breakages) {
    SCOPED_TRACE(breakage);
    ASSERT_EQ(run_cmd(breakage).status, 0) << run_cmd(breakage).out;
    ApplyResult r = apply_overlay(plan_);
    EXPECT_TRUE(r.changed);
    expect_overlay_as_planned();
    EXPECT_FALSE(apply_overlay(plan_).changed);
  }
}

TEST_F(RunnerOverlayTest, ObserveReportsDevicesAndDrift) {
  apply_overlay(plan_);
  json seen = observe_overlay(plan_);
  EXPECT_EQ(seen["vxlan"]["vni"], 103);
  EXPECT_EQ(seen["vxlan"]["remote"], "192.0.2.1");
  EXPECT_TRUE(seen["vxlan"]["enslaved"].get<bool>());
  EXPECT_TRUE(seen["vxlan"]["drift"].empty());
  EXPECT_TRUE(seen["route"]["present"].get<bool>());
  ASSERT_EQ(run_cmd("ip link set vxlan0 mtu 1400").status, 0);
  seen = observe_overlay(plan_);
  EXPECT_EQ(seen["vxlan"]["drift"], json::array({"MTU 1400, want 1450"}));
}

// The default network needs no host: the runner allocates, so the whole workload life cycle
// runs here for real.
TEST_F(RunnerOverlayTest, WorkloadLifeCycleOnTheDefaultNetwork) {
  const auto plan = make_default_plan("kohakuriver-net", Ipv4Cidr::parse("172.30.0.0/16"),
                                      Ipv4Addr::parse("172.30.0.1"));
  apply_default_network(plan);
  const fs::path state = dir_ / "workloads.json";
  const AttachNetwork net{.kind = "default",
                          .bridge = plan.bridge,
                          .subnet = Ipv4Cidr::parse("172.30.0.0/16"),
                          .gateway = Ipv4Addr::parse("172.30.0.1"),
                          .mtu = 1500,
                          .host_managed = false};
  auto ns_path = [](const nl::Netns& ns) {
    return "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(ns.fd());
  };

  auto w1 = std::make_unique<nl::Netns>(nl::Netns::create());
  auto w2 = std::make_unique<nl::Netns>(nl::Netns::create());
  std::string id1, id2;
  {
    WorkloadManager m(state, "r3", "kohakuriver-net", nullptr);
    EXPECT_THROW(m.attach(attach_request_from_json(json{{"netns", ns_path(*w1)}})),
                 DomainError);  // no network yet: 503
    m.set_network(net);
    json a = m.attach(attach_request_from_json(json{{"netns", ns_path(*w1)}, {"name", "one"}}));
    json b =
        m.attach(attach_request_from_json(json{{"netns", ns_path(*w2)}, {"interface", "net0"}}));
    EXPECT_EQ(a["ip"], "172.30.0.2");
    EXPECT_EQ(b["ip"], "172.30.0.3");
    EXPECT_EQ(b["interface"], "net0");
    id1 = a["id"];
    id2 = b["id"];
    try {
      m.attach(attach_request_from_json(json{{"netns", ns_path(*w1)}}));
      ADD_FAILURE() << "second attach of the same namespace accepted";
    } catch (const DomainError& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kConflict);
    }
  }
  // Real packets: workload -> gateway, and workload -> workload across the bridge.
  EXPECT_TRUE(nl::testing::ping(Ipv4Addr::parse("172.30.0.1"), w1.get()));
  EXPECT_TRUE(nl::testing::ping(Ipv4Addr::parse("172.30.0.3"), w1.get()));
  EXPECT_NE(run_cmd(in_ns(w1.get()) + "ip route show default").out.find("via 172.30.0.1"),
            std::string::npos);

  // A new manager (a restarted runner) knows both; detach removes the veth in both namespaces.
  WorkloadManager m(state, "r3", "kohakuriver-net", nullptr);
  m.set_network(net);
  ASSERT_EQ(m.list().size(), 2u);
  m.detach(id1);
  EXPECT_FALSE(nl::link_exists(host_veth_name(id1)));
  EXPECT_NE(run_cmd(in_ns(w1.get()) + "ip link show eth0").status, 0);
  try {
    m.detach(id1);
    ADD_FAILURE() << "second detach accepted";
  } catch (const DomainError& e) {
    EXPECT_EQ(e.kind(), ErrorKind::kNotFound);
  }

  // Its namespace dies: the kernel removes the veth, and repair() forgets the workload.
  w2.reset();
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (m.count() != 0 && std::chrono::steady_clock::now() < until) {
    m.repair();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
  EXPECT_EQ(m.count(), 0u);
  EXPECT_TRUE(WorkloadStore(state).load().empty());
}

TEST_F(RunnerOverlayTest, RepairPutsAWorkloadBackOnItsBridge) {
  const auto plan = make_default_plan("kohakuriver-net", Ipv4Cidr::parse("172.30.0.0/16"),
                                      Ipv4Addr::parse("172.30.0.1"));
  apply_default_network(plan);
  WorkloadManager m(dir_ / "workloads.json", "r3", "kohakuriver-net", nullptr);
  m.set_network(AttachNetwork{.kind = "default",
                              .bridge = plan.bridge,
                              .subnet = Ipv4Cidr::parse("172.30.0.0/16"),
                              .gateway = Ipv4Addr::parse("172.30.0.1"),
                              .mtu = 1500});
  nl::Netns w = nl::Netns::create();
  json a = m.attach(attach_request_from_json(
      json{{"netns", "/proc/" + std::to_string(::getpid()) + "/fd/" + std::to_string(w.fd())}}));
  const std::string veth = a["host_veth"];
  ASSERT_EQ(run_cmd("ip link set " + veth + " nomaster && ip link set " + veth + " down").status,
            0);
  EXPECT_FALSE(nl::testing::ping(Ipv4Addr::parse("172.30.0.1"), &w, std::chrono::seconds(1)));
  m.repair();
  EXPECT_EQ(nl::get_link(veth).master_ifindex, nl::get_link(plan.bridge).ifindex);
  EXPECT_TRUE(nl::testing::ping(Ipv4Addr::parse("172.30.0.1"), &w));
}

}  // namespace
}  // namespace kohaku::runner
