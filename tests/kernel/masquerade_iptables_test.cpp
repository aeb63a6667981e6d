// The runner's kernel datapath (KohakuRiver's FORWARD accepts and nat MASQUERADE) through the real
// iptables binary, each test in a fresh network namespace: idempotent install, a changed overlay
// CIDR, removal that leaves other rules, and clear errors.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "netlink_test_helpers.h"
#include "runner/datapath/masquerade_iptables.h"

namespace kohaku::runner {
namespace {

using MasqueradeIptablesTest = netlink::testing::NetnsTest;

std::vector<std::string> chain(const std::string& args) {
  return netlink::testing::iptables_lines(args);
}

std::vector<std::string> forward() {
  return chain("-S FORWARD");
}
std::vector<std::string> postrouting() {
  return chain("-t nat -S POSTROUTING");
}

const std::string kFwdS = "-A FORWARD -s 10.0.0.0/8 -m comment --comment kohaku-runner -j ACCEPT";
const std::string kFwdD = "-A FORWARD -d 10.0.0.0/8 -m comment --comment kohaku-runner -j ACCEPT";
const std::string kMasq =
    "-A POSTROUTING -s 10.0.0.0/8 ! -d 10.0.0.0/8 -m comment --comment kohaku-runner -j "
    "MASQUERADE";

TEST_F(MasqueradeIptablesTest, InstallIsIdempotent) {
  MasqueradeIptables m;
  m.install(Ipv4Cidr::parse("10.0.0.0/8"));
  m.install(Ipv4Cidr::parse("10.0.0.0/8"));
  EXPECT_EQ(forward(), (std::vector<std::string>{"-P FORWARD ACCEPT", kFwdS, kFwdD}));
  EXPECT_EQ(postrouting(), (std::vector<std::string>{"-P POSTROUTING ACCEPT", kMasq}));
  EXPECT_EQ(m.rules(), (std::vector<std::string>{kFwdS, kFwdD, kMasq}));
}

TEST_F(MasqueradeIptablesTest, AChangedOverlayReplacesOnlyOurRules) {
  ASSERT_EQ(netlink::testing::run_cmd("iptables -t nat -A POSTROUTING -s 192.0.2.0/24 -j "
                                      "MASQUERADE")
                .status,
            0);
  MasqueradeIptables m;
  m.install(Ipv4Cidr::parse("10.128.0.0/12"));
  m.install(Ipv4Cidr::parse("10.0.0.0/8"));
  EXPECT_EQ(forward(), (std::vector<std::string>{"-P FORWARD ACCEPT", kFwdS, kFwdD}));
  EXPECT_EQ(postrouting(),
            (std::vector<std::string>{"-P POSTROUTING ACCEPT",
                                      "-A POSTROUTING -s 192.0.2.0/24 -j MASQUERADE", kMasq}));
}

TEST_F(MasqueradeIptablesTest, RemoveAllLeavesOtherRules) {
  ASSERT_EQ(netlink::testing::run_cmd("iptables -A FORWARD -d 10.0.0.0/8 -j ACCEPT").status, 0);
  MasqueradeIptables m;
  m.install(Ipv4Cidr::parse("10.0.0.0/8"));
  EXPECT_EQ(m.remove_all(), 3u);
  EXPECT_EQ(m.remove_all(), 0u);
  EXPECT_EQ(forward(),
            (std::vector<std::string>{"-P FORWARD ACCEPT", "-A FORWARD -d 10.0.0.0/8 -j ACCEPT"}));
  EXPECT_EQ(postrouting(), std::vector<std::string>{"-P POSTROUTING ACCEPT"});
}

std::string ours(const std::string& head, const std::string& tail) {
  return head + " -m comment --comment kohaku-runner " + tail;
}

TEST_F(MasqueradeIptablesTest, NamedNetworksFollowTheirNatFlagAndLeaving) {
  MasqueradeIptables m;
  const IptablesNetwork train{Ipv4Cidr::parse("172.20.0.0/24"), true};
  const IptablesNetwork lab{Ipv4Cidr::parse("172.21.0.0/24"), false};
  m.install(Ipv4Cidr::parse("10.0.0.0/8"), {train, lab});
  m.install(Ipv4Cidr::parse("10.0.0.0/8"), {train, lab});
  const std::string train_masq =
      ours("-A POSTROUTING -s 172.20.0.0/24 ! -d 172.20.0.0/24", "-j MASQUERADE");
  EXPECT_EQ(forward(),
            (std::vector<std::string>{"-P FORWARD ACCEPT", kFwdS, kFwdD,
                                      ours("-A FORWARD -s 172.20.0.0/24", "-j ACCEPT"),
                                      ours("-A FORWARD -d 172.20.0.0/24", "-j ACCEPT"),
                                      ours("-A FORWARD -s 172.21.0.0/24", "-j ACCEPT"),
                                      ours("-A FORWARD -d 172.21.0.0/24", "-j ACCEPT")}));
  // lab has outbound NAT off: no MASQUERADE for it.
  EXPECT_EQ(postrouting(), (std::vector<std::string>{"-P POSTROUTING ACCEPT", kMasq, train_masq}));

  // train turns NAT off, lab leaves.
  m.install(Ipv4Cidr::parse("10.0.0.0/8"), {{train.subnet, false}});
  EXPECT_EQ(forward(),
            (std::vector<std::string>{"-P FORWARD ACCEPT", kFwdS, kFwdD,
                                      ours("-A FORWARD -s 172.20.0.0/24", "-j ACCEPT"),
                                      ours("-A FORWARD -d 172.20.0.0/24", "-j ACCEPT")}));
  EXPECT_EQ(postrouting(), (std::vector<std::string>{"-P POSTROUTING ACCEPT", kMasq}));
  EXPECT_EQ(m.remove_all(), 5u);
}

TEST_F(MasqueradeIptablesTest, MissingBinaryIsAClearErrorAndChangesNothing) {
  MasqueradeIptables m("/nonexistent/iptables");
  try {
    m.install(Ipv4Cidr::parse("10.0.0.0/8"));
    FAIL() << "expected an error";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/iptables"), std::string::npos) << e.what();
  }
  EXPECT_EQ(forward(), std::vector<std::string>{"-P FORWARD ACCEPT"});
  // Nothing to remove where there is no iptables at all.
  EXPECT_EQ(m.remove_all(), 0u);
}

}  // namespace
}  // namespace kohaku::runner
