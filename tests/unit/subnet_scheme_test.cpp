#include "common/subnet_scheme.h"

#include <gtest/gtest.h>

#include <stdexcept>

namespace kohaku {
namespace {

TEST(Ipv4, ParsesStrictDottedQuads) {
  EXPECT_EQ(Ipv4Addr::parse("10.1.2.3").value, 0x0a010203u);
  EXPECT_EQ(Ipv4Addr::parse("255.255.255.255").to_string(), "255.255.255.255");
  for (const char* bad : {"", "10.1.2", "10.1.2.3.4", "256.1.1.1", "01.1.1.1", "1..1.1", "a.b.c.d",
                          "10.1.2.3 ", " 10.1.2.3", "1.2.3.-4"})
    EXPECT_FALSE(Ipv4Addr::try_parse(bad)) << bad;
  EXPECT_THROW(Ipv4Addr::parse("1.2.3"), std::invalid_argument);
}

TEST(Ipv4, ParsesCidrsAndRejectsHostBits) {
  auto c = Ipv4Cidr::parse("10.128.0.0/12");
  EXPECT_EQ(c.to_string(), "10.128.0.0/12");
  EXPECT_TRUE(c.contains(Ipv4Addr::parse("10.143.255.255")));
  EXPECT_FALSE(c.contains(Ipv4Addr::parse("10.144.0.0")));
  EXPECT_FALSE(Ipv4Cidr::try_parse("10.128.0.1/12"));
  EXPECT_EQ(Ipv4Cidr::parse("10.128.0.1/12", true).to_string(), "10.128.0.0/12");
  for (const char* bad : {"10.0.0.0", "10.0.0.0/", "10.0.0.0/33", "10.0.0.0/08", "10.0.0.0/x"})
    EXPECT_FALSE(Ipv4Cidr::try_parse(bad)) << bad;
}

TEST(SubnetScheme, ClassicLayoutMatchesKohakuRiver) {
  auto s = SubnetScheme::parse("10.0.0.0/8/8/16");
  EXPECT_EQ(s.max_runner_id(), 255u);
  EXPECT_EQ(s.host_overlay_ip().to_string(), "10.0.0.1");
  EXPECT_EQ(s.overlay_network().to_string(), "10.0.0.0/8");
  EXPECT_EQ(s.runner_subnet(3).to_string(), "10.3.0.0/16");
  EXPECT_EQ(s.runner_gateway(3).to_string(), "10.3.0.1");
  EXPECT_EQ(s.host_ip_on_runner_subnet(3).to_string(), "10.3.0.254");
  EXPECT_EQ(s.first_container_ip(3).to_string(), "10.3.0.2");
  EXPECT_EQ(s.last_container_ip(3).to_string(), "10.3.255.254");
  EXPECT_EQ(s.container_ip_count(3), 65532u);
  EXPECT_FALSE(s.is_container_ip(3, Ipv4Addr::parse("10.3.0.254")));
  EXPECT_TRUE(s.is_container_ip(3, Ipv4Addr::parse("10.3.0.253")));
  EXPECT_FALSE(s.is_container_ip(3, Ipv4Addr::parse("10.3.0.1")));
  EXPECT_EQ(s.runner_for_ip(Ipv4Addr::parse("10.200.1.1")), 200u);
  EXPECT_EQ(s.runner_for_ip(Ipv4Addr::parse("10.0.0.1")), 0u);
  EXPECT_EQ(s.runner_for_ip(Ipv4Addr::parse("11.0.0.1")), 0u);
  EXPECT_THROW(s.runner_subnet(0), std::out_of_range);
  EXPECT_THROW(s.runner_subnet(256), std::out_of_range);
}

TEST(SubnetScheme, DefaultLayout) {
  auto s = SubnetScheme::parse("10.128.0.0/12/6/14");
  EXPECT_EQ(s.max_runner_id(), 63u);
  EXPECT_EQ(s.host_overlay_ip().to_string(), "10.128.0.1");
  EXPECT_EQ(s.runner_subnet(1).to_string(), "10.128.64.0/18");
  EXPECT_EQ(s.runner_gateway(1).to_string(), "10.128.64.1");
  EXPECT_EQ(s.host_ip_on_runner_subnet(1).to_string(), "10.128.64.254");
  EXPECT_EQ(s.runner_subnet(63).to_string(), "10.143.192.0/18");
  EXPECT_EQ(s.last_container_ip(63).to_string(), "10.143.255.254");
  EXPECT_EQ(s.container_ip_count(1), 16384u - 4);
}

TEST(SubnetScheme, MasksHostBitsOfBase) {
  EXPECT_EQ(SubnetScheme::parse("10.129.3.4/12/6/14").to_string(), "10.128.0.0/12/6/14");
}

TEST(SubnetScheme, RejectsEveryBrokenRule) {
  for (const char* bad :
       {"10.0.0.0/8/8", "10.0.0.0/8/8/16/1", "x/8/8/16", "10.0.0.0/0/16/16", "10.0.0.0/25/0/7",
        "10.0.0.0/8/0/24", "10.0.0.0/4/17/11", "10.0.0.0/20/5/7", "10.0.0.0/8/8/15",
        "10.0.0.0/8/a/16", "10.0.0.0/8//16", "", "10.0.0.0/8/8/99"}) {
    EXPECT_THROW(SubnetScheme::parse(bad), std::invalid_argument) << bad;
  }
  try {
    SubnetScheme::parse("10.0.0.0/8/8/15");
    FAIL();
  } catch (const std::invalid_argument& e) {
    EXPECT_NE(std::string(e.what()).find("must be 32"), std::string::npos) << e.what();
  }
}

// Networks no interface may carry: 10.0.0.0/1 used to become 0.0.0.0/1 and put 0.0.0.1/1 on
// kohaku-host.
TEST(SubnetScheme, RefusesReservedRanges) {
  for (const char* bad :
       {"0.0.0.0/12/6/14", "127.0.0.0/12/6/14", "224.0.0.0/12/6/14", "255.0.0.0/12/6/14",
        "240.0.0.0/12/6/14", "10.0.0.0/1/15/16", "128.0.0.0/1/15/16"}) {
    try {
      SubnetScheme::parse(bad);
      ADD_FAILURE() << bad << " accepted";
    } catch (const std::invalid_argument& e) {
      EXPECT_NE(std::string(e.what()).find("overlaps"), std::string::npos) << e.what();
    }
  }
  EXPECT_NO_THROW(SubnetScheme::parse("172.16.0.0/12/6/14"));
  EXPECT_NO_THROW(SubnetScheme::parse("100.64.0.0/10/6/16"));
}

TEST(DeviceNames, Base36RoundTrip) {
  EXPECT_EQ(host_vxlan_device_name(1), "vxkr1");
  EXPECT_EQ(host_vxlan_device_name(35), "vxkrz");
  EXPECT_EQ(host_vxlan_device_name(36), "vxkr10");
  EXPECT_EQ(host_vxlan_device_name(255), "vxkr73");
  for (uint32_t id : {1u, 9u, 10u, 35u, 36u, 255u, 65535u})
    EXPECT_EQ(runner_id_from_device_name(host_vxlan_device_name(id)), id);
  for (const char* bad : {"vxkr", "vxkr0", "vxkr01", "vxkrA", "vxlan0", "vxkr1-"})
    EXPECT_EQ(runner_id_from_device_name(bad), 0u) << bad;
}

}  // namespace
}  // namespace kohaku
