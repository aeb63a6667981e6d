#include "host/l2/l2_networks.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <atomic>
#include <filesystem>
#include <thread>

#include "host/api/l2_network_request.h"
#include "support/api_status.h"
#include "support/temp_dir.h"

namespace kohaku {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using test_support::TempDir;

using test_support::message_of;
using test_support::status_of;

// As POST /api/networks does it: the body parsed into the typed request, then created.
json create(L2NetworkRegistry& reg, const json& body) {
  return reg.create(parse_l2_network_create(body));
}

class L2NetworksTest : public ::testing::Test {
 protected:
  L2NetworksTest() {
    runners_["r1"] = {"r1", Ipv4Addr::parse("192.168.50.11"), "http://192.168.50.11:8001", false};
    runners_["r2"] = {"r2", Ipv4Addr::parse("192.168.50.12"), "http://192.168.50.12:8001", false};
    runners_["r3"] = {"r3", Ipv4Addr::parse("192.168.50.13"), "http://192.168.50.13:8001", false};
    runners_["novx"] = {"novx", Ipv4Addr::parse("192.168.50.14"), "http://192.168.50.14:8001",
                        true};
  }

  std::unique_ptr<L2NetworkRegistry> open() {
    L2NetworkRegistry::Options o;
    o.state_dir = dir_.path();
    o.hub_vni_first = 101;
    o.hub_vni_last = 163;
    o.overlay_network = Ipv4Cidr::parse("10.128.0.0/12");
    o.quarantine_ms = 300'000;
    o.docker_block_size = block_size_;
    auto r = std::make_unique<L2NetworkRegistry>(
        o,
        [this](const std::string& n) -> std::optional<L2RunnerInfo> {
          auto it = runners_.find(n);
          if (it == runners_.end()) return std::nullopt;
          return it->second;
        },
        [this] { return now_.load(); });
    r->set_listener([this](const L2Change& c) { changes_.push_back(c); });
    return r;
  }

