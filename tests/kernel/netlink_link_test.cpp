// Generic link operations and error reporting against the real kernel.
#include <gtest/gtest.h>

#include "common/netlink/bridge_link.h"
#include "common/netlink/link.h"
#include "common/netlink/veth_link.h"
#include "netlink_test_helpers.h"

namespace kohaku::netlink {
namespace {

using LinkTest = testing::NetnsTest;

TEST_F(LinkTest, FindsLoopbackAndNotMissingLinks) {
  auto lo = find_link("lo");
  ASSERT_TRUE(lo);
  EXPECT_EQ(lo->ifindex, 1);
  EXPECT_TRUE(lo->admin_up);
  EXPECT_FALSE(find_link("kt-missing"));
  EXPECT_FALSE(link_exists("kt-missing"));
}

TEST_F(LinkTest, DeletingMissingLinkNamesDeviceAndReason) {
  try {
    delete_link("kt-missing");
    FAIL() << "deleting a missing link succeeded";
  } catch (const NetlinkError& e) {
    EXPECT_EQ(std::string(e.what()), "delete link kt-missing: No such device");
    EXPECT_EQ(e.sys_errno(), ENODEV);
  }
  EXPECT_FALSE(delete_link_if_exists("kt-missing"));
  try {
    get_link("kt-missing");
    FAIL();
  } catch (const NetlinkError& e) {
    EXPECT_EQ(std::string(e.what()), "look up link kt-missing: No such device");
  }
  try {
    set_link_mtu("kt-missing", 1400);
    FAIL();
  } catch (const NetlinkError& e) {
    EXPECT_NE(std::string(e.what()).find("kt-missing"), std::string::npos);
  }
}

TEST_F(LinkTest, KernelRefusalCarriesReason) {
  create_bridge("kt-br0");
  try {
    set_link_mtu("kt-br0", 20);  // below the IPv4 minimum: the kernel refuses
    FAIL();
  } catch (const NetlinkError& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("set MTU 20 on link kt-br0: Invalid argument"), std::string::npos) << msg;
  }
  EXPECT_NE(get_link("kt-br0").mtu, 20u);
}

TEST_F(LinkTest, BadNamesAreRefusedBeforeTheKernel) {
  EXPECT_THROW(create_bridge("sixteen-chars-xx"), std::invalid_argument);
  EXPECT_THROW(create_bridge(""), std::invalid_argument);
  EXPECT_THROW(create_bridge("a/b"), std::invalid_argument);
  EXPECT_THROW(find_link("a b"), std::invalid_argument);
  EXPECT_EQ(list_links().size(), 1u);  // only lo
}

TEST_F(LinkTest, StateMtuRenameDelete) {
  create_bridge("kt-br0", 0, /*up=*/false);
  LinkInfo l = get_link("kt-br0");
  EXPECT_EQ(l.kind, "bridge");
  EXPECT_FALSE(l.admin_up);
  set_link_up("kt-br0");
  EXPECT_TRUE(get_link("kt-br0").admin_up);
  set_link_up("kt-br0", false);
  EXPECT_FALSE(get_link("kt-br0").admin_up);
  set_link_mtu("kt-br0", 1400);
  EXPECT_EQ(get_link("kt-br0").mtu, 1400u);
  rename_link("kt-br0", "kt-br1");
  EXPECT_FALSE(link_exists("kt-br0"));
  EXPECT_EQ(get_link("kt-br1").ifindex, l.ifindex);
  delete_link("kt-br1");
  EXPECT_FALSE(link_exists("kt-br1"));
}

TEST_F(LinkTest, ListsByPrefixAndKind) {
  create_bridge("kt-a");
  create_bridge("kt-b");
  create_veth({.name = "kt-v0", .peer_name = "other0"});
  auto kt = list_links("kt-");
  EXPECT_EQ(kt.size(), 3u);
  auto veths = list_links("", "veth");
  ASSERT_EQ(veths.size(), 2u);
  auto bridges = list_links("kt-", "bridge");
  ASSERT_EQ(bridges.size(), 2u);
  for (const auto& b : bridges) EXPECT_EQ(b.kind, "bridge");
}

TEST_F(LinkTest, MasterSetAndCleared) {
  create_bridge("kt-br0");
  create_veth({.name = "kt-v0", .peer_name = "kt-v1"});
  set_link_master("kt-v0", "kt-br0");
  EXPECT_EQ(get_link("kt-v0").master_ifindex, get_link("kt-br0").ifindex);
  clear_link_master("kt-v0");
  EXPECT_EQ(get_link("kt-v0").master_ifindex, 0);
}

TEST_F(LinkTest, MovesLinkIntoAnotherNamespaceUnderNewName) {
  Netns other = Netns::create();
  create_veth({.name = "kt-v0", .peer_name = "kt-v1"});
  move_link_to_netns("kt-v1", other.fd(), "eth0");
  EXPECT_FALSE(link_exists("kt-v1"));
  auto moved = run_in_netns(other, [] { return find_link("eth0"); });
  ASSERT_TRUE(moved);
  EXPECT_EQ(moved->kind, "veth");
  // The name stays free here and the namespace is really another one.
  EXPECT_FALSE(link_exists("eth0"));
  EXPECT_NE(other.inode(), Netns::current().inode());
}

}  // namespace
}  // namespace kohaku::netlink
