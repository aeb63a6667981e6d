// Addresses, routes and sysctls against the real kernel.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/netlink/address.h"
#include "common/netlink/bridge_link.h"
#include "common/netlink/route.h"
#include "common/netlink/sysctl.h"
#include "common/netlink/veth_link.h"
#include "netlink_test_helpers.h"

namespace kohaku::netlink {
namespace {

using AddrRouteTest = testing::NetnsTest;

std::vector<IfAddr> sorted(std::vector<IfAddr> v) {
  std::sort(v.begin(), v.end());
  return v;
}

TEST(IfAddrParse, StrictText) {
  EXPECT_EQ(IfAddr::parse("10.1.0.254/16").to_string(), "10.1.0.254/16");
  EXPECT_FALSE(IfAddr::try_parse("10.1.0.254"));
  EXPECT_FALSE(IfAddr::try_parse("10.1.0.254/33"));
  EXPECT_FALSE(IfAddr::try_parse("10.1.0.254/"));
  EXPECT_FALSE(IfAddr::try_parse("10.1.0.254/08"));
  EXPECT_FALSE(IfAddr::try_parse("10.1.0/8"));
  EXPECT_THROW(IfAddr::parse("x/8"), std::invalid_argument);
}

TEST_F(AddrRouteTest, AddListDeleteAddresses) {
  ensure_bridge("kt-br0", 1500);
  add_address("kt-br0", IfAddr::parse("10.1.0.1/24"));
  add_address("kt-br0", IfAddr::parse("10.2.0.1/16"));
  EXPECT_EQ(sorted(list_addresses("kt-br0")),
            (std::vector<IfAddr>{IfAddr::parse("10.1.0.1/24"), IfAddr::parse("10.2.0.1/16")}));
  try {
    add_address("kt-br0", IfAddr::parse("10.1.0.1/24"));
    FAIL();
  } catch (const NetlinkError& e) {
    // The kernel's extended-ack text, when it sends one, follows the errno text.
    EXPECT_TRUE(std::string(e.what()).starts_with("add address 10.1.0.1/24 on kt-br0: File exists"))
        << e.what();
  }
  delete_address("kt-br0", IfAddr::parse("10.2.0.1/16"));
  EXPECT_EQ(list_addresses("kt-br0"), std::vector<IfAddr>{IfAddr::parse("10.1.0.1/24")});
  EXPECT_THROW(delete_address("kt-br0", IfAddr::parse("10.9.0.1/24")), NetlinkError);
  try {
    add_address("kt-none", IfAddr::parse("10.1.0.1/24"));
    FAIL();
  } catch (const NetlinkError& e) {
    EXPECT_EQ(std::string(e.what()), "add address 10.1.0.1/24 on kt-none: No such device");
  }
}

TEST_F(AddrRouteTest, EnsureAddressLeavesExactlyOne) {
  ensure_bridge("kt-br0", 1500);
  IfAddr want = IfAddr::parse("10.1.0.254/16");
  EXPECT_EQ(ensure_address("kt-br0", want), EnsureAction::kCreated);
  EXPECT_EQ(ensure_address("kt-br0", want), EnsureAction::kKept);
  // Strays: another address, the same address with another prefix, a secondary in its subnet.
  add_address("kt-br0", IfAddr::parse("10.7.0.1/24"));
  add_address("kt-br0", IfAddr::parse("10.1.0.254/24"));
  add_address("kt-br0", IfAddr::parse("10.1.0.9/16"));
  EXPECT_EQ(ensure_address("kt-br0", want), EnsureAction::kRepaired);
  EXPECT_EQ(list_addresses("kt-br0"), std::vector<IfAddr>{want});
  EXPECT_EQ(ensure_address("kt-br0", want), EnsureAction::kKept);
}

TEST_F(AddrRouteTest, EnsureAddressSurvivesLosingItsPrimary) {
  // The wanted address is a secondary behind a stray primary of the same subnet: deleting the
  // primary takes the secondary with it, and ensure must notice and put it back.
  ensure_bridge("kt-br0", 1500);
  add_address("kt-br0", IfAddr::parse("10.1.0.1/16"));
  add_address("kt-br0", IfAddr::parse("10.1.0.254/16"));
  write_sysctl(ipv4_conf_key("kt-br0", "promote_secondaries"), "0");
  EXPECT_EQ(ensure_address("kt-br0", IfAddr::parse("10.1.0.254/16")), EnsureAction::kRepaired);
  EXPECT_EQ(list_addresses("kt-br0"), std::vector<IfAddr>{IfAddr::parse("10.1.0.254/16")});
  EXPECT_TRUE(testing::ping(Ipv4Addr::parse("10.1.0.254")));
}

class RouteTest : public AddrRouteTest {
 protected:
  void SetUp() override {
    AddrRouteTest::SetUp();
    create_veth({.name = "kt-r0", .peer_name = "kt-r1"});
    set_link_up("kt-r1");
    add_address("kt-r0", IfAddr::parse("10.50.0.1/24"));
    add_address("kt-r1", IfAddr::parse("10.51.0.1/24"));
  }
};

TEST_F(RouteTest, AddFindReplaceDelete) {
  RouteSpec r{.dst = Ipv4Cidr::parse("10.60.0.0/16"), .gateway = Ipv4Addr::parse("10.50.0.2")};
  add_route(r);
  auto got = find_route(r.dst);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->gateway, Ipv4Addr::parse("10.50.0.2"));
  EXPECT_EQ(got->dev, "kt-r0");
  EXPECT_EQ(got->protocol, RTPROT_STATIC);
  // iproute2 agrees.
  auto out = testing::run_cmd("ip -4 route show 10.60.0.0/16").out;
  EXPECT_NE(out.find("10.60.0.0/16 via 10.50.0.2 dev kt-r0"), std::string::npos) << out;

