// The kernel datapath's FORWARD rules through the real iptables binary, each test in a fresh
// network namespace: idempotent install, a changed overlay CIDR, removal, and clear errors.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "common/netlink/sysctl.h"
#include "host/datapath/kernel_forwarding.h"
#include "netlink_test_helpers.h"

namespace kohaku {
namespace {

using KernelForwardingTest = netlink::testing::NetnsTest;

std::vector<std::string> forward_chain() {
  return netlink::testing::iptables_lines("-S FORWARD");
}

const std::vector<std::string> kRules10 = {
    "-P FORWARD ACCEPT",
    "-A FORWARD -s 10.0.0.0/8 -m comment --comment kohaku-overlay -j ACCEPT",
    "-A FORWARD -d 10.0.0.0/8 -m comment --comment kohaku-overlay -j ACCEPT",
};

TEST_F(KernelForwardingTest, InstallIsIdempotentAndTurnsForwardingOn) {
  netlink::write_sysctl("net.ipv4.ip_forward", "0");
  KernelForwarding k;
  k.install(Ipv4Cidr::parse("10.0.0.0/8"));
  k.install(Ipv4Cidr::parse("10.0.0.0/8"));
  EXPECT_EQ(forward_chain(), kRules10);
  EXPECT_EQ(netlink::read_sysctl("net.ipv4.ip_forward"), "1");
  EXPECT_EQ(k.rules().size(), 2u);
}

TEST_F(KernelForwardingTest, AChangedOverlayReplacesOnlyOurRules) {
  ASSERT_EQ(netlink::testing::run_cmd("iptables -A FORWARD -s 192.0.2.0/24 -j DROP").status, 0);
  KernelForwarding k;
  k.install(Ipv4Cidr::parse("10.128.0.0/12"));
  k.install(Ipv4Cidr::parse("10.0.0.0/8"));
  std::vector<std::string> want{kRules10[0], kRules10[1], kRules10[2],
                                "-A FORWARD -s 192.0.2.0/24 -j DROP"};
  EXPECT_EQ(forward_chain(), want);
}

// KohakuRiver's docs insert them (-I FORWARD 1 and 2): a REJECT that was there first, as a
// firewall leaves it, must not shadow them; and a rule someone inserts above them later is
// put below them again at the next install (the daemon re-installs every cleanup tick).
TEST_F(KernelForwardingTest, RulesGoToTheTopAboveARejectAndStayThere) {
  ASSERT_EQ(netlink::testing::run_cmd("iptables -A FORWARD -j REJECT").status, 0);
  KernelForwarding k;
  k.install(Ipv4Cidr::parse("10.0.0.0/8"));
  std::vector<std::string> want{kRules10[0], kRules10[1], kRules10[2],
                                "-A FORWARD -j REJECT --reject-with icmp-port-unreachable"};
  EXPECT_EQ(forward_chain(), want);
  k.install(Ipv4Cidr::parse("10.0.0.0/8"));
  EXPECT_EQ(forward_chain(), want);
  ASSERT_EQ(netlink::testing::run_cmd("iptables -I FORWARD 1 -s 192.0.2.0/24 -j DROP").status, 0);
  k.install(Ipv4Cidr::parse("10.0.0.0/8"));
  want.insert(want.begin() + 3, "-A FORWARD -s 192.0.2.0/24 -j DROP");
  EXPECT_EQ(forward_chain(), want);
}

TEST_F(KernelForwardingTest, RemoveAllLeavesOtherRules) {
  ASSERT_EQ(netlink::testing::run_cmd("iptables -A FORWARD -d 10.0.0.0/8 -j ACCEPT").status, 0);
  KernelForwarding k;
  k.install(Ipv4Cidr::parse("10.0.0.0/8"));
  EXPECT_EQ(k.remove_all(), 2u);
  EXPECT_EQ(k.remove_all(), 0u);
  // The operator's identical rule without our comment is not ours to remove.
  std::vector<std::string> want{"-P FORWARD ACCEPT", "-A FORWARD -d 10.0.0.0/8 -j ACCEPT"};
  EXPECT_EQ(forward_chain(), want);
}

TEST_F(KernelForwardingTest, MissingBinaryIsAClearErrorAndChangesNothing) {
  netlink::write_sysctl("net.ipv4.ip_forward", "0");
  KernelForwarding k("/nonexistent/iptables");
  try {
    k.install(Ipv4Cidr::parse("10.0.0.0/8"));
    FAIL() << "expected an error";
  } catch (const IptablesMissing& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/iptables"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("No such file"), std::string::npos) << e.what();
  }
  EXPECT_EQ(forward_chain(), std::vector<std::string>{"-P FORWARD ACCEPT"});
  EXPECT_THROW(k.remove_all(), IptablesMissing);
  EXPECT_EQ(netlink::read_sysctl("net.ipv4.ip_forward"), "0");
}

}  // namespace
}  // namespace kohaku
