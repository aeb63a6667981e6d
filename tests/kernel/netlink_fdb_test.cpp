// Flood (all-zero MAC) FDB entries of an FDB-only VXLAN device against the real kernel: add,
// list, delete, ensure-exact-set, cross-checked with iproute2's `bridge fdb show`.
#include <gtest/gtest.h>

#include "common/netlink/fdb.h"
#include "common/netlink/vxlan_link.h"
#include "netlink_test_helpers.h"

namespace kohaku::netlink {
namespace {

using testing::NetnsTest;

class FdbTest : public NetnsTest {
 protected:
  void SetUp() override {
    NetnsTest::SetUp();
    VxlanSpec s;
    s.name = "vxlan10042";
    s.vni = 10042;
    s.local = Ipv4Addr::parse("192.0.2.1");
    s.fdb_only = true;
    s.learning = true;
    create_vxlan(s);
  }

  // iproute2's view: destinations of the all-zero entries.
  static std::set<std::string> bridge_fdb_dsts(const std::string& dev) {
    auto r = testing::run_cmd("bridge -j fdb show dev " + dev);
    std::set<std::string> out;
    auto j = nlohmann::json::parse(r.out, nullptr, false);
    if (!j.is_array()) return out;
    for (const auto& e : j)
      if (e.value("mac", "") == "00:00:00:00:00:00" && e.contains("dst"))
        out.insert(e["dst"].get<std::string>());
    return out;
  }

  static Ipv4Addr ip(const char* s) { return Ipv4Addr::parse(s); }
};

TEST_F(FdbTest, FdbOnlyDeviceHasNoRemoteAndLearns) {
  auto v = find_vxlan("vxlan10042");
  ASSERT_TRUE(v);
  EXPECT_FALSE(v->remote);
  EXPECT_TRUE(v->learning);
  EXPECT_TRUE(list_flood_destinations("vxlan10042").empty());
  // ensure keeps a matching FDB-only device.
  VxlanSpec s;
  s.name = "vxlan10042";
  s.vni = 10042;
  s.local = ip("192.0.2.1");
  s.fdb_only = true;
  s.learning = true;
  EXPECT_EQ(ensure_vxlan(s), EnsureAction::kKept);
}

TEST_F(FdbTest, FdbOnlySpecRejectsARemote) {
  VxlanSpec s;
  s.name = "vxlan7";
  s.vni = 7;
  s.fdb_only = true;
  s.remote = ip("192.0.2.9");
  EXPECT_THROW(create_vxlan(s), std::invalid_argument);
}

TEST_F(FdbTest, AddListDelete) {
  add_flood_destination("vxlan10042", ip("192.0.2.3"));
  add_flood_destination("vxlan10042", ip("192.0.2.2"));
  add_flood_destination("vxlan10042", ip("192.0.2.2"));  // again: kept, not duplicated
  EXPECT_EQ(list_flood_destinations("vxlan10042"),
            (std::vector<Ipv4Addr>{ip("192.0.2.2"), ip("192.0.2.3")}));
  EXPECT_EQ(bridge_fdb_dsts("vxlan10042"), (std::set<std::string>{"192.0.2.2", "192.0.2.3"}));

  EXPECT_TRUE(delete_flood_destination("vxlan10042", ip("192.0.2.2")));
  EXPECT_FALSE(delete_flood_destination("vxlan10042", ip("192.0.2.2")));
  EXPECT_EQ(list_flood_destinations("vxlan10042"), (std::vector<Ipv4Addr>{ip("192.0.2.3")}));
  EXPECT_EQ(bridge_fdb_dsts("vxlan10042"), (std::set<std::string>{"192.0.2.3"}));
}

TEST_F(FdbTest, EnsureLeavesExactlyTheWantedSet) {
  add_flood_destination("vxlan10042", ip("192.0.2.5"));
  add_flood_destination("vxlan10042", ip("192.0.2.6"));
  auto c = ensure_flood_destinations("vxlan10042", {ip("192.0.2.6"), ip("192.0.2.7")});
  EXPECT_EQ(c.added, (std::vector<Ipv4Addr>{ip("192.0.2.7")}));
  EXPECT_EQ(c.removed, (std::vector<Ipv4Addr>{ip("192.0.2.5")}));
  EXPECT_EQ(bridge_fdb_dsts("vxlan10042"), (std::set<std::string>{"192.0.2.6", "192.0.2.7"}));
  EXPECT_FALSE(
      ensure_flood_destinations("vxlan10042", {ip("192.0.2.6"), ip("192.0.2.7")}).changed());
  ensure_flood_destinations("vxlan10042", {});
  EXPECT_TRUE(bridge_fdb_dsts("vxlan10042").empty());
}

TEST_F(FdbTest, LearnedEntriesOfOtherMacsAreLeftAlone) {
  ASSERT_EQ(testing::run_cmd("bridge fdb add 02:00:00:00:00:01 dev vxlan10042 dst 192.0.2.8 self "
                             "permanent")
                .status,
            0);
  ensure_flood_destinations("vxlan10042", {ip("192.0.2.9")});
  auto r = testing::run_cmd("bridge fdb show dev vxlan10042");
  EXPECT_NE(r.out.find("02:00:00:00:00:01"), std::string::npos) << r.out;
  EXPECT_EQ(list_flood_destinations("vxlan10042"), (std::vector<Ipv4Addr>{ip("192.0.2.9")}));
}

TEST_F(FdbTest, MissingDeviceIsNamedInTheError) {
  try {
    add_flood_destination("vxlan-nope", ip("192.0.2.2"));
    FAIL() << "no error";
  } catch (const NetlinkError& e) {
    EXPECT_NE(std::string(e.what()).find("vxlan-nope"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kohaku::netlink