  try {
    add_route(r);
    FAIL();
  } catch (const NetlinkError& e) {
    EXPECT_EQ(std::string(e.what()), "add route 10.60.0.0/16 via 10.50.0.2: File exists");
  }
  RouteSpec moved{.dst = r.dst, .gateway = Ipv4Addr::parse("10.51.0.2"), .dev = "kt-r1"};
  replace_route(moved);
  got = find_route(r.dst);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->gateway, Ipv4Addr::parse("10.51.0.2"));
  EXPECT_EQ(got->dev, "kt-r1");
  auto all = list_routes();
  EXPECT_EQ(
      std::count_if(all.begin(), all.end(), [&](const RouteInfo& i) { return i.dst == r.dst; }), 1);
  delete_route(moved);
  EXPECT_FALSE(find_route(r.dst));
  EXPECT_THROW(delete_route(moved), NetlinkError);
}

TEST_F(RouteTest, GatewayOffLinkIsRefusedWithReason) {
  try {
    add_route({.dst = Ipv4Cidr::parse("10.60.0.0/16"), .gateway = Ipv4Addr::parse("10.99.0.1")});
    FAIL();
  } catch (const NetlinkError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("add route 10.60.0.0/16 via 10.99.0.1: "), std::string::npos) << msg;
    EXPECT_NE(e.sys_errno(), 0) << msg;
  }
  EXPECT_FALSE(find_route(Ipv4Cidr::parse("10.60.0.0/16")));
  EXPECT_THROW(add_route({.dst = Ipv4Cidr::parse("10.60.0.0/16")}), std::invalid_argument);
}

TEST_F(RouteTest, DeviceRouteAndDefaultRoute) {
  add_route({.dst = Ipv4Cidr::parse("10.70.0.0/16"), .dev = "kt-r0"});
  auto dev_route = find_route(Ipv4Cidr::parse("10.70.0.0/16"));
  ASSERT_TRUE(dev_route);
  EXPECT_FALSE(dev_route->gateway);
  EXPECT_EQ(dev_route->dev, "kt-r0");
  EXPECT_EQ(dev_route->scope, RT_SCOPE_LINK);

  RouteSpec def{.dst = Ipv4Cidr::parse("0.0.0.0/0"), .gateway = Ipv4Addr::parse("10.50.0.254")};
  EXPECT_EQ(ensure_route(def), EnsureAction::kCreated);
  auto got = find_route(def.dst);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->dst.prefix, 0);
  EXPECT_EQ(got->gateway, Ipv4Addr::parse("10.50.0.254"));
  EXPECT_NE(testing::run_cmd("ip -4 route show default").out.find("default via 10.50.0.254"),
            std::string::npos);
}

