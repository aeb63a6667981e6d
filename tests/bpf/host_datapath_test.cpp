// The host fast path loader (userspace/host/bpf): pinning into a private bpffs, adopting pins
// after a restart, migrating a pinned map whose layout changed, map maintenance, TC attachment
// next to other tools' filters, and real frames through an attached program.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/if_packet.h>
#include <linux/pkt_cls.h>
#include <net/ethernet.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include "common/bpf/attach_points.h"
#include "common/bpf/bpffs.h"
#include "common/bpf/map_layout.h"
#include "common/bpf/tc_filter.h"
#include "common/unique_fd.h"
#include "host/bpf/host_datapath.h"
#include "host_test_env.h"
#include "old_map_layout.h"
#include "packet.h"

namespace kohaku::test {
namespace {

using namespace pkt;
using bpf::HostDatapath;
using bpf::HostDatapathOptions;
using bpf::RunnerRoute;

const RunnerRoute kRunner1{1, Ipv4Cidr::parse("10.1.0.0/16"), 1001};
const RunnerRoute kRunner2{2, Ipv4Cidr::parse("10.2.0.0/16"), 1002};

// Each test gets its own bpffs instance mounted on a temporary directory, unmounted afterwards.
class HostDatapathPinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(bpf::is_on_bpffs(bpffs_.path()));
    options_.pin_root = bpffs_.path() + "/kohaku";
    pin_dir_ = options_.pin_root + "/host";
  }

  std::unique_ptr<HostDatapath> open() { return std::make_unique<HostDatapath>(options_); }

  // Spoofed frame (source outside runner 1's subnet) as if it arrived on runner 1's tunnel: the
  // drop path needs no device, so it drives counters without a network namespace.
  static void spoof_once(const HostDatapath& dp) {
    uint32_t src = ip("10.9.0.1"), dst = ip("10.2.0.5");
    Bytes f = eth(kMacA, kMacB, ipv4(src, dst, kProtoUdp, udp(src, dst, 1, 2, Bytes(16, 1))));
    ASSERT_EQ(test_run(dp.program_fd(), f, 1, kRunner1.ifindex).retval, uint32_t{TC_ACT_SHOT});
  }

  ScopedBpffs bpffs_;
  std::string pin_dir_;
  HostDatapathOptions options_;
};

TEST_F(HostDatapathPinTest, PinsProgramAndMapsUnderHostDir) {
  auto dp = open();
  EXPECT_EQ(dp->pin_dir(), pin_dir_);
  for (const char* name :
       {"host_forward", "host_routes", "host_ingress", "host_addrs", "host_stats"})
    EXPECT_TRUE(std::filesystem::exists(pin_dir_ + "/" + name)) << name;
  EXPECT_TRUE(dp->migrated_maps().empty());
  // Runner 0 (unregistered devices) always has counters.
  EXPECT_TRUE(dp->counters(0));
}

TEST_F(HostDatapathPinTest, RestartAdoptsPinnedStateAndCounters) {
  uint32_t first_prog;
  {
    auto dp = open();
    dp->upsert_runner(kRunner1);
    dp->upsert_runner(kRunner2);
    dp->add_host_address({Ipv4Addr::parse("10.0.0.1"), 0});
    spoof_once(*dp);
    spoof_once(*dp);
    first_prog = dp->program_id();
  }  // the process "exits": pins stay
  auto dp = open();
  EXPECT_TRUE(dp->migrated_maps().empty());
  EXPECT_EQ(dp->runners(), (std::vector<RunnerRoute>{kRunner1, kRunner2}));
  EXPECT_EQ(dp->host_addresses(),
            (std::vector<bpf::HostAddress>{{Ipv4Addr::parse("10.0.0.1"), 0}}));
  ASSERT_TRUE(dp->counters(1));
  EXPECT_EQ(dp->counters(1)->sum.drop_spoofed, 2u);
  // The new program shares the adopted maps: its drops add to the same counters.
  EXPECT_NE(dp->program_id(), first_prog);
  spoof_once(*dp);
  EXPECT_EQ(dp->counters(1)->sum.drop_spoofed, 3u);
  EXPECT_EQ(dp->counters(1)->drop_packets(), 3u);
}

