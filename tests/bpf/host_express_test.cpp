// The hub express path (bpf/host_express.bpf.c) through BPF_PROG_TEST_RUN, TC and XDP variants.
// Each test builds, in a private network namespace, the hub's uplink (a veth holding the hub's
// underlay address, with neighbour entries for the runners' physical IPs) and two or three runner
// tunnels (veths standing in for vxkr devices, with the workloads' neighbour entries), so every
// FIB and neighbour answer the program gets is the kernel's own. Frames are full VXLAN frames as
// a runner's vxlan0 sends them; the expected output is built from scratch with the same builders,
// so a wrongly patched checksum or a stray byte fails the comparison.
#include <bpf/btf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>
#include <sys/mount.h>

#include <cstring>
#include <filesystem>
#include <memory>

#include "common/bpf/bpffs.h"
#include "common/unique_fd.h"
#include "host/bpf/host_datapath.h"
#include "host/bpf/host_express.h"
#include "host_test_env.h"
#include "packet.h"

namespace kohaku::test {
namespace {

using namespace pkt;
using bpf::HostDatapath;
using bpf::HostExpress;

constexpr uint32_t kRedirect = TC_ACT_REDIRECT;
constexpr uint32_t kShot = TC_ACT_SHOT;
constexpr uint32_t kPass = static_cast<uint32_t>(TC_ACT_UNSPEC);

constexpr Mac kUplinkMac{0x02, 0, 0, 0, 0xaa, 0x01};    // the hub's uplink
constexpr Mac kRunner1Phys{0x02, 0, 0, 0, 0xaa, 0x11};  // runner 1's uplink
constexpr Mac kRunner2Phys{0x02, 0, 0, 0, 0xaa, 0x12};  // runner 2's uplink
constexpr Mac kTunnel1Mac{0x02, 0, 0, 0, 0x01, 0xfe};   // hub side of runner 1's tunnel
constexpr Mac kTunnel2Mac{0x02, 0, 0, 0, 0x02, 0xfe};
constexpr Mac kTunnel3Mac{0x02, 0, 0, 0, 0x03, 0xfe};
constexpr Mac kBridge1Mac{0x02, 0, 0, 0, 0x01, 0x01};  // runner 1's vxlan0 (inner source)
constexpr Mac kWorkload2Mac{0x02, 0, 0, 0, 0x02, 0x05};
constexpr Mac kWorkload3Mac{0x02, 0, 0, 0, 0x03, 0x05};
constexpr uint32_t kVniBase = 100;
constexpr uint16_t kEntropyPort = 40001;
constexpr size_t kUdpOffset = 34;  // outer Ethernet + IPv4

class HostExpressTest : public ::testing::Test {
 protected:
  const uint32_t kHub = ip("198.18.0.1");
  const uint32_t kRunner1 = ip("198.18.0.11");
  const uint32_t kRunner2 = ip("198.18.0.12");
  const uint32_t kRunner3 = ip("198.18.0.13");  // no neighbour entry: underlay unresolved
  const uint32_t kW1 = ip("10.1.0.5");
  const uint32_t kW2 = ip("10.2.0.5");
  const uint32_t kW2Unresolved = ip("10.2.0.9");
  const uint32_t kW3 = ip("10.3.0.5");

  void SetUp() override {
    netns_ = std::make_unique<ScopedNetns>();
    const HubDevices devices = make_hub_devices();
    uplink_ = devices.uplink;
    for (int i = 1; i <= 3; ++i) tunnel_[i] = devices.tunnel[i];

    dp_ = std::make_unique<HostDatapath>(bpf::HostDatapathOptions{.pin = false});
    const uint32_t phys[] = {0, kRunner1, kRunner2, kRunner3};
    const Mac macs[] = {{}, kTunnel1Mac, kTunnel2Mac, kTunnel3Mac};
    express_ = std::make_unique<HostExpress>(HostExpress::Options{.pin = false}, *dp_);
    for (uint32_t id = 1; id <= 3; ++id) {
      Ipv4Cidr subnet = Ipv4Cidr::parse("10." + std::to_string(id) + ".0.0/16");
      dp_->upsert_runner({id, subnet, tunnel_[id]});
      dp_->add_host_address({Ipv4Addr::parse("10." + std::to_string(id) + ".0.254"), tunnel_[id]});
      express_->upsert_runner(
          {id, kVniBase + id, Ipv4Addr{phys[id]}, tunnel_[id], macs[id], subnet});
    }
    configure(false);
  }

  void TearDown() override {
    express_.reset();
    dp_.reset();
    netns_.reset();
  }

  void configure(bool tx_devmap) {
    express_->configure({Ipv4Addr{kHub}, uplink_, kUplinkMac, 4789, kVniBase, tx_devmap});
  }

