// VXLAN links against the real kernel: attributes read back (and cross-checked with iproute2),
// ensure keeping / repairing / recreating each kind of drift, listing, errors, and real packets
// through a tunnel between two namespaces.
#include <gtest/gtest.h>

#include <algorithm>

#include "common/netlink/address.h"
#include "common/netlink/bridge_link.h"
#include "common/netlink/sysctl.h"
#include "common/netlink/veth_link.h"
#include "common/netlink/vxlan_link.h"
#include "netlink_test_helpers.h"

namespace kohaku::netlink {
namespace {

using testing::NetnsTest;

class VxlanTest : public NetnsTest {
 protected:
  static VxlanSpec spec() {
    VxlanSpec s;
    s.name = "vxkt1";
    s.vni = 101;
    s.local = Ipv4Addr::parse("192.0.2.1");
    s.remote = Ipv4Addr::parse("192.0.2.2");
    s.port = 4789;
    s.mtu = 1450;
    return s;
  }
};

TEST_F(VxlanTest, CreateReadsBackEveryAttribute) {
  create_bridge("kt-under", 1500);
  VxlanSpec s = spec();
  s.port = 8472;
  s.mtu = 1400;
  s.underlay_dev = "kt-under";
  create_vxlan(s);

  auto v = find_vxlan("vxkt1");
  ASSERT_TRUE(v);
  EXPECT_EQ(v->link.kind, "vxlan");
  EXPECT_EQ(v->vni, 101u);
  EXPECT_EQ(v->local, Ipv4Addr::parse("192.0.2.1"));
  EXPECT_EQ(v->remote, Ipv4Addr::parse("192.0.2.2"));
  EXPECT_EQ(v->port, 8472);
  EXPECT_FALSE(v->learning);
  EXPECT_EQ(v->link.mtu, 1400u);
  EXPECT_TRUE(v->link.admin_up);
  EXPECT_EQ(v->underlay_ifindex, get_link("kt-under").ifindex);

  // iproute2 parses the same kernel answer independently: catches byte-order slips in both
  // directions that a libnl round trip alone would hide.
  auto j = testing::ip_link_json("vxkt1");
  ASSERT_FALSE(j.is_null());
  auto data = j["linkinfo"]["info_data"];
  EXPECT_EQ(data["id"], 101);
  EXPECT_EQ(data["remote"], "192.0.2.2");
  EXPECT_EQ(data["local"], "192.0.2.1");
  EXPECT_EQ(data["port"], 8472);
  EXPECT_EQ(data["learning"], false);
  EXPECT_EQ(data["link"], "kt-under");
  EXPECT_EQ(j["mtu"], 1400);
}

TEST_F(VxlanTest, LearningCanBeRequested) {
  VxlanSpec s = spec();
  s.learning = true;
  s.up = false;
  create_vxlan(s);
  auto v = find_vxlan("vxkt1");
  ASSERT_TRUE(v);
  EXPECT_TRUE(v->learning);
  EXPECT_FALSE(v->link.admin_up);
}

TEST_F(VxlanTest, DuplicateCreateNamesDeviceAndReason) {
  create_vxlan(spec());
  try {
    create_vxlan(spec());
    FAIL() << "second create succeeded";
  } catch (const NetlinkError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("create vxlan vxkt1 (VNI 101, remote 192.0.2.2"), std::string::npos) << msg;
    EXPECT_NE(msg.find("File exists"), std::string::npos) << msg;
    EXPECT_EQ(e.sys_errno(), EEXIST);
  }
}

TEST_F(VxlanTest, InvalidSpecIsRefusedAndChangesNothing) {
  VxlanSpec s = spec();
  s.vni = 1u << 24;
  EXPECT_THROW(create_vxlan(s), std::invalid_argument);
  EXPECT_THROW(ensure_vxlan(s), std::invalid_argument);
  s = spec();
  s.remote = Ipv4Addr::parse("239.1.1.1");
  EXPECT_THROW(ensure_vxlan(s), std::invalid_argument);
  s = spec();
  s.name = "name-far-too-long";
  EXPECT_THROW(ensure_vxlan(s), std::invalid_argument);
  EXPECT_TRUE(list_vxlans().empty());
}

TEST_F(VxlanTest, MissingUnderlayIsNamed) {
  VxlanSpec s = spec();
  s.underlay_dev = "kt-nounder";
  try {
    create_vxlan(s);
    FAIL();
  } catch (const NetlinkError& e) {
    EXPECT_NE(std::string(e.what()).find("kt-nounder"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(link_exists("vxkt1"));
}

TEST_F(VxlanTest, EnsureCreatesThenKeeps) {
  EXPECT_EQ(ensure_vxlan(spec()), EnsureAction::kCreated);
  int ifindex = get_link("vxkt1").ifindex;
  EXPECT_EQ(ensure_vxlan(spec()), EnsureAction::kKept);
  EXPECT_EQ(get_link("vxkt1").ifindex, ifindex);
}

TEST_F(VxlanTest, WithoutIpv6TheDeviceComesUpWithIpv6AlreadyOff) {
  VxlanSpec s = spec();
  s.ipv6 = false;
  EXPECT_EQ(ensure_vxlan(s), EnsureAction::kCreated);
  EXPECT_TRUE(get_link("vxkt1").admin_up);
  EXPECT_EQ(read_sysctl("net/ipv6/conf/vxkt1/disable_ipv6"), "1");
  // Off before it came up: no link-local address and no IPv6 route ever appeared.
  EXPECT_EQ(testing::run_cmd("ip -6 addr show dev vxkt1").out, "");
  EXPECT_EQ(testing::run_cmd("ip -6 route show table all dev vxkt1").out, "");
  // A device from a build that left IPv6 on loses it on the next ensure, kept otherwise.
  write_sysctl("net/ipv6/conf/vxkt1/disable_ipv6", "0");
  EXPECT_EQ(ensure_vxlan(s), EnsureAction::kKept);
  EXPECT_EQ(read_sysctl("net/ipv6/conf/vxkt1/disable_ipv6"), "1");
  // Created down on request: stays down.
  delete_link_if_exists("vxkt1");
  s.up = false;
  ensure_vxlan(s);
  EXPECT_FALSE(get_link("vxkt1").admin_up);
  EXPECT_EQ(read_sysctl("net/ipv6/conf/vxkt1/disable_ipv6"), "1");
}

TEST_F(VxlanTest, EnsureRepairsMtuAndStateInPlace) {
  ensure_vxlan(spec());
  int ifindex = get_link("vxkt1").ifindex;
  set_link_mtu("vxkt1", 1300);
  set_link_up("vxkt1", false);
  EXPECT_EQ(ensure_vxlan(spec()), EnsureAction::kRepaired);
  LinkInfo l = get_link("vxkt1");
  EXPECT_EQ(l.ifindex, ifindex);
  EXPECT_EQ(l.mtu, 1450u);
  EXPECT_TRUE(l.admin_up);
  EXPECT_EQ(ensure_vxlan(spec()), EnsureAction::kKept);
}

struct Drift {
  const char* name;
  void (*apply)(VxlanSpec&);
  friend void PrintTo(const Drift& d, std::ostream* os) { *os << d.name; }
};

class VxlanDriftTest : public VxlanTest, public ::testing::WithParamInterface<Drift> {};

TEST_P(VxlanDriftTest, EnsureRecreates) {
  VxlanSpec old_spec = spec();
  create_vxlan(old_spec);
  int old_ifindex = get_link("vxkt1").ifindex;
  VxlanSpec want = spec();
  GetParam().apply(want);
  EXPECT_EQ(ensure_vxlan(want), EnsureAction::kRecreated);
  auto v = find_vxlan("vxkt1");
  ASSERT_TRUE(v);
  EXPECT_NE(v->link.ifindex, old_ifindex);
  EXPECT_EQ(v->vni, want.vni);
  EXPECT_EQ(v->remote, want.remote);
  EXPECT_EQ(v->local, want.local);
  EXPECT_EQ(v->port, want.port);
  EXPECT_EQ(v->learning, want.learning);
  EXPECT_TRUE(v->link.admin_up);
  EXPECT_EQ(ensure_vxlan(want), EnsureAction::kKept);
}

INSTANTIATE_TEST_SUITE_P(
    EachDrift, VxlanDriftTest,
    ::testing::Values(Drift{"vni", [](VxlanSpec& s) { s.vni = 202; }},
                      Drift{"remote",
                            [](VxlanSpec& s) { s.remote = Ipv4Addr::parse("192.0.2.9"); }},
                      Drift{"local", [](VxlanSpec& s) { s.local = Ipv4Addr::parse("192.0.2.7"); }},
                      Drift{"no_local", [](VxlanSpec& s) { s.local.reset(); }},
                      Drift{"port", [](VxlanSpec& s) { s.port = 4790; }},
                      Drift{"learning", [](VxlanSpec& s) { s.learning = true; }}),
    [](const auto& info) { return std::string(info.param.name); });

TEST_F(VxlanTest, StableMacSurvivesRecreateAndIsRepairedInPlace) {
  VxlanSpec s = spec();
  s.mac = MacAddr::stable_for(Ipv4Addr::parse("10.3.0.254"));
  EXPECT_EQ(s.mac->to_string(), "0a:6b:0a:03:00:fe");
  ASSERT_EQ(ensure_vxlan(s), EnsureAction::kCreated);
  EXPECT_EQ(testing::ip_link_json("vxkt1")["address"], "0a:6b:0a:03:00:fe");

  // A recreate (new remote) must come back with the same MAC: neighbours cached it.
  s.remote = Ipv4Addr::parse("192.0.2.9");
  ASSERT_EQ(ensure_vxlan(s), EnsureAction::kRecreated);
  EXPECT_EQ(get_link("vxkt1").mac, *s.mac);

  // Someone changes the MAC by hand: repaired in place, same ifindex.
  int ifindex = get_link("vxkt1").ifindex;
  set_link_mac("vxkt1", MacAddr{{0x0a, 0, 0, 0, 0, 1}});
  EXPECT_NE(get_link("vxkt1").mac, *s.mac);
  ASSERT_EQ(ensure_vxlan(s), EnsureAction::kRepaired);
  EXPECT_EQ(get_link("vxkt1").mac, *s.mac);
  EXPECT_EQ(get_link("vxkt1").ifindex, ifindex);
  EXPECT_EQ(ensure_vxlan(s), EnsureAction::kKept);
}

TEST_F(VxlanTest, BridgeKeepsFixedMacWhenPortsChange) {
  auto mac = MacAddr::stable_for(Ipv4Addr::parse("10.3.0.1"));
  ASSERT_EQ(ensure_bridge("kt-br", 1450, true, mac), EnsureAction::kCreated);
  ensure_vxlan(spec());
  ensure_bridge_port("kt-br", "vxkt1");
  EXPECT_EQ(get_link("kt-br").mac, mac);
  delete_link("vxkt1");
  ensure_vxlan(spec());
  ensure_bridge_port("kt-br", "vxkt1");
  EXPECT_EQ(get_link("kt-br").mac, mac);
  set_link_mac("kt-br", MacAddr{{0x0a, 0, 0, 0, 0, 2}});
  EXPECT_EQ(ensure_bridge("kt-br", 1450, true, mac), EnsureAction::kRepaired);
  EXPECT_EQ(get_link("kt-br").mac, mac);
}

TEST_F(VxlanTest, EnsureReplacesLinkOfOtherKind) {
  create_bridge("vxkt1");
  EXPECT_EQ(ensure_vxlan(spec()), EnsureAction::kRecreated);
  EXPECT_TRUE(find_vxlan("vxkt1"));
}

TEST_F(VxlanTest, ListsVxlansByPrefix) {
  for (uint32_t id : {1u, 2u, 35u}) {
    VxlanSpec s = spec();
    s.name = "vxkr" + std::string(1, "0123456789abcdefghijklmnopqrstuvwxyz"[id]);
    s.vni = 100 + id;
    s.remote = Ipv4Addr{s.remote.value + id};
    create_vxlan(s);
  }
  VxlanSpec other = spec();
  other.name = "vxother";
  other.vni = 999;
  create_vxlan(other);
  create_bridge("vxkrbr");  // right prefix, wrong kind

  auto found = list_vxlans("vxkr");
  std::sort(found.begin(), found.end(), [](const auto& a, const auto& b) { return a.vni < b.vni; });
  ASSERT_EQ(found.size(), 3u);
  EXPECT_EQ(found[0].link.name, "vxkr1");
  EXPECT_EQ(found[0].vni, 101u);
  EXPECT_EQ(found[0].remote, Ipv4Addr::parse("192.0.2.3"));
  EXPECT_EQ(found[2].link.name, "vxkrz");
  EXPECT_EQ(found[2].vni, 135u);
  EXPECT_EQ(found[2].port, 4789);
  EXPECT_EQ(found[2].link.mtu, 1450u);
  EXPECT_EQ(found[2].local, Ipv4Addr::parse("192.0.2.1"));
  EXPECT_EQ(list_links("vxkr", "vxlan").size(), 3u);
  EXPECT_EQ(list_links("vxkr").size(), 4u);
}

// Two namespaces joined by a veth underlay, a point-to-point vxlan on each side, no FDB entries:
// overlay addresses reach each other only if VNI, local, remote and port all line up.
TEST_F(VxlanTest, CarriesPacketsBetweenNamespaces) {
  Netns peer = Netns::create();
  create_veth({.name = "kt-ua", .peer_name = "kt-ub", .peer_netns_fd = peer.fd()});
  add_address("kt-ua", IfAddr::parse("192.0.2.1/24"));
  VxlanSpec a = spec();
  ASSERT_EQ(ensure_vxlan(a), EnsureAction::kCreated);
  add_address("vxkt1", IfAddr::parse("10.99.0.1/24"));
  run_in_netns(peer, [] {
    set_link_up("lo");
    set_link_up("kt-ub");
    add_address("kt-ub", IfAddr::parse("192.0.2.2/24"));
    VxlanSpec b = spec();
    b.local = Ipv4Addr::parse("192.0.2.2");
    b.remote = Ipv4Addr::parse("192.0.2.1");
    ensure_vxlan(b);
    add_address("vxkt1", IfAddr::parse("10.99.0.2/24"));
  });
  EXPECT_TRUE(testing::ping(Ipv4Addr::parse("10.99.0.2")));
  EXPECT_EQ(testing::udp_exchange(peer, Ipv4Addr::parse("10.99.0.2"), "over vxlan"), "over vxlan");

  // A wrong VNI on one side is repaired by ensure, and traffic flows again.
  run_in_netns(peer, [] {
    VxlanSpec b = spec();
    b.vni = 555;
    b.local = Ipv4Addr::parse("192.0.2.2");
    b.remote = Ipv4Addr::parse("192.0.2.1");
    ASSERT_EQ(ensure_vxlan(b), EnsureAction::kRecreated);
    add_address("vxkt1", IfAddr::parse("10.99.0.2/24"));
  });
  EXPECT_FALSE(testing::ping(Ipv4Addr::parse("10.99.0.2"), nullptr, std::chrono::seconds(1)));
  a.vni = 555;
  ASSERT_EQ(ensure_vxlan(a), EnsureAction::kRecreated);
  add_address("vxkt1", IfAddr::parse("10.99.0.1/24"));
  EXPECT_TRUE(testing::ping(Ipv4Addr::parse("10.99.0.2")));
}

}  // namespace
}  // namespace kohaku::netlink
