#include "host/overlay/runner_registry.h"

#include <gtest/gtest.h>

#include "common/api_error.h"

namespace kohaku {
namespace {

Ipv4Addr ip(const char* text) {
  return Ipv4Addr::parse(text);
}

// Three runner ids (NODE_BITS=2): small enough to fill.
class RunnerRegistryTest : public ::testing::Test {
 protected:
  RunnerRegistry reg{SubnetScheme::parse("10.0.0.0/22/2/8")};

  RunnerAllocation add(const std::string& host, const char* addr, int64_t now) {
    return reg
        .register_runner(host, ip(addr), std::string("http://") + addr + ":8001", {}, now, true)
        .allocation;
  }
};

TEST_F(RunnerRegistryTest, HandsOutLowestFreeIdAndReusesReleasedOnes) {
  EXPECT_EQ(add("a", "192.168.0.1", 1).id, 1u);
  EXPECT_EQ(add("b", "192.168.0.2", 2).id, 2u);
  EXPECT_EQ(add("c", "192.168.0.3", 3).id, 3u);
  EXPECT_EQ(reg.free_id_count(), 0u);
  auto released = reg.release(2);
  EXPECT_EQ(released.hostname, "b");
  EXPECT_EQ(reg.find_hostname("b")->id, 0u) << "a released node stays known, without overlay";
  EXPECT_EQ(add("d", "192.168.0.4", 4).id, 2u);
  EXPECT_EQ(reg.find_id(2)->hostname, "d");
  EXPECT_EQ(reg.find_id(2)->subnet.to_string(), "10.0.2.0/24");
}

TEST_F(RunnerRegistryTest, ReconnectKeepsIdAndSubnetAlsoWithNewPhysicalIp) {
  add("a", "192.168.0.1", 1);
  add("b", "192.168.0.2", 2);
  auto again = reg.register_runner("b", ip("192.168.9.9"), "http://192.168.9.9:8001", {}, 50, true);
  EXPECT_FALSE(again.created);
  EXPECT_EQ(again.allocation.id, 2u);
  EXPECT_EQ(again.allocation.subnet.to_string(), "10.0.2.0/24");
  EXPECT_EQ(again.allocation.physical_ip, ip("192.168.9.9"));
  EXPECT_EQ(reg.find_hostname("b")->url, "http://192.168.9.9:8001");
  EXPECT_EQ(reg.allocations().size(), 2u);
}

TEST_F(RunnerRegistryTest, FullPoolEvictsLeastRecentlyUsedInactiveRunner) {
  add("a", "192.168.0.1", 1000);
  add("b", "192.168.0.2", 2000);
  add("c", "192.168.0.3", 3000);
  reg.heartbeat("a", 9000);             // a is now the most recently used
  auto gone = reg.expire(12000, 5000);  // b and c have not been seen for > 5 s
  ASSERT_EQ(gone.size(), 2u);
  EXPECT_TRUE(reg.find_hostname("a")->is_active);

  auto d = reg.register_runner("d", ip("192.168.0.4"), "http://192.168.0.4:1", {}, 13000, true);
  ASSERT_TRUE(d.evicted.has_value());
  EXPECT_EQ(d.evicted->hostname, "b");  // least recently used among the inactive ones
  EXPECT_EQ(d.evicted->id, 2u);
  EXPECT_EQ(d.allocation.id, 2u);
  EXPECT_EQ(reg.find_hostname("b")->id, 0u);
  EXPECT_EQ(reg.find_id(3)->hostname, "c");
}

TEST_F(RunnerRegistryTest, FullPoolOfActiveRunnersRegistersWithoutAnIdAndSaysWhy) {
  add("a", "192.168.0.1", 1);
  add("b", "192.168.0.2", 2);
  add("c", "192.168.0.3", 3);
  auto d = reg.register_runner("d", ip("192.168.0.4"), "http://192.168.0.4:1", {}, 4, true);
  EXPECT_EQ(d.allocation.id, 0u);
  EXPECT_NE(d.no_overlay_reason.find("pool of 3"), std::string::npos) << d.no_overlay_reason;
  EXPECT_NE(d.no_overlay_reason.find("active"), std::string::npos) << d.no_overlay_reason;
  ASSERT_NE(reg.find_hostname("d"), nullptr);
  EXPECT_FALSE(reg.find_hostname("d")->has_overlay());
  EXPECT_FALSE(reg.could_allocate("d"));
  // Once a holder is inactive its id can be had: the node is told to register again.
  reg.expire(40000, 30000);
  EXPECT_TRUE(reg.could_allocate("d"));
}

TEST_F(RunnerRegistryTest, InactiveAfterTimeoutAndActiveAgainOnHeartbeat) {
  add("a", "192.168.0.1", 0);
  EXPECT_TRUE(reg.expire(30000, 30000).empty()) << "exactly the timeout is still alive";
  auto gone = reg.expire(30001, 30000);
  ASSERT_EQ(gone.size(), 1u);
  EXPECT_FALSE(reg.find_hostname("a")->is_active);
  ASSERT_NE(reg.heartbeat("a", 30002), nullptr);
  EXPECT_TRUE(reg.find_hostname("a")->is_active);
  EXPECT_EQ(reg.find_hostname("a")->last_used_ms, 30002);
  EXPECT_EQ(reg.heartbeat("nobody", 1), nullptr);
}

TEST_F(RunnerRegistryTest, PlaceholderIsTakenOverByRunnerWithItsPhysicalIp) {
  auto p = reg.adopt_placeholder(3, ip("192.168.0.7"), 1);
  ASSERT_TRUE(p.has_value());
  EXPECT_EQ(p->hostname, "runner_3");
  EXPECT_FALSE(p->is_active);
  EXPECT_FALSE(reg.adopt_placeholder(3, ip("192.168.0.8"), 1)) << "id already held";
  EXPECT_FALSE(reg.adopt_placeholder(4, ip("192.168.0.8"), 1)) << "outside the pool";
  EXPECT_EQ(reg.resolve("runner_3")->hostname, "runner_3");

  EXPECT_EQ(add("other", "192.168.0.1", 2).id, 1u) << "another address gets the lowest free id";
  auto taker = add("gpu7", "192.168.0.7", 3);
  EXPECT_EQ(taker.id, 3u);
  EXPECT_EQ(reg.find_hostname("runner_3"), nullptr);
  EXPECT_EQ(reg.resolve("runner_3")->hostname, "gpu7") << "runner_<id> names the holder";
  EXPECT_TRUE(reg.nodes().size() == 2u);
}

TEST_F(RunnerRegistryTest, NodesWithoutOverlayNeverTouchIds) {
  for (int i = 0; i < 5; ++i)
    reg.register_runner("n" + std::to_string(i), ip("192.168.0.1"), "http://192.168.0.1:1", {}, i,
                        false);
  EXPECT_EQ(reg.nodes().size(), 5u);
  EXPECT_TRUE(reg.allocations().empty());
  // Enabling the overlay later: the known node gets an id on its next registration.
  EXPECT_EQ(add("n3", "192.168.0.1", 10).id, 1u);
}

TEST_F(RunnerRegistryTest, JsonRoundTripAndReplayDropIdsOutsideThePool) {
  auto a = add("a", "192.168.0.1", 5);
  auto copy = RunnerRegistry::from_json(RunnerRegistry::to_json(a));
  EXPECT_EQ(copy.hostname, "a");
  EXPECT_EQ(copy.id, 1u);
  EXPECT_EQ(copy.physical_ip, a.physical_ip);
  EXPECT_EQ(copy.last_used_ms, 5);

  RunnerRegistry fresh{SubnetScheme::parse("10.0.0.0/22/2/8")};
  copy.id = 9;  // e.g. NODE_BITS shrank between runs
  fresh.put(copy);
  EXPECT_EQ(fresh.find_hostname("a")->id, 0u);
  EXPECT_THROW(RunnerRegistry::from_json(nlohmann::json{{"id", 1}}), std::invalid_argument);
}

TEST_F(RunnerRegistryTest, DirtyListNamesEveryTouchedHostOnce) {
  add("a", "192.168.0.1", 1);
  reg.heartbeat("a", 2);
  add("b", "192.168.0.2", 3);
  auto dirty = reg.take_dirty();
  EXPECT_EQ(dirty, (std::vector<std::string>{"a", "b"}));
  EXPECT_TRUE(reg.take_dirty().empty());
}

// Ids, placeholders and expiry come from indexes rather than walks over every runner: checked
// against the answers a walk gives, through releases, replays out of order and heartbeats.
TEST(RunnerRegistryIndexes, MatchWhatAWalkOverEveryRunnerWouldFind) {
  RunnerRegistry reg{SubnetScheme::parse("10.0.0.0/8/12/12")};  // 4095 ids
  auto add = [&](const std::string& host, uint32_t phys, int64_t now) {
    return reg.register_runner(host, Ipv4Addr{phys}, "http://x:1", {}, now, true).allocation;
  };
  for (uint32_t i = 1; i <= 300; ++i) EXPECT_EQ(add("h" + std::to_string(i), i, 1000).id, i);
  // Released ids come back lowest first.
  for (uint32_t id : {250u, 17u, 120u}) reg.release(id);
  EXPECT_EQ(add("n1", 9001, 1000).id, 17u);
  EXPECT_EQ(add("n2", 9002, 1000).id, 120u);
  // A replayed record far above the others: the ids it skipped stay free, lowest first.
  RunnerAllocation far = *reg.find_id(5);
  far.hostname = "far";
  far.id = 400;
  reg.put(far);
  EXPECT_EQ(add("n3", 9003, 1000).id, 250u);
  EXPECT_EQ(add("n4", 9004, 1000).id, 301u);
  EXPECT_EQ(reg.free_id_count(), 4095u - 302u);

  // Placeholders at one address: a registration from there takes the lowest, others stay.
  reg.release(30);
  reg.release(20);
  ASSERT_TRUE(reg.adopt_placeholder(30, Ipv4Addr{7777}, 1000));
  ASSERT_TRUE(reg.adopt_placeholder(20, Ipv4Addr{7777}, 1000));
  EXPECT_EQ(add("p1", 7777, 1000).id, 20u);
  EXPECT_EQ(add("p2", 7778, 1000).id, 302u);  // another address: a fresh id
  EXPECT_EQ(add("p3", 7777, 1000).id, 30u);
  EXPECT_EQ(add("p4", 7777, 1000).id, 303u);  // none left there

  // Expiry: the runners seen again stay active; the rest expire once, in hostname order.
  for (uint32_t i = 1; i <= 300; i += 2)
    if (reg.find_hostname("h" + std::to_string(i)))
      reg.heartbeat("h" + std::to_string(i), 5000, false);
  auto gone = reg.expire(1000 + 3001, 3000);
  std::vector<std::string> want;
  for (const auto& a : reg.nodes())
    if (a.last_seen_ms == 1000) want.push_back(a.hostname);
  std::vector<std::string> got;
  for (const auto& a : gone) got.push_back(a.hostname);
  EXPECT_EQ(got, want);
  EXPECT_FALSE(want.empty());
  EXPECT_TRUE(reg.expire(1000 + 3001, 3000).empty());
  for (const auto& a : reg.nodes()) EXPECT_EQ(a.is_active, a.last_seen_ms == 5000) << a.hostname;
  EXPECT_EQ(reg.expire(5000 + 3001, 3000).size(), 150u);
}

// A change whose journal write failed is rolled back (OverlayService::commit()): the registry must
// then behave exactly like one that never saw it, indexes included. Each window of changes below
// is undone on one registry and never made on its twin; afterwards both must hand out the same
// ids and subnets, see the same placeholders and expire the same runners.
TEST(RunnerRegistryRollback, LeavesIdsPlaceholdersAndExpiryAsIfNothingHappened) {
  const auto scheme = SubnetScheme::parse("10.0.0.0/8/12/12");  // 4095 ids
  RunnerRegistry undone{scheme}, twin{scheme};
  auto add = [](RunnerRegistry& r, const std::string& host, uint32_t phys, int64_t now) {
    return r.register_runner(host, Ipv4Addr{phys}, "http://x:1", {}, now, true).allocation;
  };
  auto dump = [](const RunnerRegistry& r) {
    nlohmann::json j = {{"nodes", nlohmann::json::array()},
                        {"allocations", nlohmann::json::array()},
                        {"free", r.free_id_count()}};
    for (const auto& a : r.nodes()) j["nodes"].push_back(RunnerRegistry::to_json(a));
    for (const auto& a : r.allocations()) j["allocations"].push_back(RunnerRegistry::to_json(a));
    return j;
  };
  for (RunnerRegistry* r : {&undone, &twin}) {
    for (uint32_t i = 1; i <= 5; ++i) add(*r, "h" + std::to_string(i), i, 1000);
    r->release(3);  // id 3 free below the high-water mark
    ASSERT_TRUE(r->adopt_placeholder(8, Ipv4Addr{7777}, 1000));  // 6 and 7 skipped, free
    r->heartbeat("h1", 2000);
    r->take_dirty();
    r->accept();
  }
  const auto before = dump(twin);
  ASSERT_EQ(dump(undone), before);

  auto undo = [&](const char* what, auto change) {
    change();
    EXPECT_FALSE(undone.take_dirty().empty()) << what;
    undone.rollback();
    EXPECT_EQ(dump(undone), before) << "rolling back " << what;
    EXPECT_TRUE(undone.take_dirty().empty()) << what;
  };
  undo("a registration (free id below the mark)",
       [&] { EXPECT_EQ(add(undone, "new1", 9001, 3000).id, 3u); });
  undo("several registrations, one above the mark", [&] {
    EXPECT_EQ(add(undone, "new2", 9002, 3000).id, 3u);
    EXPECT_EQ(add(undone, "new3", 9003, 3000).id, 6u);
    EXPECT_EQ(add(undone, "new4", 9004, 3000).id, 7u);
    EXPECT_EQ(add(undone, "new5", 9005, 3000).id, 9u);
    undone.heartbeat("new5", 3500);
  });
  undo("a placeholder takeover", [&] { EXPECT_EQ(add(undone, "tk", 7777, 3000).id, 8u); });
  undo("a new placeholder",
       [&] { ASSERT_TRUE(undone.adopt_placeholder(6, Ipv4Addr{8888}, 3000)); });
  undo("a placeholder far above the mark",
       [&] { ASSERT_TRUE(undone.adopt_placeholder(4000, Ipv4Addr{8889}, 3000)); });
  undo("an expiry", [&] { EXPECT_EQ(undone.expire(1000 + 6001, 6000).size(), 4u); });
  undo("a recorded heartbeat", [&] { ASSERT_NE(undone.heartbeat("h2", 5000), nullptr); });
  undo("a credential", [&] { EXPECT_TRUE(undone.set_credential("h1", "secret")); });
  undo("a release and its id handed on", [&] {
    undone.release(2);
    EXPECT_EQ(add(undone, "ev", 9010, 3000).id, 2u);
  });

  // The same operations now give the same answers on both.
  for (RunnerRegistry* r : {&undone, &twin}) {
    SCOPED_TRACE(r == &undone ? "rolled back" : "twin");
    auto n1 = add(*r, "n1", 9001, 4000);
    EXPECT_EQ(n1.id, 3u) << "the id (and subnet) the undone registration had is free again";
    EXPECT_EQ(n1.subnet.to_string(), scheme.runner_subnet(3).to_string());
    EXPECT_EQ(add(*r, "n2", 9002, 4000).id, 6u);
    EXPECT_EQ(add(*r, "n3", 9003, 4000).id, 7u);
    EXPECT_EQ(add(*r, "n4", 9004, 4000).id, 9u);
    EXPECT_EQ(add(*r, "n5", 8888, 4000).id, 10u) << "no placeholder left at 8888";
    EXPECT_EQ(add(*r, "n6", 8889, 4000).id, 11u) << "no placeholder left at 8889";
    EXPECT_EQ(add(*r, "n7", 7777, 4000).id, 8u) << "the placeholder is still there";
    // h2..h5 were seen at 1000, h1 at 2000; nothing of the undone runners is pending.
    std::vector<std::string> gone;
    for (const auto& a : r->expire(1000 + 6001, 6000)) gone.push_back(a.hostname);
    EXPECT_EQ(gone, (std::vector<std::string>{"h2", "h3", "h4", "h5"}));
    gone.clear();
    for (const auto& a : r->expire(3500 + 6001, 6000)) gone.push_back(a.hostname);
    EXPECT_EQ(gone, (std::vector<std::string>{"h1"}));
    EXPECT_TRUE(r->expire(4000 + 6000, 6000).empty());
    EXPECT_EQ(r->find_hostname("h1")->credential, "");
  }
  EXPECT_EQ(dump(undone), dump(twin));
}

TEST(RunnerRegistryNames, ParsesPlaceholderNamesStrictly) {
  EXPECT_EQ(RunnerRegistry::parse_placeholder_name("runner_12"), 12u);
  for (const char* bad : {"runner_", "runner_0", "runner_012", "runner_1x", "runner", "x_1"})
    EXPECT_EQ(RunnerRegistry::parse_placeholder_name(bad), 0u) << bad;
}

}  // namespace
}  // namespace kohaku