  // The inner IPv4/UDP packet a1 -> b1 as runner 1's workload sends it.
  static Bytes inner_ip(uint32_t src, uint32_t dst, uint8_t ttl = 64, size_t payload = 18) {
    Ipv4Options o;
    o.ttl = ttl;
    return ipv4(src, dst, kProtoUdp, udp(src, dst, 40000, 9, Bytes(payload, 0x5a)), o);
  }

  // A VXLAN frame from `outer_src` to the hub with VNI `vni` around `inner_frame`.
  Bytes vxlan_frame(uint32_t outer_src, uint32_t vni, const Bytes& inner_frame,
                    bool outer_udp_csum = false, const Ipv4Options& outer = {}) const {
    return eth(
        kUplinkMac, kRunner1Phys,
        ipv4(outer_src, kHub, kProtoUdp,
             udp(outer_src, kHub, kEntropyPort, 4789, vxlan(vni, inner_frame), !outer_udp_csum),
             outer));
  }

  // What runner 1's vxlan0 sends for a packet of its workload routed towards the hub.
  Bytes from_runner1(const Bytes& inner, bool outer_udp_csum = false) const {
    return vxlan_frame(kRunner1, kVniBase + 1, eth(kTunnel1Mac, kBridge1Mac, inner),
                       outer_udp_csum);
  }

  // What the hub must send to runner 2 for it, built from scratch.
  Bytes expected_to_runner2(const Bytes& inner_out, bool outer_udp_csum = false) const {
    return eth(kRunner2Phys, kUplinkMac,
               ipv4(kHub, kRunner2, kProtoUdp,
                    udp(kHub, kRunner2, kEntropyPort, 4789,
                        vxlan(kVniBase + 2, eth(kWorkload2Mac, kTunnel2Mac, inner_out)),
                        !outer_udp_csum)));
  }

  RunResult run_tc(const Bytes& frame) {
    return test_run(express_->tc_program_fd(), frame, uplink_);
  }
  RunResult run_xdp(const Bytes& frame) {
    return test_run_xdp(express_->xdp_program_fd(), frame, uplink_);
  }

  express_stats stats(uint32_t runner_id) {
    auto c = express_->counters(runner_id);
    EXPECT_TRUE(c) << "no express counters for runner " << runner_id;
    return c ? c->sum : express_stats{};
  }

  // Both variants leave the frame untouched and hand it to the kernel.
  void expect_passed(const Bytes& frame, uint32_t runner_id, __u64 express_stats::*counter) {
    uint64_t before = stats(runner_id).*counter;
    RunResult tc = run_tc(frame);
    EXPECT_EQ(tc.retval, kPass);
    EXPECT_EQ(tc.out, frame);
    RunResult xdp = run_xdp(frame);
    EXPECT_EQ(xdp.retval, static_cast<uint32_t>(XDP_PASS));
    EXPECT_EQ(xdp.out, frame);
    EXPECT_EQ(stats(runner_id).*counter, before + 2);
  }

