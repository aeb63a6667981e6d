// Bridges, ports and veth pairs across namespaces, with real packets.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>

#include "common/netlink/address.h"
#include "common/netlink/bridge_link.h"
#include "common/netlink/route.h"
#include "common/netlink/veth_link.h"
#include "netlink_test_helpers.h"

namespace kohaku::netlink {
namespace {

using BridgeVethTest = testing::NetnsTest;

TEST_F(BridgeVethTest, EnsureBridgeCreatesKeepsRepairsAndRecreates) {
  EXPECT_EQ(ensure_bridge("kt-br0", 1450), EnsureAction::kCreated);
  LinkInfo l = get_link("kt-br0");
  EXPECT_EQ(l.kind, "bridge");
  EXPECT_EQ(l.mtu, 1450u);
  EXPECT_TRUE(l.admin_up);
  EXPECT_EQ(ensure_bridge("kt-br0", 1450), EnsureAction::kKept);

  set_link_mtu("kt-br0", 1400);
  set_link_up("kt-br0", false);
  EXPECT_EQ(ensure_bridge("kt-br0", 1450), EnsureAction::kRepaired);
  EXPECT_EQ(get_link("kt-br0").ifindex, l.ifindex);
  EXPECT_EQ(get_link("kt-br0").mtu, 1450u);
  EXPECT_TRUE(get_link("kt-br0").admin_up);

  create_veth({.name = "kt-br1", .peer_name = "kt-x1"});
  EXPECT_EQ(ensure_bridge("kt-br1", 1500), EnsureAction::kRecreated);
  EXPECT_EQ(get_link("kt-br1").kind, "bridge");
  EXPECT_FALSE(link_exists("kt-x1"));  // deleting one veth end removed the pair
}

TEST_F(BridgeVethTest, EnslavesPortsAndListsThem) {
  ensure_bridge("kt-br0", 1500);
  ensure_bridge("kt-br1", 1500);
  create_veth({.name = "kt-p0", .peer_name = "kt-q0"});
  create_veth({.name = "kt-p1", .peer_name = "kt-q1"});
  EXPECT_EQ(ensure_bridge_port("kt-br0", "kt-p0"), EnsureAction::kCreated);
  EXPECT_EQ(ensure_bridge_port("kt-br0", "kt-p0"), EnsureAction::kKept);
  EXPECT_EQ(ensure_bridge_port("kt-br0", "kt-p1"), EnsureAction::kCreated);
  auto ports = bridge_ports("kt-br0");
  std::sort(ports.begin(), ports.end());
  EXPECT_EQ(ports, (std::vector<std::string>{"kt-p0", "kt-p1"}));
  EXPECT_EQ(get_link("kt-p0").master_ifindex, get_link("kt-br0").ifindex);
  // A port on the wrong bridge is moved.
  EXPECT_EQ(ensure_bridge_port("kt-br1", "kt-p1"), EnsureAction::kRepaired);
  EXPECT_EQ(bridge_ports("kt-br1"), std::vector<std::string>{"kt-p1"});
  EXPECT_THROW(ensure_bridge_port("kt-p0", "kt-q0"), NetlinkError);  // not a bridge
  EXPECT_THROW(ensure_bridge_port("kt-br0", "kt-none"), NetlinkError);
}

// The Runner's workload attachment in miniature: veth peer created inside the workload
// namespace (named eth0 there), host end in a bridge holding the gateway, default route in the
// workload via the gateway; packets must cross it both as ICMP and UDP.
TEST_F(BridgeVethTest, VethPeerInOtherNamespaceCarriesPacketsThroughBridge) {
  Netns workload = Netns::create();
  ensure_bridge("kt-br0", 1450);
  ensure_address("kt-br0", IfAddr::parse("10.20.0.1/24"));
  create_veth({.name = "kt-w0", .peer_name = "eth0", .peer_netns_fd = workload.fd(), .mtu = 1450});
  EXPECT_FALSE(link_exists("eth0"));
  ensure_bridge_port("kt-br0", "kt-w0");
  EXPECT_TRUE(get_link("kt-w0").admin_up);
  run_in_netns(workload, [] {
    set_link_up("lo");
    LinkInfo eth0 = get_link("eth0");
    EXPECT_EQ(eth0.kind, "veth");
    EXPECT_EQ(eth0.mtu, 1450u);
    set_link_up("eth0");
    add_address("eth0", IfAddr::parse("10.20.0.5/24"));
    add_route({.dst = Ipv4Cidr::parse("0.0.0.0/0"), .gateway = Ipv4Addr::parse("10.20.0.1")});
  });
  EXPECT_TRUE(testing::ping(Ipv4Addr::parse("10.20.0.5")));
  EXPECT_EQ(testing::udp_exchange(workload, Ipv4Addr::parse("10.20.0.5"), "hello"), "hello");
  // Reverse direction, through the default route, to an address that is not on the bridge.
  ensure_bridge("kt-far", 1500);
  ensure_address("kt-far", IfAddr::parse("10.30.0.1/24"));
  EXPECT_TRUE(testing::ping(Ipv4Addr::parse("10.30.0.1"), &workload));
}

TEST_F(BridgeVethTest, VethPeerIntoNamespaceOfPid) {
  int ready[2];
  ASSERT_EQ(::pipe(ready), 0);
  pid_t child = ::fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    char ok = ::unshare(CLONE_NEWNET) == 0 ? '1' : '0';
    (void)!::write(ready[1], &ok, 1);
    ::pause();
    ::_exit(0);
  }
  ::close(ready[1]);
  struct Reaper {
    pid_t pid;
    ~Reaper() {
      ::kill(pid, SIGKILL);
      ::waitpid(pid, nullptr, 0);
    }
  } reaper{child};
  char ok = 0;
  ASSERT_EQ(::read(ready[0], &ok, 1), 1);
  ::close(ready[0]);
  ASSERT_EQ(ok, '1');

  create_veth({.name = "kt-v0", .peer_name = "kt-inpid", .peer_netns_pid = child});
  EXPECT_FALSE(link_exists("kt-inpid"));
  Netns theirs = Netns::of_pid(child);
  EXPECT_TRUE(run_in_netns(theirs, [] { return link_exists("kt-inpid"); }));
}

TEST_F(BridgeVethTest, VethErrorsNameBothEnds) {
  create_veth({.name = "kt-v0", .peer_name = "kt-v1"});
  try {
    create_veth({.name = "kt-v0", .peer_name = "kt-v2"});
    FAIL();
  } catch (const NetlinkError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("create veth kt-v0 peer kt-v2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("File exists"), std::string::npos) << msg;
  }
  EXPECT_FALSE(link_exists("kt-v2"));
}

}  // namespace
}  // namespace kohaku::netlink