TEST_F(RouteTest, EnsureRouteKeepsAndRepairs) {
  RouteSpec r{.dst = Ipv4Cidr::parse("10.128.0.0/12"), .gateway = Ipv4Addr::parse("10.50.0.254")};
  EXPECT_EQ(ensure_route(r), EnsureAction::kCreated);
  EXPECT_EQ(ensure_route(r), EnsureAction::kKept);
  r.gateway = Ipv4Addr::parse("10.51.0.254");
  EXPECT_EQ(ensure_route(r), EnsureAction::kRepaired);
  EXPECT_EQ(find_route(r.dst)->gateway, r.gateway);
  EXPECT_EQ(find_route(r.dst)->dev, "kt-r1");
  r.dev = "kt-r1";
  EXPECT_EQ(ensure_route(r), EnsureAction::kKept);
  // A different metric is a different route.
  RouteSpec backup = r;
  backup.metric = 100;
  backup.gateway = Ipv4Addr::parse("10.50.0.254");
  backup.dev.clear();
  EXPECT_EQ(ensure_route(backup), EnsureAction::kCreated);
  EXPECT_EQ(find_route(r.dst, RT_TABLE_MAIN, 100)->gateway, backup.gateway);
  EXPECT_EQ(find_route(r.dst)->gateway, r.gateway);
}

TEST_F(RouteTest, ForeignRoutesAreDeletedAndReplaced) {
  // Added by iproute2 (protocol "boot") and a blackhole under the same key as ours.
  ASSERT_EQ(testing::run_cmd("ip route add 10.61.0.0/16 via 10.50.0.7").status, 0);
  RouteSpec r{.dst = Ipv4Cidr::parse("10.61.0.0/16"), .gateway = Ipv4Addr::parse("10.50.0.7")};
  delete_route(r);
  EXPECT_FALSE(find_route(r.dst));
  ASSERT_EQ(testing::run_cmd("ip route add blackhole 10.62.0.0/16").status, 0);
  r.dst = Ipv4Cidr::parse("10.62.0.0/16");
  EXPECT_EQ(ensure_route(r), EnsureAction::kCreated);
  auto got = find_route(r.dst);
  ASSERT_TRUE(got);
  EXPECT_EQ(got->gateway, r.gateway);
  EXPECT_EQ(testing::run_cmd("ip route show 10.62.0.0/16").out.find("blackhole"),
            std::string::npos);
}

TEST_F(RouteTest, RoutesInAnotherNamespace) {
  Netns other = Netns::create();
  auto routes = run_in_netns(other, [] {
    set_link_up("lo");
    ensure_bridge("kt-o", 1500);
    ensure_address("kt-o", IfAddr::parse("172.16.0.1/24"));
    ensure_route({.dst = Ipv4Cidr::parse("0.0.0.0/0"), .gateway = Ipv4Addr::parse("172.16.0.9")});
    return list_routes();
  });
  EXPECT_EQ(routes.size(), 2u);  // connected + default, nothing from this namespace
  EXPECT_FALSE(find_route(Ipv4Cidr::parse("0.0.0.0/0")));
}

TEST_F(AddrRouteTest, SysctlReadWritePerNamespace) {
  EXPECT_EQ(read_sysctl("net.ipv4.ip_forward"), "0");
  write_sysctl("net.ipv4.ip_forward", "1");
  EXPECT_EQ(read_sysctl("net.ipv4.ip_forward"), "1");
  EXPECT_FALSE(ensure_sysctl("net.ipv4.ip_forward", "1"));

  ensure_bridge("kt-br0", 1500);
  std::string key = ipv4_conf_key("kt-br0", "forwarding");
  EXPECT_EQ(key, "net/ipv4/conf/kt-br0/forwarding");
  EXPECT_EQ(read_sysctl(key), "1");  // follows ip_forward at creation
  EXPECT_TRUE(ensure_sysctl(key, "0"));
  EXPECT_EQ(read_sysctl("net.ipv4.conf.kt-br0.forwarding"), "0");

  // Namespaces are independent.
  Netns other = Netns::create();
  EXPECT_EQ(run_in_netns(other, [] { return read_sysctl("net.ipv4.ip_forward"); }), "0");
  EXPECT_EQ(read_sysctl("net.ipv4.ip_forward"), "1");

  try {
    read_sysctl("net.ipv4.conf.kt-none.forwarding");
    FAIL();
  } catch (const NetlinkError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("/proc/sys/net/ipv4/conf/kt-none/forwarding"), std::string::npos) << msg;
    EXPECT_NE(msg.find("No such file or directory"), std::string::npos) << msg;
  }
  EXPECT_THROW(write_sysctl("net.ipv4.ip_forward", "banana"), NetlinkError);
  EXPECT_EQ(read_sysctl("net.ipv4.ip_forward"), "1");
  EXPECT_THROW(read_sysctl("../etc/passwd"), std::invalid_argument);
  EXPECT_THROW(ipv4_conf_key("a/b", "forwarding"), std::invalid_argument);
}

}  // namespace
}  // namespace kohaku::netlink
