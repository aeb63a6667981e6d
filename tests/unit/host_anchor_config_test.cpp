// KohakuRiver's OVERLAY_HOST_IP / OVERLAY_HOST_PREFIX / OVERLAY_BRIDGE_NAME in host_config.py:
// honoured (kohaku-host's address and prefix, the bridge name reported), checked against
// OVERLAY_SUBNET, and refused with both keys named when they do not fit together.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config_test_dir.h"
#include "host/host_config.h"
#include "support/text.h"

namespace kohaku {
namespace {

using test_support::has;
using test_support::load_host;

TEST(HostAnchorConfig, DefaultIsTheSchemesBasePlusOneWithItsPrefix) {
  auto r = load_host("");
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_FALSE(r.config->overlay_host_ip);
  EXPECT_EQ(r.config->host_anchor_ip().to_string(), "10.128.0.1");
  EXPECT_EQ(r.config->host_anchor_prefix(), 12);
  EXPECT_EQ(r.config->overlay_bridge_name, "kohaku-overlay");
  auto classic = load_host("OVERLAY_SUBNET = '10.0.0.0/8/8/16'\n");
  ASSERT_TRUE(classic.config) << classic.error;
  EXPECT_EQ(classic.config->host_anchor_ip().to_string(), "10.0.0.1");
  EXPECT_EQ(classic.config->host_anchor_prefix(), 8);
}

// The docs' "Custom IP scheme": 172.16.0.1/12 with an OVERLAY_SUBNET inside it.
TEST(HostAnchorConfig, DocsCustomIpSchemeLoadsWithoutWarnings) {
  auto r = load_host(
      "OVERLAY_BRIDGE_NAME: str = \"kohaku-overlay\"\n"
      "OVERLAY_HOST_IP: str = \"172.16.0.1\"\n"
      "OVERLAY_HOST_PREFIX: int = 12\n"
      "OVERLAY_SUBNET: str = \"172.16.0.0/12/8/12\"\n");
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  EXPECT_EQ(r.config->host_anchor_ip().to_string(), "172.16.0.1");
  EXPECT_EQ(r.config->host_anchor_prefix(), 12);
  auto inside = load_host(
      "OVERLAY_HOST_IP = '172.16.0.1'\nOVERLAY_HOST_PREFIX = 12\n"
      "OVERLAY_SUBNET = '172.16.0.0/16/4/12'\n");
  ASSERT_TRUE(inside.config) << inside.error;
  EXPECT_EQ(inside.config->host_anchor_prefix(), 12);
  EXPECT_EQ(inside.config->overlay_subnet.overlay_network().to_string(), "172.16.0.0/16");
}

TEST(HostAnchorConfig, AnotherAddressOfTheHostsBlockIsHonoured) {
  auto r = load_host("OVERLAY_HOST_IP = '10.128.0.200'\n", {"OVERLAY_BRIDGE_NAME=br-ovl"});
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->host_anchor_ip().to_string(), "10.128.0.200");
  EXPECT_EQ(r.config->host_anchor_prefix(), 12);  // the scheme's, as not given
  EXPECT_EQ(r.config->overlay_bridge_name, "br-ovl");
}

TEST(HostAnchorConfig, AddressOutsideTheOverlayNamesBothKeys) {
  // The docs' overlay-setup values without the OVERLAY_SUBNET that matches them.
  auto r = load_host("OVERLAY_HOST_IP = '10.0.0.1'\nOVERLAY_HOST_PREFIX = 8\n");
  ASSERT_FALSE(r.config);
  EXPECT_TRUE(has(r.error,
                  "host_config.py:1: OVERLAY_HOST_IP = '10.0.0.1': is outside the "
                  "overlay network 10.128.0.0/12 of OVERLAY_SUBNET = "
                  "'10.128.0.0/12/6/14' (default)"))
      << r.error;
}

TEST(HostAnchorConfig, AddressInARunnersSubnetIsRefused) {
  auto r = load_host("OVERLAY_HOST_IP = '10.128.64.1'\n");
  ASSERT_FALSE(r.config);
  EXPECT_TRUE(has(r.error,
                  "OVERLAY_HOST_IP = '10.128.64.1': is in runner 1's subnet "
                  "10.128.64.0/18 of OVERLAY_SUBNET"))
      << r.error;
  auto network = load_host("OVERLAY_HOST_IP = '10.128.0.0'\n");
  EXPECT_TRUE(has(network.error, "is the network address of 10.128.0.0/12")) << network.error;
  EXPECT_TRUE(has(load_host("OVERLAY_HOST_IP = 'host'\n").error, "OVERLAY_HOST_IP"))
      << "not an IPv4";
}

TEST(HostAnchorConfig, PrefixMustHoldTheWholeOverlay) {
  auto narrow = load_host("OVERLAY_HOST_PREFIX = 24\n");
  ASSERT_FALSE(narrow.config);
  EXPECT_TRUE(has(narrow.error,
                  "OVERLAY_HOST_PREFIX = 24: makes kohaku-host's network "
                  "10.128.0.0/24 only part of the overlay network 10.128.0.0/12 "
                  "of OVERLAY_SUBNET"))
      << narrow.error;
  auto wide = load_host("OVERLAY_HOST_PREFIX = 8\n");  // 10.0.0.0/8 holds 10.128.0.0/12
  ASSERT_TRUE(wide.config) << wide.error;
  EXPECT_EQ(wide.config->host_anchor_prefix(), 8);
  auto special = load_host("OVERLAY_HOST_PREFIX = 1\n");
  EXPECT_TRUE(has(special.error,
                  "OVERLAY_HOST_PREFIX = 1: makes kohaku-host's network "
                  "0.0.0.0/1 (OVERLAY_HOST_IP '10.128.0.1') overlap"))
      << special.error;
  EXPECT_TRUE(has(load_host("OVERLAY_HOST_PREFIX = 33\n").error, "OVERLAY_HOST_PREFIX = 33"));
  EXPECT_TRUE(has(load_host("OVERLAY_HOST_PREFIX = 0\n").error, "OVERLAY_HOST_PREFIX = 0"));
}

TEST(HostAnchorConfig, AnchorNetworkMustNotSwallowTheReachableAddress) {
  auto r = load_host(
      "OVERLAY_ENABLED = True\nHOST_REACHABLE_ADDRESS = '10.1.0.10'\nOVERLAY_HOST_PREFIX = 8\n");
  ASSERT_FALSE(r.config);
  EXPECT_TRUE(has(r.error,
                  "OVERLAY_HOST_PREFIX = 8: puts HOST_REACHABLE_ADDRESS = '10.1.0.10' "
                  "inside kohaku-host's network 10.0.0.0/8"))
      << r.error;
}

TEST(HostAnchorConfig, BridgeNameIsAnInterfaceName) {
  EXPECT_TRUE(has(load_host("OVERLAY_BRIDGE_NAME = 'a-very-long-bridge-name'\n").error,
                  "OVERLAY_BRIDGE_NAME = 'a-very-long-bridge-name': must be a network interface "
                  "name of 1..15 characters"));
  EXPECT_TRUE(has(load_host("OVERLAY_BRIDGE_NAME = 'br/0'\n").error, "must not contain '/'"));
  EXPECT_TRUE(has(load_host("OVERLAY_BRIDGE_NAME = ''\n").error, "OVERLAY_BRIDGE_NAME"));
}

}  // namespace
}  // namespace kohaku