TEST_F(HostDatapathPinTest, BpftoolDumpShowsFieldNames) {
  auto dp = open();
  dp->upsert_runner(kRunner1);
  dp->add_host_address({Ipv4Addr::parse("10.1.0.254"), kRunner1.ifindex});
  spoof_once(*dp);
  std::string routes = sh("bpftool map dump pinned " + pin_dir_ + "/host_routes");
  EXPECT_NE(routes.find("\"prefixlen\": 16"), std::string::npos) << routes;
  EXPECT_NE(routes.find("\"ifindex\": 1001"), std::string::npos) << routes;
  EXPECT_NE(routes.find("\"runner_id\": 1"), std::string::npos) << routes;
  std::string ingress = sh("bpftool map dump pinned " + pin_dir_ + "/host_ingress");
  EXPECT_NE(ingress.find("\"subnet\": [10,1,0,0"), std::string::npos) << ingress;
  std::string addrs = sh("bpftool map dump pinned " + pin_dir_ + "/host_addrs");
  EXPECT_NE(addrs.find("\"addr\": [10,1,0,254"), std::string::npos) << addrs;
  std::string stats = sh("bpftool map dump pinned " + pin_dir_ + "/host_stats");
  EXPECT_NE(stats.find("\"drop_spoofed\": 1"), std::string::npos) << stats;
  EXPECT_NE(stats.find("\"fwd_packets\""), std::string::npos) << stats;
}

TEST_F(HostDatapathPinTest, MapWithOtherSizesIsRecreated) {
  std::filesystem::create_directories(pin_dir_);
  // An older build's host_addrs with another value size and no BTF: libbpf alone would refuse it.
  UniqueFd old(bpf_map_create(BPF_MAP_TYPE_HASH, "host_addrs", 4, 8, 16, nullptr));
  ASSERT_TRUE(old);
  ASSERT_EQ(bpf_obj_pin(old.get(), (pin_dir_ + "/host_addrs").c_str()), 0);

  auto dp = open();
  EXPECT_EQ(dp->migrated_maps(), std::vector<std::string>{"host_addrs"});
  EXPECT_FALSE(std::filesystem::exists(pin_dir_ + "/migrating_host_addrs"));
  UniqueFd pinned(bpf_obj_get((pin_dir_ + "/host_addrs").c_str()));
  EXPECT_EQ(bpf::map_layout_of_fd(pinned.get()), bpf::map_layout_of_fd(dp->map_fd("host_addrs")));
  dp->add_host_address({Ipv4Addr::parse("10.0.0.1"), 0});
  EXPECT_EQ(dp->host_addresses().size(), 1u);
  dp.reset();
  EXPECT_TRUE(open()->migrated_maps().empty());  // migrated once, adopted after
}

TEST_F(HostDatapathPinTest, SameSizeDifferentFieldsIsMigratedByFieldName) {
  // An older host_ingress with the same sizes but the fields in another order: libbpf would
  // reuse it and the program would read garbage. Its entries must come over by field name.
  UniqueFd old = old_layout_hash_map(
      "host_ingress", {"host_ingress_key", 4, {{"ifindex", 0}}},
      {"host_ingress", 12, {{"subnet", 0, 4}, {"runner_id", 32}, {"prefixlen", 64}}},
      KH_HOST_MAX_RUNNERS);
  ASSERT_TRUE(old) << std::strerror(errno);
  uint32_t k = 1005;
  uint8_t v[12] = {10, 5, 0, 0};
  uint32_t id = 5, prefix = 16;
  std::memcpy(v + 4, &id, 4);
  std::memcpy(v + 8, &prefix, 4);
  ASSERT_EQ(bpf_map_update_elem(old.get(), &k, v, BPF_ANY), 0);
  std::filesystem::create_directories(pin_dir_);
  ASSERT_EQ(bpf_obj_pin(old.get(), (pin_dir_ + "/host_ingress").c_str()), 0);

  auto dp = open();
  EXPECT_EQ(dp->migrated_maps(), std::vector<std::string>{"host_ingress"});
  EXPECT_EQ(dp->runners(), (std::vector<RunnerRoute>{{5, Ipv4Cidr::parse("10.5.0.0/16"), 1005}}));
}

