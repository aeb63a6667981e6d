// The anchor link: dummy where the kernel has it, else a fallback that still holds a usable
// local address.
#include <gtest/gtest.h>

#include "common/netlink/anchor_link.h"
#include "common/netlink/bridge_link.h"
#include "common/netlink/route.h"
#include "common/netlink/veth_link.h"
#include "netlink_test_helpers.h"

namespace kohaku::netlink {
namespace {

using AnchorTest = testing::NetnsTest;

bool kernel_has_dummy() {
  auto r = testing::run_cmd("ip link add kt-probe type dummy");
  if (r.status != 0) return false;
  delete_link("kt-probe");
  return true;
}

TEST_F(AnchorTest, DefaultKindsHoldAnAddressThatAnswers) {
  IfAddr addr = IfAddr::parse("10.77.0.1/16");
  AnchorResult r = ensure_anchor("kt-anchor", addr);
  EXPECT_EQ(r.action, EnsureAction::kCreated);
  EXPECT_EQ(r.address, EnsureAction::kCreated);
  EXPECT_EQ(r.kind, kernel_has_dummy() ? "dummy" : "ifb");
  LinkInfo l = get_link("kt-anchor");
  EXPECT_EQ(l.kind, r.kind);
  EXPECT_TRUE(l.admin_up);
  EXPECT_EQ(list_addresses("kt-anchor"), std::vector<IfAddr>{addr});
  EXPECT_TRUE(testing::ping(addr.addr));

  AnchorResult again = ensure_anchor("kt-anchor", addr);
  EXPECT_EQ(again.action, EnsureAction::kKept);
  EXPECT_EQ(again.address, EnsureAction::kKept);
  EXPECT_EQ(get_link("kt-anchor").ifindex, l.ifindex);
}

TEST_F(AnchorTest, BridgeFallbackAnswersFromAnotherNamespace) {
  const std::string_view kinds[] = {"dummy", "bridge"};
  IfAddr addr = IfAddr::parse("10.77.0.1/16");
  AnchorResult r = ensure_anchor("kt-anchor", addr, kinds);
  EXPECT_EQ(r.kind, kernel_has_dummy() ? "dummy" : "bridge");
  EXPECT_TRUE(testing::ping(addr.addr));

  // Reached through a veth and a route from another namespace: the address is usable for real
  // traffic, not only from the host itself.
  Netns remote = Netns::create();
  create_veth({.name = "kt-v0", .peer_name = "eth0", .peer_netns_fd = remote.fd()});
  ensure_address("kt-v0", IfAddr::parse("10.40.0.1/24"));
  run_in_netns(remote, [] {
    set_link_up("lo");
    set_link_up("eth0");
    ensure_address("eth0", IfAddr::parse("10.40.0.2/24"));
    ensure_route({.dst = Ipv4Cidr::parse("10.77.0.0/16"), .gateway = Ipv4Addr::parse("10.40.0.1")});
  });
  EXPECT_TRUE(testing::ping(addr.addr, &remote));
}

TEST_F(AnchorTest, RepairsStateAddressAndWrongKind) {
  IfAddr addr = IfAddr::parse("10.77.0.1/16");
  ensure_anchor("kt-anchor", addr);
  set_link_up("kt-anchor", false);
  add_address("kt-anchor", IfAddr::parse("10.78.0.1/16"));
  AnchorResult r = ensure_anchor("kt-anchor", addr);
  EXPECT_EQ(r.action, EnsureAction::kRepaired);
  EXPECT_EQ(r.address, EnsureAction::kRepaired);
  EXPECT_TRUE(get_link("kt-anchor").admin_up);
  EXPECT_EQ(list_addresses("kt-anchor"), std::vector<IfAddr>{addr});

  create_veth({.name = "kt-anchor2", .peer_name = "kt-peer"});
  AnchorResult other = ensure_anchor("kt-anchor2", IfAddr::parse("10.79.0.1/16"));
  EXPECT_EQ(other.action, EnsureAction::kRecreated);
  EXPECT_NE(get_link("kt-anchor2").kind, "veth");
}

TEST_F(AnchorTest, UnknownKindsFailWithReason) {
  const std::string_view kinds[] = {"no-such-kind"};
  try {
    ensure_anchor("kt-anchor", IfAddr::parse("10.77.0.1/16"), kinds);
    FAIL();
  } catch (const NetlinkError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("create anchor link kt-anchor (type no-such-kind)"), std::string::npos)
        << msg;
    EXPECT_NE(msg.find("Operation not supported"), std::string::npos) << msg;
  }
  EXPECT_FALSE(link_exists("kt-anchor"));
}

}  // namespace
}  // namespace kohaku::netlink
