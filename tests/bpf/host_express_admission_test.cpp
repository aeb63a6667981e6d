// What the hub express path (bpf/host_express.bpf.c) refuses or leaves to the kernel: spoofed
// frames it drops, and every pass reason with its counter, through the TC and XDP variants. The
// setup is in host_express_fixture.h; the rewrite of what it forwards is in
// host_express_rewrite_test.cpp.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include "host_express_fixture.h"

namespace kohaku::test {
namespace {

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

TEST_F(HostExpressTest, DisabledStagePassesEverything) {
  express_->disable();
  expect_passed(from_runner1(inner_ip(kW1, kW2)), 0, &express_stats::pass_not_configured);
}

}  // namespace
}  // namespace kohaku::test
