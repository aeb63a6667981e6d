// The hub express path's rewrite (bpf/host_express.bpf.c): frames it forwards, byte for byte,
// through the TC and XDP variants; how the loader changes what it forwards (moved runners,
// configuration, reconcile); and pinned-map adoption and migration across restarts. The setup is
// in host_express_fixture.h; what the stage refuses or leaves to the kernel is in
// host_express_admission_test.cpp.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include "common/bpf/bpffs.h"
#include "common/unique_fd.h"
#include "host_express_fixture.h"
#include "old_map_layout.h"

namespace kohaku::test {
namespace {

TEST_F(HostExpressTest, TcRewritesRunner1FrameTowardsRunner2) {
  Bytes in = from_runner1(inner_ip(kW1, kW2));
  RunResult r = run_tc(in);
  ASSERT_EQ(r.retval, kRedirect);
  // Every byte as if built for runner 2 from scratch: outer MACs from the underlay neighbour,
  // outer source the hub, destination runner 2, VNI 102, UDP source port kept, UDP checksum still
  // zero, inner MACs from runner 2's tunnel neighbour, inner TTL 63 with a valid checksum.
  EXPECT_EQ(r.out, expected_to_runner2(inner_ip(kW1, kW2, 63)));
  EXPECT_EQ(verify_checksums(r.out), "");
  EXPECT_EQ(verify_ipv4_checksums(r.out.data(), r.out.size(), 64), "");

  express_stats s = stats(1);
  EXPECT_EQ(s.fwd_packets, 1u);
  EXPECT_EQ(s.fwd_bytes, in.size());
  EXPECT_EQ(s.fwd_nh_lookups, 1u);
  // The underlay next hop is cached: the second frame needs no lookup.
  ASSERT_EQ(run_tc(in).retval, kRedirect);
  EXPECT_EQ(stats(1).fwd_packets, 2u);
  EXPECT_EQ(stats(1).fwd_nh_lookups, 1u);
}

TEST_F(HostExpressTest, XdpTransmitsTheSameRewriteBackOutOfTheUplink) {
  Bytes in = from_runner1(inner_ip(kW1, kW2));
  RunResult r = run_xdp(in);
  ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX));
  EXPECT_EQ(r.out, expected_to_runner2(inner_ip(kW1, kW2, 63)));
  EXPECT_EQ(stats(1).fwd_packets, 1u);
}

TEST_F(HostExpressTest, XdpOnVethRedirectsThroughTheDevmap) {
  configure(true);
  RunResult r = run_xdp(from_runner1(inner_ip(kW1, kW2)));
  EXPECT_EQ(r.retval, static_cast<uint32_t>(XDP_REDIRECT));
  EXPECT_EQ(r.out, expected_to_runner2(inner_ip(kW1, kW2, 63)));
}

TEST_F(HostExpressTest, CompleteOuterUdpChecksumIsUpdated) {
  Bytes in = from_runner1(inner_ip(kW1, kW2), /*outer_udp_csum=*/true);
  ASSERT_EQ(verify_checksums(in), "");
  for (bool xdp : {false, true}) {
    RunResult r = xdp ? run_xdp(in) : run_tc(in);
    ASSERT_EQ(r.retval, xdp ? static_cast<uint32_t>(XDP_TX) : kRedirect);
    EXPECT_EQ(r.out, expected_to_runner2(inner_ip(kW1, kW2, 63), true)) << "xdp=" << xdp;
    EXPECT_EQ(verify_checksums(r.out), "") << "xdp=" << xdp;
  }
}

TEST_F(HostExpressTest, OffloadedOuterUdpChecksumFollowsThePseudoHeader) {
  // A frame handed over inside the machine with the checksum left to the device carries the
  // folded pseudo-header sum only (Linux's CHECKSUM_PARTIAL form).
  Bytes in = from_runner1(inner_ip(kW1, kW2));
  size_t udp_len = in.size() - kUdpOffset;
  put16(in.data() + kUdpOffset + 6,
        static_cast<uint16_t>(sum16(nullptr, 0, pseudo_sum(kRunner1, kHub, kProtoUdp, udp_len))));
  RunResult r = run_tc(in);
  ASSERT_EQ(r.retval, kRedirect);
  EXPECT_EQ(
      get16(r.out.data() + kUdpOffset + 6),
      static_cast<uint16_t>(sum16(nullptr, 0, pseudo_sum(kHub, kRunner2, kProtoUdp, udp_len))));
  // XDP has no skb to say the rest is the device's job: the checksum goes to zero ("none").
  r = run_xdp(in);
  ASSERT_EQ(r.retval, static_cast<uint32_t>(XDP_TX));
  EXPECT_EQ(r.out, expected_to_runner2(inner_ip(kW1, kW2, 63)));
}