TEST_F(HostDatapathPinTest, PinThatIsNotAMapIsRejectedUntouched) {
  // A program pinned where a map belongs: a clear error, and nothing is moved or replaced.
  std::filesystem::create_directories(pin_dir_);
  {
    auto dp = open();
    std::filesystem::rename(pin_dir_ + "/host_forward", pin_dir_ + "/prog");
  }
  std::filesystem::remove(pin_dir_ + "/host_routes");
  std::filesystem::rename(pin_dir_ + "/prog", pin_dir_ + "/host_routes");
  try {
    open();
    ADD_FAILURE() << "a program pinned where a map belongs was accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("not a BPF map"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(std::filesystem::exists(pin_dir_ + "/host_routes"));
  EXPECT_TRUE(std::filesystem::exists(pin_dir_ + "/host_ingress"));
}

TEST_F(HostDatapathPinTest, SwitchingToKernelDatapathRemovesPins) {
  open()->upsert_runner(kRunner1);
  EXPECT_EQ(bpf::remove_host_pins(options_.pin_root), 5u);  // program + four maps
  EXPECT_FALSE(std::filesystem::exists(pin_dir_));
  EXPECT_EQ(bpf::remove_host_pins(options_.pin_root), 0u);
  // Switching back starts from empty maps.
  EXPECT_TRUE(open()->runners().empty());
}

TEST(HostDatapathMaps, BadInputIsRejectedAndChangesNothing) {
  HostDatapath dp(HostDatapathOptions{.pin = false});
  dp.upsert_runner(kRunner1);
  EXPECT_THROW(dp.upsert_runner({0, Ipv4Cidr::parse("10.3.0.0/16"), 7}), std::invalid_argument);
  EXPECT_THROW(dp.upsert_runner({3, Ipv4Cidr::parse("10.3.0.0/16"), 0}), std::invalid_argument);
  EXPECT_THROW(dp.upsert_runner({3, Ipv4Cidr{Ipv4Addr::parse("10.3.0.1"), 16}, 7}),
               std::invalid_argument);
  // Overlapping another runner's subnet, either way round.
  EXPECT_THROW(dp.upsert_runner({3, Ipv4Cidr::parse("10.1.4.0/24"), 7}), std::invalid_argument);
  EXPECT_THROW(dp.upsert_runner({3, Ipv4Cidr::parse("10.0.0.0/8"), 7}), std::invalid_argument);
  EXPECT_THROW(dp.reconcile({kRunner1, kRunner1}, {}), std::invalid_argument);
  EXPECT_THROW(dp.reconcile({kRunner2, {3, Ipv4Cidr::parse("10.2.128.0/17"), 9}}, {}),
               std::invalid_argument);
  EXPECT_EQ(dp.runners(), std::vector<RunnerRoute>{kRunner1});
  EXPECT_FALSE(dp.counters(3));
}

TEST_F(HostDatapathPinTest, AdoptedEntriesAreKnownToUpdatesAndOverlapChecks) {
  {
    auto dp = open();
    dp->upsert_runner(kRunner1);
    dp->upsert_runner(kRunner2);
  }
  auto dp = open();
  // The overlap check knows the adopted subnets without a reconcile first.
  try {
    dp->upsert_runner({3, Ipv4Cidr::parse("10.1.4.0/24"), 7});
    ADD_FAILURE() << "overlap accepted";
  } catch (const std::invalid_argument& e) {
    EXPECT_STREQ(e.what(), "runner 3: subnet 10.1.4.0/24 overlaps 10.1.0.0/16 of runner 1");
  }
  // Moving an adopted runner removes its adopted entries; removing one finds them too.
  RunnerRoute moved{1, Ipv4Cidr::parse("10.4.0.0/16"), 2001};
  dp->upsert_runner(moved);
  EXPECT_EQ(dp->runners(), (std::vector<RunnerRoute>{moved, kRunner2}));
  host_route_key old_key{16, {10, 1, 0, 0}};
  host_route v{};
  EXPECT_NE(bpf_map_lookup_elem(dp->map_fd("host_routes"), &old_key, &v), 0);
  EXPECT_TRUE(dp->remove_runner(2));
  EXPECT_EQ(dp->runners(), std::vector<RunnerRoute>{moved});
  host_route_key k2{16, {10, 2, 0, 0}};
  EXPECT_NE(bpf_map_lookup_elem(dp->map_fd("host_routes"), &k2, &v), 0);
  EXPECT_FALSE(dp->remove_runner(2));
}

TEST(HostDatapathMaps, OverlapCheckAmongManyRunners) {
  HostDatapath dp(HostDatapathOptions{.pin = false});
  // 1,000 runners of /24 in 10.16.0.0 - 10.19.231.0.
  for (uint32_t id = 1; id <= 1000; ++id)
    dp.upsert_runner(
        {id, Ipv4Cidr{Ipv4Addr{(10u << 24) | (16u << 16) | ((id - 1) << 8)}, 24}, id + 10000});
  auto rejected = [&](const char* subnet) {
    try {
      dp.upsert_runner({3000, Ipv4Cidr::parse(subnet), 99998});
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("accepted");
  };
  EXPECT_EQ(rejected("10.16.5.0/24"),
            "runner 3000: subnet 10.16.5.0/24 overlaps 10.16.5.0/24 of runner 6");
  EXPECT_EQ(rejected("10.16.5.128/25"),
            "runner 3000: subnet 10.16.5.128/25 overlaps 10.16.5.0/24 of runner 6");
  EXPECT_EQ(rejected("10.17.0.0/16"),
            "runner 3000: subnet 10.17.0.0/16 overlaps 10.17.0.0/24 of runner 257");
  EXPECT_EQ(rejected("10.0.0.0/8"),
            "runner 3000: subnet 10.0.0.0/8 overlaps 10.16.0.0/24 of runner 1");
  EXPECT_EQ(rejected("10.19.231.255/32"),
            "runner 3000: subnet 10.19.231.255/32 overlaps 10.19.231.0/24 of runner 1000");
  EXPECT_FALSE(dp.counters(3000));
  // Right next to the last one, and the last one moving away: fine.
  dp.upsert_runner({2000, Ipv4Cidr::parse("10.19.232.0/24"), 99999});
  dp.upsert_runner({1000, Ipv4Cidr::parse("10.19.240.0/24"), 11000});
  EXPECT_EQ(dp.runners().size(), 1001u);
  // A runner may grow over its own old subnet.
  dp.upsert_runner({2000, Ipv4Cidr::parse("10.19.232.0/23"), 99999});
  EXPECT_EQ(rejected("10.19.233.0/24"),
            "runner 3000: subnet 10.19.233.0/24 overlaps 10.19.232.0/23 of runner 2000");
}

TEST(HostDatapathMaps, DeviceTakenOverByAnotherRunnerStaysWithIt) {
  HostDatapath dp(HostDatapathOptions{.pin = false});
  dp.upsert_runner(kRunner1);
  // Runner 2 gets runner 1's device (an id reused before the old tunnel went): the ingress
  // entry is runner 2's now, and removing runner 1 must leave it.
  RunnerRoute two{2, kRunner2.subnet, kRunner1.ifindex};
  dp.upsert_runner(two);
  EXPECT_TRUE(dp.remove_runner(1));
  EXPECT_EQ(dp.runners(), std::vector<RunnerRoute>{two});
  host_route_key k2{16, {10, 2, 0, 0}};
  host_route v{};
  ASSERT_EQ(bpf_map_lookup_elem(dp.map_fd("host_routes"), &k2, &v), 0);
  EXPECT_EQ(v.runner_id, 2u);
  // Reconcile rebuilds what updates rely on: the removed runner's subnet is free again.
  dp.reconcile({two}, {});
  dp.upsert_runner({3, kRunner1.subnet, 1003});
  EXPECT_THROW(dp.upsert_runner({4, Ipv4Cidr::parse("10.2.3.0/24"), 1004}), std::invalid_argument);
}

TEST(HostDatapathMaps, UpsertMovesRunnerAndReconcileRemovesStaleEntries) {
  HostDatapath dp(HostDatapathOptions{.pin = false});
  dp.upsert_runner(kRunner1);
  dp.upsert_runner(kRunner2);
  // Runner 1's tunnel was recreated (new ifindex): one ingress entry, one route, new device.
  RunnerRoute moved{1, kRunner1.subnet, 2001};
  dp.upsert_runner(moved);
  EXPECT_EQ(dp.runners(), (std::vector<RunnerRoute>{moved, kRunner2}));
  auto routes = dp.map_fd("host_routes");
  host_route_key k{32, {10, 1, 2, 3}};
  host_route v{};
  ASSERT_EQ(bpf_map_lookup_elem(routes, &k, &v), 0);
  EXPECT_EQ(v.ifindex, 2001u);

  dp.add_host_address({Ipv4Addr::parse("10.9.9.9"), 0});
  RunnerRoute three{3, Ipv4Cidr::parse("10.3.0.0/16"), 1003};
  dp.reconcile({kRunner2, three}, {{Ipv4Addr::parse("10.0.0.1"), 0}});
  EXPECT_EQ(dp.runners(), (std::vector<RunnerRoute>{kRunner2, three}));
  EXPECT_NE(bpf_map_lookup_elem(routes, &k, &v), 0);  // runner 1's subnet is gone
  EXPECT_FALSE(dp.counters(1));
  EXPECT_TRUE(dp.counters(3));
  EXPECT_EQ(dp.host_addresses(), (std::vector<bpf::HostAddress>{{Ipv4Addr::parse("10.0.0.1"), 0}}));
  EXPECT_EQ(dp.all_counters().size(), 3u);  // runners 0, 2, 3
}

// TC attachment and real frames need devices: a private network namespace per test.
class HostDatapathDeviceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    netns_ = std::make_unique<ScopedNetns>();
    const TwoTunnels tunnels = make_two_tunnels();
    vxa_ = tunnels.vxa;
    vxb_ = tunnels.vxb;
  }
  void TearDown() override { netns_.reset(); }

  std::unique_ptr<ScopedNetns> netns_;
  uint32_t vxa_ = 0, vxb_ = 0;
};

