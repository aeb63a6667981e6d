// The runner's uplink choice over a routing-table snapshot, the NAT configuration built from the
// runner's configuration, and the conntrack timeout keys.
#include <gtest/gtest.h>

#include "runner/datapath/runner_datapath_mode.h"
#include "runner/overlay/uplink.h"
#include "runner/runner_config.h"

namespace kohaku::runner {
namespace {

namespace nl = kohaku::netlink;

nl::RouteInfo route(const char* dst, const char* dev, std::optional<const char*> via = {},
                    uint32_t metric = 0) {
  nl::RouteInfo r;
  r.dst = Ipv4Cidr::parse(dst);
  r.dev = dev;
  r.oif = 1;
  if (via) r.gateway = Ipv4Addr::parse(*via);
  r.metric = metric;
  return r;
}

const Ipv4Addr kHost = Ipv4Addr::parse("192.168.1.10");

TEST(UplinkRoute, DefaultRouteWinsAndTheLowestMetricAmongThem) {
  std::vector<nl::RouteInfo> routes = {
      route("192.168.1.0/24", "eth0"),
      route("0.0.0.0/0", "wlan0", "10.9.0.1", 600),
      route("0.0.0.0/0", "eth1", "172.16.0.1", 100),
      route("10.0.0.0/8", "kohaku-overlay", "10.1.0.254"),
  };
  auto r = choose_uplink_route(routes, kHost, {"kohaku-overlay"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->dev, "eth1");
}

TEST(UplinkRoute, WithoutDefaultRouteTheMostSpecificRouteToTheHost) {
  std::vector<nl::RouteInfo> routes = {
      route("192.168.0.0/16", "eth1", "172.16.0.1"),
      route("192.168.1.0/24", "eth0"),
      route("10.0.0.0/8", "kohaku-overlay", "10.1.0.254"),
  };
  auto r = choose_uplink_route(routes, kHost, {"kohaku-overlay"});
  ASSERT_TRUE(r);
  EXPECT_EQ(r->dev, "eth0");
}

TEST(UplinkRoute, IgnoredDevicesAndNoRouteAtAll) {
  // A default route through the overlay bridge is never the way outside.
  std::vector<nl::RouteInfo> routes = {route("0.0.0.0/0", "kohaku-overlay", "10.1.0.254")};
  EXPECT_FALSE(choose_uplink_route(routes, kHost, {"kohaku-overlay"}));
  EXPECT_FALSE(choose_uplink_route({}, kHost, {}));
}

TEST(UplinkAddress, PreferredSourceThenGatewaysNetworkThenPhysicalThenFirst) {
  const std::vector<nl::IfAddr> addrs = {nl::IfAddr::parse("172.16.5.2/24"),
                                         nl::IfAddr::parse("192.168.1.21/24")};
  auto r = route("0.0.0.0/0", "eth0", "192.168.1.1");
  EXPECT_EQ(choose_uplink_address(r, addrs, std::nullopt), Ipv4Addr::parse("192.168.1.21"));
  r.src = Ipv4Addr::parse("172.16.5.2");
  EXPECT_EQ(choose_uplink_address(r, addrs, std::nullopt), Ipv4Addr::parse("172.16.5.2"));
  auto direct = route("192.168.0.0/16", "eth0");
  EXPECT_EQ(choose_uplink_address(direct, addrs, Ipv4Addr::parse("192.168.1.21")),
            Ipv4Addr::parse("192.168.1.21"));
  EXPECT_EQ(choose_uplink_address(direct, addrs, Ipv4Addr::parse("10.0.0.1")),
            Ipv4Addr::parse("172.16.5.2"));
  EXPECT_FALSE(choose_uplink_address(direct, {}, std::nullopt));
}

TEST(NatConfigFor, TakesPortsVxlanPortAndUdpTimeoutsFromTheConfiguration) {
  RunnerConfig c;
  c.overlay_nat_port_min = 40000;
  c.overlay_nat_port_max = 50000;
  c.overlay_vxlan_port = 8472;
  c.overlay_nat_udp_timeout_seconds = 5;
  c.overlay_nat_udp_stream_timeout_seconds = 7;
  NatConfig n = nat_config_for(c, Ipv4Cidr::parse("10.0.0.0/8"), Ipv4Addr::parse("192.168.1.21"));
  EXPECT_EQ(n.overlay, Ipv4Cidr::parse("10.0.0.0/8"));
  EXPECT_EQ(n.uplink, Ipv4Addr::parse("192.168.1.21"));
  EXPECT_EQ(n.port_min, 40000);
  EXPECT_EQ(n.port_max, 50000);
  EXPECT_EQ(n.vxlan_port, 8472);
  EXPECT_EQ(n.timeouts.udp, 5u);
  EXPECT_EQ(n.timeouts.udp_stream, 7u);
  EXPECT_EQ(n.timeouts.tcp_established, ConntrackTimeouts{}.tcp_established);
  EXPECT_NO_THROW(n.validate());
}

TEST(NatConfigFor, UdpTimeoutKeysDefaultToTheKernelsAndAreChecked) {
  DaemonArgs args;
  args.overrides = {"RUNNER_HOSTNAME=r1"};
  RunnerConfig c = load_runner_config(args);
  EXPECT_EQ(c.overlay_nat_udp_timeout_seconds, 30u);
  EXPECT_EQ(c.overlay_nat_udp_stream_timeout_seconds, 120u);
  args.overrides.push_back("OVERLAY_NAT_UDP_TIMEOUT_SECONDS=0");
  try {
    load_runner_config(args);
    FAIL() << "a zero timeout was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("OVERLAY_NAT_UDP_TIMEOUT_SECONDS"), std::string::npos)
        << e.what();
  }
}

}  // namespace
}  // namespace kohaku::runner