TEST_F(HostExpressTest, MovedRunnerIsReachedAtItsNewAddress) {
  ASSERT_EQ(run_tc(from_runner1(inner_ip(kW1, kW2))).retval, kRedirect);
  sh("ip neigh replace 198.18.0.22 lladdr 02:00:00:00:aa:22 dev up0 nud permanent");
  express_->upsert_runner({2, kVniBase + 2, Ipv4Addr::parse("198.18.0.22"), tunnel_[2], kTunnel2Mac,
                           Ipv4Cidr::parse("10.2.0.0/16")});
  RunResult r = run_tc(from_runner1(inner_ip(kW1, kW2)));
  ASSERT_EQ(r.retval, kRedirect);
  EXPECT_EQ(Bytes(r.out.begin(), r.out.begin() + 6), Bytes({2, 0, 0, 0, 0xaa, 0x22}));
  EXPECT_EQ(get32(r.out.data() + kEthLen + 16), ip("198.18.0.22"));
  EXPECT_EQ(stats(1).fwd_nh_lookups, 2u);
}

TEST_F(HostExpressTest, BadRunnersAreRefusedWithoutChange) {
  auto before = express_->runners();
  EXPECT_THROW(express_->upsert_runner({0, 100, Ipv4Addr{kRunner1}, tunnel_[1], kTunnel1Mac,
                                        Ipv4Cidr::parse("10.1.0.0/16")}),
               std::invalid_argument);
  EXPECT_THROW(express_->upsert_runner(
                   {4, 104, Ipv4Addr{kRunner1}, 0, kTunnel1Mac, Ipv4Cidr::parse("10.4.0.0/16")}),
               std::invalid_argument);
  EXPECT_THROW(express_->reconcile({{5, 105, Ipv4Addr{kRunner1}, tunnel_[1], kTunnel1Mac,
                                     Ipv4Cidr::parse("10.5.0.1/16")}}),
               std::invalid_argument);
  EXPECT_EQ(express_->runners(), before);
}

TEST_F(HostExpressTest, ReconcileKeepsExactlyTheGivenRunners) {
  auto all = express_->runners();
  ASSERT_EQ(all.size(), 3u);
  express_->reconcile({all[0], all[2]});
  auto now = express_->runners();
  ASSERT_EQ(now.size(), 2u);
  EXPECT_EQ(now[0].runner_id, 1u);
  EXPECT_EQ(now[1].runner_id, 3u);
  EXPECT_FALSE(express_->counters(2));
}

}  // namespace
}  // namespace kohaku::test

namespace kohaku::test {
namespace {

// Pins in a private bpffs: adoption after a restart and layout migration of the express maps.
class HostExpressPinTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(bpf::is_on_bpffs(bpffs_.path()));
    pin_root_ = bpffs_.path() + "/kohaku";
    pin_dir_ = pin_root_ + "/host";
  }

  void open() {
    express_.reset();
    dp_.reset();
    dp_ = std::make_unique<HostDatapath>(bpf::HostDatapathOptions{.pin_root = pin_root_});
    express_ = std::make_unique<HostExpress>(HostExpress::Options{.pin_root = pin_root_}, *dp_);
  }

  // A frame with runner 1's VNI from another address: dropped before any lookup that needs a
  // device, so it drives counters through loopback.
  void spoof_once() {
    uint32_t hub = ip("198.18.0.1"), other = ip("198.18.0.99");
    uint32_t w1 = ip("10.1.0.5"), w2 = ip("10.2.0.5");
    Bytes inner =
        eth(kTunnel1Mac, kBridge1Mac, ipv4(w1, w2, kProtoUdp, udp(w1, w2, 1, 9, Bytes(18, 1))));
    Bytes f = eth(
        kUplinkMac, kRunner1Phys,
        ipv4(other, hub, kProtoUdp, udp(other, hub, kEntropyPort, 4789, vxlan(101, inner), true)));
    ASSERT_EQ(test_run(express_->tc_program_fd(), f, 1, 1).retval, kShot);
  }