TEST_F(HostDatapathDeviceTest, AttachReplacesAndDetachLeavesOtherFilters) {
  // Another tool's filter on the same clsact hook must survive everything we do (a BPF filter
  // of its own handle and priority: the only classifier this kernel has built in).
  auto first = std::make_unique<HostDatapath>(HostDatapathOptions{.pin = false});
  const TcFilterId other{7, 49};
  tc_attach(static_cast<int>(vxa_), TcDirection::kIngress, other, first->program_fd());
  uint32_t other_id = *tc_attached_program(static_cast<int>(vxa_), TcDirection::kIngress, other);
  EXPECT_FALSE(first->attached_program_id(vxa_));
  first->attach(vxa_);
  EXPECT_EQ(first->attached_program_id(vxa_), first->program_id());

  // A restarted daemon: the old filter keeps running after its loader is gone...
  uint32_t old_id = first->program_id();
  first.reset();
  HostDatapath second(HostDatapathOptions{.pin = false});
  EXPECT_EQ(second.attached_program_id(vxa_), old_id);
  // ...until the new program replaces it in place.
  second.attach(vxa_);
  second.attach(vxa_);  // idempotent
  EXPECT_EQ(second.attached_program_id(vxa_), second.program_id());
  std::string filters = sh("tc filter show dev vxa ingress");
  size_t ours = 0;
  for (size_t at = filters.find("handle 0x4b48"); at != std::string::npos;
       at = filters.find("handle 0x4b48", at + 1))
    ++ours;
  EXPECT_EQ(ours, 1u) << filters;

  EXPECT_TRUE(second.detach(vxa_));
  EXPECT_FALSE(second.attached_program_id(vxa_));
  EXPECT_FALSE(second.detach(vxa_));
  // Detaching without a loaded datapath (switch to the kernel path) finds the same filter.
  second.attach(vxa_);
  EXPECT_TRUE(bpf::detach_host_forward(vxa_));
  EXPECT_FALSE(second.attached_program_id(vxa_));
  EXPECT_FALSE(second.detach(vxb_));  // never had a clsact hook
  EXPECT_EQ(tc_attached_program(static_cast<int>(vxa_), TcDirection::kIngress, other), other_id);
  // The device had its own clsact before we came: it keeps its private block.
  EXPECT_FALSE(tc_shared_block(static_cast<int>(vxa_), TcDirection::kIngress));
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

TEST_F(HostDatapathDeviceTest, FreshTunnelsShareOneFilterOnTheTunnelBlocks) {
  auto first = std::make_unique<HostDatapath>(HostDatapathOptions{.pin = false});
  first->attach(vxa_);
  for (uint32_t dev : {vxa_, vxb_}) {
    int ifindex = static_cast<int>(dev);
    if (dev == vxb_) EXPECT_FALSE(tc_shared_block(ifindex, TcDirection::kIngress));
    first->attach(dev);
    EXPECT_EQ(tc_shared_block(ifindex, TcDirection::kIngress), kHostTunnelTcBlocks.ingress);
    EXPECT_EQ(tc_shared_block(ifindex, TcDirection::kEgress), kHostTunnelTcBlocks.egress);
    EXPECT_EQ(first->attached_program_id(dev), first->program_id());
  }
  // One filter on the block, listed by the block and by each device (as operators read it).
  std::string block = sh("tc filter show block " + std::to_string(kHostTunnelTcBlocks.ingress));
  EXPECT_EQ(count_of(block, "handle 0x4b48"), 1u) << block;
  EXPECT_EQ(count_of(sh("tc filter show dev vxb ingress"), "handle 0x4b48"), 1u);

  // A restarted daemon's program, attached through one tunnel, replaces it for all.
  first.reset();
  HostDatapath second(HostDatapathOptions{.pin = false});
  second.attach(vxb_);
  EXPECT_EQ(second.attached_program_id(vxa_), second.program_id());
  block = sh("tc filter show block " + std::to_string(kHostTunnelTcBlocks.ingress));
  EXPECT_EQ(count_of(block, "handle 0x4b48"), 1u) << block;

  // Leaving BPF mode: detaching through the first tunnel leaves none on any.
  EXPECT_TRUE(bpf::detach_host_forward(vxa_));
  EXPECT_FALSE(second.attached_program_id(vxb_));
  EXPECT_FALSE(bpf::detach_host_forward(vxb_));
}

UniqueFd packet_socket(uint32_t ifindex) {
  UniqueFd fd(::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ALL)));
  if (!fd) throw std::system_error(errno, std::generic_category(), "AF_PACKET socket");
  sockaddr_ll sll{};
  sll.sll_family = AF_PACKET;
  sll.sll_protocol = htons(ETH_P_ALL);
  sll.sll_ifindex = static_cast<int>(ifindex);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0)
    throw std::system_error(errno, std::generic_category(), "bind AF_PACKET");
  return fd;
}