  std::unique_ptr<ScopedNetns> netns_;
  std::unique_ptr<HostDatapath> dp_;
  std::unique_ptr<HostExpress> express_;
  uint32_t uplink_ = 0;
  uint32_t tunnel_[4] = {};
};

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

TEST_F(HostExpressTest, SpoofedOuterSourceIsDropped) {
  // Runner 2's address using runner 1's VNI.
  Bytes in = vxlan_frame(kRunner2, kVniBase + 1, eth(kTunnel1Mac, kBridge1Mac, inner_ip(kW1, kW2)));
  EXPECT_EQ(run_tc(in).retval, kShot);
  EXPECT_EQ(run_xdp(in).retval, static_cast<uint32_t>(XDP_DROP));
  EXPECT_EQ(stats(1).drop_spoofed_outer, 2u);
  EXPECT_EQ(stats(1).drop_bytes, 2 * in.size());
  EXPECT_EQ(stats(1).fwd_packets, 0u);
}

TEST_F(HostExpressTest, SpoofedInnerSourceIsDropped) {
  Bytes in = from_runner1(inner_ip(ip("10.2.0.7"), kW2));
  EXPECT_EQ(run_tc(in).retval, kShot);
  EXPECT_EQ(run_xdp(in).retval, static_cast<uint32_t>(XDP_DROP));
  EXPECT_EQ(stats(1).drop_spoofed_inner, 2u);
}

TEST_F(HostExpressTest, HostAddressesAreAllowedSources) {
  EXPECT_EQ(run_tc(from_runner1(inner_ip(ip("10.1.0.254"), kW2))).retval, kRedirect);
}

TEST_F(HostExpressTest, OrdinaryHostTrafficIsPassedOnRunnerZero) {
  Bytes arp_frame =
      eth(kUplinkMac, kRunner1Phys, arp(kArpRequest, kRunner1Phys, kRunner1, Mac{}, kHub), kEthArp);
  expect_passed(arp_frame, 0, &express_stats::pass_non_vxlan);
  Bytes tcp_frame = eth(kUplinkMac, kRunner1Phys,
                        ipv4(kRunner1, kHub, kProtoTcp, tcp(kRunner1, kHub, 5000, 8000, kSyn)));
  expect_passed(tcp_frame, 0, &express_stats::pass_non_vxlan);
  // VXLAN to another port, and to another address than the hub's.
  Bytes other_port =
      eth(kUplinkMac, kRunner1Phys,
          ipv4(kRunner1, kHub, kProtoUdp,
               udp(kRunner1, kHub, kEntropyPort, 4790,
                   vxlan(101, eth(kTunnel1Mac, kBridge1Mac, inner_ip(kW1, kW2))), true)));
  expect_passed(other_port, 0, &express_stats::pass_non_vxlan);
}

TEST_F(HostExpressTest, UnknownVniIsPassed) {
  Bytes in = vxlan_frame(kRunner1, kVniBase + 9, eth(kTunnel1Mac, kBridge1Mac, inner_ip(kW1, kW2)));
  expect_passed(in, 0, &express_stats::pass_unknown_vni);
}

TEST_F(HostExpressTest, InnerArpIsPassed) {
  Bytes in = vxlan_frame(kRunner1, kVniBase + 1,
                         eth(Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kBridge1Mac,
                             arp(kArpRequest, kBridge1Mac, kW1, Mac{}, ip("10.1.0.254")), kEthArp));
  expect_passed(in, 1, &express_stats::pass_inner_non_ipv4);
}

TEST_F(HostExpressTest, InnerFrameNotForTheTunnelMacIsPassed) {
  Bytes in = vxlan_frame(kRunner1, kVniBase + 1, eth(kMacA, kBridge1Mac, inner_ip(kW1, kW2)));
  expect_passed(in, 1, &express_stats::pass_l2_not_host);
}

TEST_F(HostExpressTest, FragmentsAndOptionsArePassed) {
  Ipv4Options frag;
  frag.dont_fragment = false;
  frag.more_fragments = true;
  Bytes inner_frag = ipv4(kW1, kW2, kProtoUdp, udp(kW1, kW2, 1, 9, Bytes(16, 1)), frag);
  expect_passed(from_runner1(inner_frag), 1, &express_stats::pass_fragment);
  Bytes outer_frag = vxlan_frame(kRunner1, kVniBase + 1,
                                 eth(kTunnel1Mac, kBridge1Mac, inner_ip(kW1, kW2)), false, frag);
  expect_passed(outer_frag, 0, &express_stats::pass_fragment);
  // Inner header with one 4-byte option (NOP x3 + EOL): ihl 6.
  Bytes opt = inner_ip(kW1, kW2);
  opt.insert(opt.begin() + 20, {1, 1, 1, 0});
  opt[0] = 0x46;
  put16(opt.data() + 2, static_cast<uint16_t>(opt.size()));
  put16(opt.data() + 10, 0);
  put16(opt.data() + 10, csum(opt.data(), 24));
  expect_passed(from_runner1(opt), 1, &express_stats::pass_ip_options);
}

TEST_F(HostExpressTest, TtlExpiryIsPassedForTimeExceeded) {
  expect_passed(from_runner1(inner_ip(kW1, kW2, 1)), 1, &express_stats::pass_ttl);
}

TEST_F(HostExpressTest, HostDestinationsAndForeignOnesArePassed) {
  expect_passed(from_runner1(inner_ip(kW1, ip("10.2.0.254"))), 1, &express_stats::pass_to_host);
  expect_passed(from_runner1(inner_ip(kW1, ip("10.1.255.255"))), 1, &express_stats::pass_to_host);
  expect_passed(from_runner1(inner_ip(kW1, ip("10.9.0.1"))), 1, &express_stats::pass_no_route);
}

TEST_F(HostExpressTest, InnerPacketAboveTheTargetTunnelMtuIsPassed) {
  // 1450 fits runner 2's tunnel; 1451 needs Fragmentation Needed from the kernel.
  EXPECT_EQ(run_tc(from_runner1(inner_ip(kW1, kW2, 64, 1450 - 28))).retval, kRedirect);
  expect_passed(from_runner1(inner_ip(kW1, kW2, 64, 1451 - 28)), 1, &express_stats::pass_oversize);
}

TEST_F(HostExpressTest, UnresolvedNeighboursAreLeftToTheKernel) {
  expect_passed(from_runner1(inner_ip(kW1, kW2Unresolved)), 1, &express_stats::pass_no_neigh);
  // Runner 3's underlay address has no neighbour entry on the uplink yet.
  expect_passed(from_runner1(inner_ip(kW1, kW3)), 1, &express_stats::pass_outer_no_neigh);
  // Once the kernel resolved it, the next frame goes express.
  sh("ip neigh replace 198.18.0.13 lladdr 02:00:00:00:aa:13 dev up0 nud reachable");
  EXPECT_EQ(run_tc(from_runner1(inner_ip(kW1, kW3))).retval, kRedirect);
}

// A GSO skb that is not a UDP-tunnel aggregate (test runs build skbs with gso_type 0, like a
// UDP_SEGMENT skb's later segments it would start with payload bytes nobody checked) is never
// rewritten. UDP-tunnel aggregates go express whole: e2e/test_host_express.sh checks them, since
// a test run cannot set the skb's GSO type.
TEST_F(HostExpressTest, GsoSkbsThatAreNoTunnelAggregateAreLeftToTheKernel) {
  Bytes in = from_runner1(inner_ip(kW1, kW2));
  __sk_buff ctx{};
  ctx.ifindex = ctx.ingress_ifindex = uplink_;
  ctx.gso_segs = 2;
  ctx.gso_size = 40;
  RunResult r = prog_test_run(express_->tc_program_fd(), in, ctx);
  EXPECT_EQ(r.retval, kPass);
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(stats(1).pass_gso, 1u);
}

TEST_F(HostExpressTest, KernelRouteToAnotherDeviceWins) {
  sh("ip route add 10.2.0.5/32 dev vx3");
  expect_passed(from_runner1(inner_ip(kW1, kW2)), 1, &express_stats::pass_fib);
}

TEST_F(HostExpressTest, RemovedTargetIsNoLongerExpressed) {
  ASSERT_TRUE(express_->remove_runner(2));
  expect_passed(from_runner1(inner_ip(kW1, kW2)), 1, &express_stats::pass_no_target);
  EXPECT_FALSE(express_->remove_runner(2));
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

TEST_F(HostExpressTest, DisabledStagePassesEverything) {
  express_->disable();
  expect_passed(from_runner1(inner_ip(kW1, kW2)), 0, &express_stats::pass_not_configured);
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
    char tmpl[] = "/tmp/kohaku-bpffs-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    mount_ = tmpl;
    bpf::ensure_bpffs_dir(mount_);  // not below /sys/fs/bpf: mounts right there
    ASSERT_TRUE(bpf::is_on_bpffs(mount_));
    pin_root_ = mount_ + "/kohaku";
    pin_dir_ = pin_root_ + "/host";
  }
  void TearDown() override {
    ::umount2(mount_.c_str(), MNT_DETACH);
    ::rmdir(mount_.c_str());
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
  std::string mount_, pin_root_, pin_dir_;
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
  std::unique_ptr<btf, void (*)(btf*)> b(btf__new_empty(), btf__free);
  int u32 = btf__add_int(b.get(), "unsigned int", 4, 0);
  int u8 = btf__add_int(b.get(), "unsigned char", 1, 0);
  int a4 = btf__add_array(b.get(), u32, u8, 4);
  int a6 = btf__add_array(b.get(), u32, u8, 6);
  int key = btf__add_struct(b.get(), "express_runner_key", 4);
  ASSERT_EQ(btf__add_field(b.get(), "runner_id", u32, 0, 0), 0);
  int val = btf__add_struct(b.get(), "express_runner", 24);
  ASSERT_EQ(btf__add_field(b.get(), "vni", u32, 0, 0), 0);
  ASSERT_EQ(btf__add_field(b.get(), "physical_ip", a4, 32, 0), 0);
  ASSERT_EQ(btf__add_field(b.get(), "tunnel_ifindex", u32, 64, 0), 0);
  ASSERT_EQ(btf__add_field(b.get(), "tunnel_mac", a6, 96, 0), 0);
  ASSERT_EQ(btf__add_field(b.get(), "subnet", a4, 144, 0), 0);
  ASSERT_EQ(btf__load_into_kernel(b.get()), 0);
  bpf_map_create_opts o{};
  o.sz = sizeof(o);
  o.btf_fd = static_cast<uint32_t>(btf__fd(b.get()));
  o.btf_key_type_id = static_cast<uint32_t>(key);
  o.btf_value_type_id = static_cast<uint32_t>(val);
  o.map_flags = BPF_F_NO_PREALLOC;
  UniqueFd old(
      bpf_map_create(BPF_MAP_TYPE_HASH, "express_runners", 4, 24, KH_HOST_MAX_RUNNERS, &o));
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