  TempDir dir_;
  std::map<std::string, L2RunnerInfo> runners_;
  std::atomic<int64_t> now_{1'000'000};
  uint32_t block_size_ = 32;
  std::vector<L2Change> changes_;
};

TEST(L2Vni, Djb2ComputedByHand) {
  // h("") = 5381; h("a") = 5381*33 + 97 = 177670; h("ab") = 177670*33 + 98 = 5863208.
  EXPECT_EQ(djb2(""), 5381u);
  EXPECT_EQ(djb2("a"), 177670u);
  EXPECT_EQ(djb2("ab"), 5863208u);
  EXPECT_EQ(default_l2_vni("a"), 10000u + 177670u % 6000u);  // 10000 + 3670
  EXPECT_EQ(default_l2_vni("a"), 13670u);
  EXPECT_EQ(default_l2_vni("ab"), 10000u + 5863208u % 6000u);  // 10000 + 1208
  EXPECT_EQ(default_l2_vni("ab"), 11208u);
  // "train": t=116 r=114 a=97 i=105 n=110, wrapping at 2^32 on the last step:
  // 5381 -> 177689 -> 5863851 -> 193507180 -> 6385737045 mod 2^32 = 2090769749
  //      -> 2090769749*33 + 110 = 68995401827 mod 2^32 = 275925091; 275925091 % 6000 = 3091
  EXPECT_EQ(djb2("train"), 275925091u);
  EXPECT_EQ(default_l2_vni("train"), 13091u);
}

TEST_F(L2NetworksTest, CreateDefaultsAndIdempotence) {
  auto reg = open();
  auto a = create(*reg, {{"name", "train"}, {"subnet", "10.200.0.0/24"}});
  EXPECT_TRUE(a["created"]);
  EXPECT_EQ(a["gateway"], "10.200.0.1");
  EXPECT_EQ(a["vni"], 13091);
  EXPECT_EQ(a["outbound_nat"], true);
  auto again = create(*reg, {{"name", "train"}, {"subnet", "10.200.0.0/24"}, {"vni", 13091}});
  EXPECT_FALSE(again["created"]);
  EXPECT_EQ(
      status_of([&] {
        create(*reg, {{"name", "train"}, {"subnet", "10.200.0.0/24"}, {"outbound_nat", false}});
      }),
      409);
  EXPECT_NE(message_of([&] {
              create(*reg, {{"name", "train"}, {"subnet", "10.201.0.0/24"}});
            }).find("subnet 10.200.0.0/24 vs 10.201.0.0/24"),
            std::string::npos);
}

TEST_F(L2NetworksTest, NameRulesAndBadInput) {
  auto reg = open();
  for (std::string bad :
       std::vector<std::string>{"default", "", "a b", "x/y", "é", std::string(65, 'a')})
    EXPECT_EQ(status_of([&] {
                create(*reg, {{"name", bad}, {"subnet", "10.200.0.0/24"}});
              }),
              422)
        << bad;
  EXPECT_EQ(status_of([&] {
              create(*reg, {{"name", "ok_-9"}, {"subnet", "10.200.0.5/24"}});
            }),
            422);
  EXPECT_EQ(status_of([&] {
              create(*reg, {{"name", "n"}, {"subnet", "10.200.0.0/24"}, {"gateway", "10.201.0.1"}});
            }),
            422);
  EXPECT_EQ(status_of([&] {
              create(*reg, {{"name", "n"}, {"subnet", "10.200.0.0/24"}, {"vni", 0}});
            }),
            422);
  EXPECT_EQ(status_of([&] {
              create(*reg, {{"name", "n"}, {"subnet", "10.200.0.0/24"}, {"color", "red"}});
            }),
            422);
  EXPECT_EQ(reg->list(std::nullopt)["networks"].size(), 0u);  // nothing changed
}

TEST_F(L2NetworksTest, VniCollisionsAreRefused) {
  auto reg = open();
  create(*reg, {{"name", "a"}, {"subnet", "10.200.0.0/24"}});
  // Another name with the same VNI: given explicitly here (the hash rule is the same check).
  auto msg = message_of([&] {
    create(*reg, {{"name", "b"}, {"subnet", "10.201.0.0/24"}, {"vni", default_l2_vni("a")}});
  });
  EXPECT_NE(msg.find("already used by network 'a'"), std::string::npos) << msg;
  // Two names that really hash to the same VNI (found by search over short names).
  std::string x, y;
  std::map<uint32_t, std::string> seen;
  for (int i = 0; i < 100000 && x.empty(); ++i) {
    std::string n = "n" + std::to_string(i);
    auto [it, fresh] = seen.emplace(default_l2_vni(n), n);
    if (!fresh) x = it->second, y = n;
  }
  ASSERT_FALSE(x.empty());
  create(*reg, {{"name", x}, {"subnet", "10.210.0.0/24"}});
  EXPECT_EQ(status_of([&] { create(*reg, {{"name", y}, {"subnet", "10.211.0.0/24"}}); }), 409);
  msg = message_of([&] {
    create(*reg, {{"name", "c"}, {"subnet", "10.202.0.0/24"}, {"vni", 150}});
  });
  EXPECT_NE(msg.find("hub-and-spoke range 101..163"), std::string::npos) << msg;
  EXPECT_EQ(status_of([&] { create(*reg, {{"name", "d"}, {"subnet", "10.200.0.128/25"}}); }), 409);
  EXPECT_EQ(status_of([&] { create(*reg, {{"name", "e"}, {"subnet", "10.130.0.0/16"}}); }), 409);
}

TEST_F(L2NetworksTest, MembersJoinLeaveAndVxlanDisabled) {
  auto reg = open();
  create(*reg, {{"name", "t"}, {"subnet", "10.200.0.0/24"}, {"runners", {"r1", "r2"}}});
  auto view = reg->runner_view("t", "r1");
  ASSERT_TRUE(view);
  EXPECT_EQ(view->to_json()["peers"], json::array({"192.168.50.12"}));
  reg->join("t", "r3");
  EXPECT_EQ(reg->runner_view("t", "r1")->to_json()["peers"],
            json::array({"192.168.50.12", "192.168.50.13"}));
  ASSERT_EQ(changes_.size(), 2u);
  EXPECT_EQ(changes_[1].runners, (std::set<std::string>{"r1", "r2", "r3"}));
  reg->leave("t", "r2", false);
  EXPECT_FALSE(reg->runner_view("t", "r2"));
  EXPECT_EQ(changes_.back().runners, (std::set<std::string>{"r1", "r2", "r3"}));
  EXPECT_EQ(reg->runner_view("t", "r3")->to_json()["peers"], json::array({"192.168.50.11"}));

  auto msg = message_of([&] { reg->join("t", "novx"); });
  EXPECT_NE(msg.find("'novx'"), std::string::npos);
  EXPECT_EQ(status_of([&] { reg->join("t", "novx"); }), 412);
  EXPECT_EQ(status_of([&] {
              create(*reg, {{"name", "u"}, {"subnet", "10.201.0.0/24"}, {"runners", {"novx"}}});
            }),
            412);
  EXPECT_EQ(status_of([&] { reg->join("t", "ghost"); }), 404);
  EXPECT_EQ(status_of([&] { reg->join("nope", "r1"); }), 404);
}

TEST_F(L2NetworksTest, IpamUniqueUnderConcurrency) {
  auto reg = open();
  create(*reg, {{"name", "t"}, {"subnet", "10.200.0.0/24"}, {"runners", {"r1", "r2", "r3"}}});
  std::vector<std::thread> threads;
  std::mutex mu;
  std::set<std::string> ips;
  std::atomic<int> errors{0};
  for (int i = 0; i < 60; ++i)
    threads.emplace_back([&, i] {
      try {
        auto a = reg->allocate("t", "r" + std::to_string(1 + i % 3), "c" + std::to_string(i));
        std::lock_guard lock(mu);
        ips.insert(a["ip"].get<std::string>());
      } catch (...) {
        ++errors;
      }
    });
  for (auto& t : threads) t.join();
  EXPECT_EQ(errors, 0);
  EXPECT_EQ(ips.size(), 60u);
  EXPECT_FALSE(ips.count("10.200.0.1"));  // the gateway
  // Idempotent per container; another runner claiming it is refused.
  auto again = reg->allocate("t", "r1", "c0");
  EXPECT_TRUE(ips.count(again["ip"].get<std::string>()));
  EXPECT_EQ(status_of([&] { reg->allocate("t", "r2", "c0"); }), 409);
  EXPECT_EQ(status_of([&] { reg->allocate("t", "novx", "x"); }), 409);  // not a member
}

TEST_F(L2NetworksTest, ReleasedAddressesWaitForTheQuarantine) {
  auto reg = open();
  create(*reg, {{"name", "t"}, {"subnet", "10.200.0.0/29"}, {"runners", {"r1"}}});
  // Hosts .2 .. .6 (.1 is the gateway): five addresses.
  for (int i = 0; i < 5; ++i) reg->allocate("t", "r1", "c" + std::to_string(i));
  EXPECT_EQ(status_of([&] { reg->allocate("t", "r1", "full"); }), 409);
  auto rel = reg->release("t", std::nullopt, std::string("c2"));
  EXPECT_EQ(rel["ip"], "10.200.0.4");
  now_ += 299'000;
  EXPECT_EQ(status_of([&] { reg->allocate("t", "r1", "new"); }), 409);  // still quarantined
  now_ += 2'000;
  EXPECT_EQ(reg->allocate("t", "r1", "new")["ip"], "10.200.0.4");
  EXPECT_EQ(status_of([&] { reg->release("t", std::string("10.200.0.77"), std::nullopt); }), 404);
}

TEST_F(L2NetworksTest, RoundRobinDelaysReuse) {
  auto reg = open();
  create(*reg, {{"name", "t"}, {"subnet", "10.200.0.0/24"}, {"runners", {"r1"}}});
  auto a = reg->allocate("t", "r1", "a")["ip"];
  reg->release("t", a.get<std::string>(), std::nullopt);
  now_ += 600'000;
  EXPECT_NE(reg->allocate("t", "r1", "b")["ip"], a);
}

TEST_F(L2NetworksTest, LeaveAndDeleteGuardAllocations) {
  auto reg = open();
  create(*reg, {{"name", "t"}, {"subnet", "10.200.0.0/24"}, {"runners", {"r1", "r2"}}});
  reg->allocate("t", "r2", "w");
  EXPECT_EQ(status_of([&] { reg->leave("t", "r2", false); }), 409);
  EXPECT_EQ(status_of([&] { reg->remove("t", false); }), 409);
  reg->leave("t", "r2", true);
  EXPECT_EQ(reg->get("t")["allocated"], 0);
  reg->remove("t", false);
  EXPECT_EQ(status_of([&] { reg->get("t"); }), 404);
}

TEST_F(L2NetworksTest, SurvivesRestart) {
  std::string ip;
  {
    auto reg = open();
    create(*reg, {{"name", "t"}, {"subnet", "10.200.0.0/24"}, {"runners", {"r1", "r2"}}});
    create(*reg, {{"name", "gone"}, {"subnet", "10.201.0.0/24"}});
    reg->remove("gone", false);
    ip = reg->allocate("t", "r1", "w1")["ip"];
    reg->allocate("t", "r1", "w2");
    reg->release("t", std::nullopt, std::string("w2"));
    reg->leave("t", "r2", false);
  }
  auto reg = open();
  auto t = reg->get("t");
  EXPECT_EQ(t["members"].size(), 1u);
  EXPECT_EQ(t["leases"][0]["ip"], ip);
  EXPECT_EQ(t["quarantined"], 1);
  EXPECT_EQ(status_of([&] { reg->get("gone"); }), 404);
  EXPECT_EQ(reg->allocate("t", "r1", "w1")["ip"], ip);  // still held, not handed out again
  EXPECT_NE(reg->allocate("t", "r1", "w3")["ip"], ip);
}

TEST_F(L2NetworksTest, DockerBlocksAreAlignedDisjointAndIdempotent) {
  auto reg = open();
  create(*reg, {{"name", "t"}, {"subnet", "10.200.0.0/24"}, {"runners", {"r1", "r2"}}});
  // From the top: .224/27 holds the broadcast address, so the first block is .192/27.
  auto b1 = reg->allocate_block("t", "r1");
  EXPECT_EQ(b1["cidr"], "10.200.0.192/27");
  EXPECT_EQ(b1["created"], true);
  EXPECT_EQ(b1["size"], 32);
  auto b2 = reg->allocate_block("t", "r2");
  EXPECT_EQ(b2["cidr"], "10.200.0.160/27");
  auto again = reg->allocate_block("t", "r1");
  EXPECT_EQ(again["cidr"], "10.200.0.192/27");
  EXPECT_EQ(again["created"], false);
  auto g = reg->get("t");
  EXPECT_EQ(g["blocks"], json::parse(R"([{"runner": "r1", "cidr": "10.200.0.192/27"},
                                        {"runner": "r2", "cidr": "10.200.0.160/27"}])"));

  EXPECT_EQ(status_of([&] { reg->allocate_block("t", "r3"); }), 409);     // not a member
  EXPECT_EQ(status_of([&] { reg->allocate_block("t", "ghost"); }), 404);  // unknown runner
  EXPECT_EQ(status_of([&] { reg->allocate_block("t", "novx"); }), 412);   // VXLAN disabled
  EXPECT_EQ(status_of([&] { reg->allocate_block("nope", "r1"); }), 404);
  EXPECT_EQ(status_of([&] { reg->allocate_block("t", ""); }), 422);
}

TEST_F(L2NetworksTest, OrdinaryAllocationsNeverEnterABlock) {
  // /27: 32 addresses; with 8-address blocks .24/29 (broadcast inside) is skipped and .16/29 taken.
  block_size_ = 8;
  auto reg = open();
  create(*reg, {{"name", "t"}, {"subnet", "10.200.0.0/27"}, {"runners", {"r1", "r2"}}});
  EXPECT_EQ(reg->allocate_block("t", "r2")["cidr"], "10.200.0.16/29");
  std::set<std::string> ips;
  for (int i = 0;; ++i) {
    try {
      ips.insert(reg->allocate("t", "r1", "c" + std::to_string(i))["ip"].get<std::string>());
    } catch (const DomainError& e) {
      EXPECT_EQ(e.kind(), ErrorKind::kConflict);
      break;
    }
  }
  // 32 - network - broadcast - gateway - 8 in the block.
  EXPECT_EQ(ips.size(), 21u);
  for (int h = 16; h < 24; ++h) EXPECT_FALSE(ips.count("10.200.0." + std::to_string(h))) << h;
}

TEST_F(L2NetworksTest, BlocksHalveWhenNoFullSizeBlockIsFree) {
  block_size_ = 16;
  auto reg = open();
  create(*reg, {{"name", "t"}, {"subnet", "10.200.0.0/28"}, {"runners", {"r1", "r2", "r3"}}});
  // /28 = 16 addresses: the only 16-block holds network, gateway and broadcast; an 8-block at
  // the top holds the broadcast: .0/29 holds network and gateway. So 4-blocks: .8/30 first
  // from the top free one (.12/30 holds the broadcast), then .4/30; then nothing is left.
  EXPECT_EQ(reg->allocate_block("t", "r1")["cidr"], "10.200.0.8/30");
  EXPECT_EQ(reg->allocate_block("t", "r2")["cidr"], "10.200.0.4/30");
  auto msg = message_of([&] { reg->allocate_block("t", "r3"); });
  EXPECT_NE(msg.find("no free address block"), std::string::npos) << msg;
  EXPECT_EQ(status_of([&] { reg->allocate_block("t", "r3"); }), 409);
}

TEST_F(L2NetworksTest, BlocksAvoidLeasesAndQuarantine) {
  block_size_ = 8;
  auto reg = open();
  create(*reg, {{"name", "t"}, {"subnet", "10.200.0.0/27"}, {"runners", {"r1", "r2"}}});
  // Lease round robin from the bottom up to .17, then release .17: quarantined.
  for (int i = 2; i <= 17; ++i) reg->allocate("t", "r1", "c" + std::to_string(i));
  reg->release("t", std::nullopt, std::string("c17"));
  // No 8-block is free: .24/29 holds the broadcast, .16/29 the quarantined .17, .8/29 and .0/29
  // leases. Of the 4-blocks from the top, .28/30 holds the broadcast, .24/30 is free.
  EXPECT_EQ(reg->allocate_block("t", "r2")["cidr"], "10.200.0.24/30");
  // Leaving quarantines .24/30, so after rejoining r2 gets the next free one down.
  reg->allocate("t", "r1", "c18");  // .18: ordinary allocations skip the block
  now_ += 301'000;
  reg->leave("t", "r2", false);
  reg->join("t", "r2");
  EXPECT_EQ(reg->allocate_block("t", "r2")["cidr"], "10.200.0.20/30");
}

TEST_F(L2NetworksTest, LeavingReleasesTheBlockIntoQuarantine) {
  auto reg = open();
  create(*reg, {{"name", "t"}, {"subnet", "10.200.0.0/24"}, {"runners", {"r1", "r2"}}});
  EXPECT_EQ(reg->allocate_block("t", "r1")["cidr"], "10.200.0.192/27");
  // A block alone does not stop a leave: the runner disconnects its containers itself.
  EXPECT_EQ(reg->leave("t", "r1", false)["left"], true);
  auto g = reg->get("t");
  EXPECT_EQ(g["blocks"], json::array());
  EXPECT_EQ(g["quarantined"], 32);
  reg->join("t", "r1");
  // The old block is quarantined, so the rejoining runner gets another one.
  EXPECT_EQ(reg->allocate_block("t", "r1")["cidr"], "10.200.0.160/27");
  now_ += 301'000;
  EXPECT_EQ(reg->allocate_block("t", "r2")["cidr"], "10.200.0.192/27");
  // Deleting the network is not refused because of blocks.
  EXPECT_EQ(reg->remove("t", false)["deleted"], true);
}

TEST_F(L2NetworksTest, BlocksSurviveRestartAndOldStateLoads) {
  {
    auto reg = open();
    create(*reg, {{"name", "t"}, {"subnet", "10.200.0.0/24"}, {"runners", {"r1", "r2"}}});
    reg->allocate_block("t", "r1");
    reg->allocate_block("t", "r2");
    reg->leave("t", "r2", false);
    reg->join("t", "r3");  // a network record after the block records keeps the blocks
  }
  {
    auto reg = open();
    auto g = reg->get("t");
    EXPECT_EQ(g["blocks"], json::parse(R"([{"runner": "r1", "cidr": "10.200.0.192/27"}])"));
    EXPECT_EQ(g["quarantined"], 32);
    EXPECT_EQ(reg->allocate_block("t", "r1")["created"], false);
    EXPECT_EQ(reg->allocate_block("t", "r3")["cidr"], "10.200.0.128/27");
  }
  // Compacted into the snapshot: still there after another restart.
  auto reg = open();
  EXPECT_EQ(reg->get("t")["blocks"].size(), 2u);

  // A state directory written before blocks existed (no "blocks" anywhere) still loads.
  TempDir old;
  {
    StateStore store(old.path() / "l2-networks");
    json net = {{"name", "o"},
                {"subnet", "10.210.0.0/24"},
                {"gateway", "10.210.0.1"},
                {"vni", 12345},
                {"outbound_nat", true},
                {"members", {"r1"}},
                {"created_ms", 1},
                {"revision", 3},
                {"cursor", 0},
                {"leases", json::array()},
                {"quarantine", json::array()}};
    store.compact({{"revision", 3}, {"networks", {net}}});
    net.erase("leases");
    net.erase("quarantine");
    net["members"] = {"r1", "r2"};
    store.append({{"op", "network"}, {"network", net}, {"revision", 4}});
    store.append({{"op", "lease"},
                  {"name", "o"},
                  {"ip", "10.210.0.2"},
                  {"container_id", "w"},
                  {"runner", "r1"},
                  {"ms", 5},
                  {"cursor", 3}});
  }
  L2NetworkRegistry::Options o;
  o.state_dir = old.path();
  L2NetworkRegistry legacy(
      o, [this](const std::string& n) -> std::optional<L2RunnerInfo> { return runners_.at(n); },
      [this] { return now_.load(); });
  auto o_net = legacy.get("o");
  EXPECT_EQ(o_net["blocks"], json::array());
  EXPECT_EQ(o_net["members"].size(), 2u);
  EXPECT_EQ(o_net["leases"][0]["ip"], "10.210.0.2");
  EXPECT_EQ(legacy.allocate_block("o", "r1")["cidr"], "10.210.0.192/27");
}

}  // namespace
}  // namespace kohaku