TEST_F(HostDatapathDeviceTest, AttachedProgramForwardsRealFramesBypassingKernelForwarding) {
  HostDatapath dp(HostDatapathOptions{.pin = false});
  dp.upsert_runner({1, Ipv4Cidr::parse("10.1.0.0/16"), vxa_});
  dp.upsert_runner({2, Ipv4Cidr::parse("10.2.0.0/16"), vxb_});
  dp.attach(vxa_);
  auto rx = packet_socket(ifindex_of("vxb-peer"));
  auto tx = packet_socket(ifindex_of("vxa-peer"));
  uint64_t forwarded_before = ip_forwarded_datagrams();

  const uint32_t src = ip("10.1.0.5"), dst = ip("10.2.0.5"), spoofed = ip("10.2.0.66");
  const Mac vxa_mac{0x02, 0, 0, 0, 0x01, 0xfe}, runner_mac{0x02, 0, 0, 0, 0x01, 0x01};
  auto frame = [&](uint32_t from, uint16_t port) {
    return eth(vxa_mac, runner_mac,
               ipv4(from, dst, kProtoUdp, udp(from, dst, 40000, port, Bytes(64, 0x42))));
  };
  Bytes spoof = frame(spoofed, 7001);
  Bytes good = frame(src, 7000);
  ASSERT_EQ(::send(tx.get(), spoof.data(), spoof.size(), 0), static_cast<ssize_t>(spoof.size()));
  ASSERT_EQ(::send(tx.get(), good.data(), good.size(), 0), static_cast<ssize_t>(good.size()));

  // Wait (bounded) for the good frame on runner 2's side; other traffic (IPv6 ND) is skipped.
  std::optional<Bytes> got;
  bool spoof_seen = false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!got && std::chrono::steady_clock::now() < deadline) {
    pollfd p{rx.get(), POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    Bytes buf(2048);
    ssize_t n = ::recv(rx.get(), buf.data(), buf.size(), 0);
    if (n <= 0) continue;
    buf.resize(static_cast<size_t>(n));
    auto v = parse_eth_ipv4(buf);
    if (!v || v->proto != kProtoUdp) continue;
    if (v->l4.dport == 7001) spoof_seen = true;
    if (v->l4.dport == 7000) got = buf;
  }
  ASSERT_TRUE(got) << "forwarded frame never reached runner 2's tunnel";
  EXPECT_FALSE(spoof_seen);
  EXPECT_EQ(Bytes(got->begin(), got->begin() + 6), (Bytes{0x02, 0, 0, 0, 0x02, 0x05}));
  EXPECT_EQ(Bytes(got->begin() + 6, got->begin() + 12), (Bytes{0x02, 0, 0, 0, 0x02, 0xfe}));
  EXPECT_EQ(parse_eth_ipv4(*got)->ttl, 63);
  EXPECT_EQ(verify_checksums(*got), "");
  auto c = dp.counters(1);
  ASSERT_TRUE(c);
  EXPECT_EQ(c->sum.fwd_packets, 1u);
  EXPECT_EQ(c->sum.drop_spoofed, 1u);
  EXPECT_EQ(ip_forwarded_datagrams(), forwarded_before);  // the kernel never routed it
}

}  // namespace
}  // namespace kohaku::test