  const bpf::ExpressRunner kRunner1{1,    101,         Ipv4Addr::parse("198.18.0.11"),
                                    1001, kTunnel1Mac, Ipv4Cidr::parse("10.1.0.0/16")};
  ScopedBpffs bpffs_;  // first: outlives the loaders holding its pins
  std::string pin_root_, pin_dir_;
  std::unique_ptr<HostDatapath> dp_;
  std::unique_ptr<HostExpress> express_;
};

TEST_F(HostExpressPinTest, RestartAdoptsRunnersCountersAndPinsPrograms) {
  open();
  express_->configure({Ipv4Addr::parse("198.18.0.1"), 1, kUplinkMac, 4789, kVniBase, false});
  express_->upsert_runner(kRunner1);
  spoof_once();
  spoof_once();
  for (const char* pin : {"host_express_tc", "host_express_xdp", "express_config",
                          "express_runners", "express_nexthops", "express_stats"})
    EXPECT_TRUE(std::filesystem::exists(pin_dir_ + "/" + pin)) << pin;
  uint32_t first = express_->program_id(bpf::ExpressHook::kTc);

  open();  // the daemon restarts: pins stay, the new program runs on the same maps
  EXPECT_TRUE(express_->migrated_maps().empty());
  EXPECT_EQ(express_->runners(), std::vector<bpf::ExpressRunner>{kRunner1});
  ASSERT_TRUE(express_->counters(1));
  EXPECT_EQ(express_->counters(1)->sum.drop_spoofed_outer, 2u);
  EXPECT_NE(express_->program_id(bpf::ExpressHook::kTc), first);
  spoof_once();  // the adopted configuration is in force for the new program
  EXPECT_EQ(express_->counters(1)->sum.drop_spoofed_outer, 3u);
  // Unchanged runners are not rewritten, a removed one leaves every map.
  express_->reconcile({});
  EXPECT_TRUE(express_->runners().empty());
  EXPECT_FALSE(express_->counters(1));
}

TEST_F(HostExpressPinTest, OlderRunnerLayoutIsMigratedByFieldName) {
  // express_runners of an older build without `prefixlen`: its entries come over by field name,
  // the new field starting at zero.
  UniqueFd old =
      old_layout_hash_map("express_runners", {"express_runner_key", 4, {{"runner_id", 0}}},
                          {"express_runner",
                           24,
                           {{"vni", 0},
                            {"physical_ip", 32, 4},
                            {"tunnel_ifindex", 64},
                            {"tunnel_mac", 96, 6},
                            {"subnet", 144, 4}}},
                          KH_HOST_MAX_RUNNERS);
  ASSERT_TRUE(old) << std::strerror(errno);
  uint32_t k = 7;
  uint8_t v[24] = {};
  uint32_t vni = 107, ifindex = 1007;
  std::memcpy(v, &vni, 4);
  uint8_t phys[4] = {198, 18, 0, 17};
  std::memcpy(v + 4, phys, 4);
  std::memcpy(v + 8, &ifindex, 4);
  std::memcpy(v + 12, kTunnel1Mac.data(), 6);
  uint8_t subnet[4] = {10, 7, 0, 0};
  std::memcpy(v + 18, subnet, 4);
  ASSERT_EQ(bpf_map_update_elem(old.get(), &k, v, BPF_ANY), 0);
  std::filesystem::create_directories(pin_dir_);
  ASSERT_EQ(bpf_obj_pin(old.get(), (pin_dir_ + "/express_runners").c_str()), 0);

  open();
  EXPECT_EQ(express_->migrated_maps(), std::vector<std::string>{"express_runners"});
  auto runners = express_->runners();
  ASSERT_EQ(runners.size(), 1u);
  EXPECT_EQ(runners[0].runner_id, 7u);
  EXPECT_EQ(runners[0].vni, 107u);
  EXPECT_EQ(runners[0].physical_ip, Ipv4Addr::parse("198.18.0.17"));
  EXPECT_EQ(runners[0].tunnel_ifindex, 1007u);
  EXPECT_EQ(runners[0].subnet, (Ipv4Cidr{Ipv4Addr::parse("10.7.0.0"), 0}));
  open();  // migrated once, adopted after
  EXPECT_TRUE(express_->migrated_maps().empty());
}

}  // namespace
}  // namespace kohaku::test
