// The host fast path (bpf/host_forward.bpf.c) through BPF_PROG_TEST_RUN. Each test builds two
// runner tunnels as veth devices in a private network namespace, so the program's FIB lookups,
// MTU checks and neighbour entries are the kernel's own, and checks the verdict, the bytes that
// come out and the per-runner counters.
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>

#include <memory>

#include "host/bpf/host_datapath.h"
#include "host_test_env.h"
#include "packet.h"

namespace kohaku::test {
namespace {

using namespace pkt;
using bpf::HostDatapath;

constexpr uint32_t kRedirect = TC_ACT_REDIRECT;
constexpr uint32_t kShot = TC_ACT_SHOT;
constexpr uint32_t kPass = static_cast<uint32_t>(TC_ACT_UNSPEC);

constexpr Mac kTunnel1Mac{0x02, 0, 0, 0, 0x01, 0xfe};  // host side of runner 1's tunnel
constexpr Mac kTunnel2Mac{0x02, 0, 0, 0, 0x02, 0xfe};  // host side of runner 2's tunnel
constexpr Mac kRunner1Mac{0x02, 0, 0, 0, 0x01, 0x01};  // runner 1's side
constexpr Mac kWorkload2Mac{0x02, 0, 0, 0, 0x02, 0x05};

class HostForwardTest : public ::testing::Test {
 protected:
  const uint32_t kW1 = ip("10.1.0.5");   // workload on runner 1
  const uint32_t kW2 = ip("10.2.0.5");   // workload on runner 2, neighbour entry known
  const uint32_t kW2b = ip("10.2.0.9");  // workload on runner 2, neighbour not resolved yet
  const uint32_t kHostOnRunner2 = ip("10.2.0.254");
  const uint32_t kHostAnchor = ip("10.0.0.1");

  void SetUp() override {
    netns_ = std::make_unique<ScopedNetns>();
    const TwoTunnels tunnels = make_two_tunnels();
    tunnel1_ = tunnels.vxa;
    tunnel2_ = tunnels.vxb;
    sh("ip addr add 10.0.0.1/32 dev lo");

    dp_ = std::make_unique<HostDatapath>(bpf::HostDatapathOptions{.pin = false});
    dp_->upsert_runner({1, Ipv4Cidr::parse("10.1.0.0/16"), tunnel1_});
    dp_->upsert_runner({2, Ipv4Cidr::parse("10.2.0.0/16"), tunnel2_});
    dp_->add_host_address({Ipv4Addr::parse("10.1.0.254"), tunnel1_});
    dp_->add_host_address({Ipv4Addr::parse("10.2.0.254"), tunnel2_});
    dp_->add_host_address({Ipv4Addr::parse("10.0.0.1"), 0});
  }

  void TearDown() override {
    dp_.reset();
    netns_.reset();
  }

  // A frame as runner 1 sends it to the host: to the tunnel's MAC.
  static Bytes from_runner1(uint32_t src, uint32_t dst, const Ipv4Options& o = {},
                            size_t payload = 32) {
    return eth(kTunnel1Mac, kRunner1Mac,
               ipv4(src, dst, kProtoUdp, udp(src, dst, 40000, 5201, Bytes(payload, 0x5a)), o));
  }

  RunResult run(const Bytes& frame) { return test_run(dp_->program_fd(), frame, tunnel1_); }

  host_stats stats(uint32_t runner_id) {
    auto c = dp_->counters(runner_id);
    EXPECT_TRUE(c) << "no counters for runner " << runner_id;
    return c ? c->sum : host_stats{};
  }

  // The one frame sent so far went to bpf_redirect_neigh(): TTL decremented, checksums valid,
  // counted as a neighbour forward of runner 1; `no_fib` is whether the FIB lookup failed first.
  void expect_left_to_redirect_neigh(const RunResult& r, uint64_t no_fib) {
    ASSERT_EQ(r.retval, kRedirect);
    EXPECT_EQ(r.out[kEthLen + 8], 63);
    EXPECT_EQ(verify_checksums(r.out), "");
    host_stats s = stats(1);
    EXPECT_EQ(s.fwd_packets, 1u);
    EXPECT_EQ(s.fwd_neigh, 1u);
    EXPECT_EQ(s.fwd_no_fib, no_fib);
  }

  // Expects the packet to come out unchanged with the pass verdict.
  void expect_passed_untouched(const Bytes& frame) {
    RunResult r = run(frame);
    EXPECT_EQ(r.retval, kPass);
    EXPECT_EQ(r.out, frame);
  }

  std::unique_ptr<ScopedNetns> netns_;
  std::unique_ptr<HostDatapath> dp_;
  uint32_t tunnel1_ = 0, tunnel2_ = 0;
};

TEST_F(HostForwardTest, ForwardsToResolvedNeighbourWithNewMacsAndTtl) {
  Bytes in = from_runner1(kW1, kW2);
  RunResult r = run(in);
  ASSERT_EQ(r.retval, kRedirect);
  ASSERT_EQ(r.out.size(), in.size());
  EXPECT_EQ(routed_differences(r.out, kWorkload2Mac, kTunnel2Mac, kW1, kW2, 63), "");
  // Nothing but the MACs, the TTL and the header checksum changed.
  Bytes expect = in;
  std::copy(r.out.begin(), r.out.begin() + 12, expect.begin());
  expect[kEthLen + 8] = 63;
  expect[kEthLen + 10] = r.out[kEthLen + 10];
  expect[kEthLen + 11] = r.out[kEthLen + 11];
  EXPECT_EQ(r.out, expect);

  host_stats s = stats(1);
  EXPECT_EQ(s.fwd_packets, 1u);
  EXPECT_EQ(s.fwd_bytes, in.size());
  EXPECT_EQ(s.fwd_neigh, 0u);
  EXPECT_EQ(s.pass_bytes, 0u);
  EXPECT_EQ(stats(2).fwd_packets, 0u);  // counted on the ingress runner
}

TEST_F(HostForwardTest, TtlChecksumStaysValidAcrossCarry) {
  // Header checksums near 0x0000/0xffff exercise the end-around carry of the update.
  for (uint16_t id = 0; id < 600; id += 7) {
    Ipv4Options o;
    o.id = static_cast<uint16_t>(id * 113);
    o.ttl = static_cast<uint8_t>(2 + id % 250);
    RunResult r = run(from_runner1(kW1, kW2, o));
    ASSERT_EQ(r.retval, kRedirect);
    ASSERT_EQ(verify_checksums(r.out), "") << "id " << o.id << " ttl " << int{o.ttl};
    ASSERT_EQ(r.out[kEthLen + 8], o.ttl - 1);
  }
}

TEST_F(HostForwardTest, UnresolvedNeighbourIsLeftToRedirectNeigh) {
  Bytes in = from_runner1(kW1, kW2b);
  RunResult r = run(in);
  expect_left_to_redirect_neigh(r, /*no_fib=*/0);
  // The kernel writes the MACs after resolving the neighbour; the program only decrements TTL.
  EXPECT_EQ(Bytes(r.out.begin(), r.out.begin() + 12), Bytes(in.begin(), in.begin() + 12));
}

TEST_F(HostForwardTest, ForwardingSysctlOffStillForwardsViaRedirectNeigh) {
  sh("echo 0 > /proc/sys/net/ipv4/conf/vxa/forwarding");
  expect_left_to_redirect_neigh(run(from_runner1(kW1, kW2)), /*no_fib=*/1);
}

TEST_F(HostForwardTest, TrafficToHostAddressesIsPassed) {
  expect_passed_untouched(from_runner1(kW1, kHostOnRunner2));
  expect_passed_untouched(from_runner1(kW1, kHostAnchor));
  expect_passed_untouched(from_runner1(kW1, ip("10.1.0.254")));
  expect_passed_untouched(from_runner1(kW1, ip("224.0.0.251")));
  expect_passed_untouched(from_runner1(kW1, ip("255.255.255.255")));
  host_stats s = stats(1);
  EXPECT_EQ(s.pass_to_host, 5u);
  EXPECT_EQ(s.fwd_packets, 0u);
}

TEST_F(HostForwardTest, SpoofedSourcesAreDroppedAndCounted) {
  RunResult other_runner = run(from_runner1(ip("10.2.0.7"), kW2));
  EXPECT_EQ(other_runner.retval, kShot);
  RunResult outside = run(from_runner1(ip("192.0.2.1"), kW2));
  EXPECT_EQ(outside.retval, kShot);
  // Spoofed traffic is dropped whatever its destination, the host included.
  RunResult to_host = run(from_runner1(ip("10.3.0.1"), kHostAnchor));
  EXPECT_EQ(to_host.retval, kShot);
  host_stats s = stats(1);
  EXPECT_EQ(s.drop_spoofed, 3u);
  EXPECT_GT(s.drop_bytes, 0u);
  EXPECT_EQ(s.fwd_packets, 0u);

  // A host address is an accepted source on every tunnel.
  EXPECT_EQ(run(from_runner1(kHostAnchor, kW2)).retval, kRedirect);
}

TEST_F(HostForwardTest, TtlExpiryIsPassedForTimeExceeded) {
  Ipv4Options o;
  o.ttl = 1;
  expect_passed_untouched(from_runner1(kW1, kW2, o));
  o.ttl = 0;
  expect_passed_untouched(from_runner1(kW1, kW2, o));
  EXPECT_EQ(stats(1).pass_ttl, 2u);
  o.ttl = 2;
  RunResult r = run(from_runner1(kW1, kW2, o));
  EXPECT_EQ(r.retval, kRedirect);
  EXPECT_EQ(r.out[kEthLen + 8], 1);
}

TEST_F(HostForwardTest, ArpAndOtherEthertypesArePassed) {
  Bytes arp(28);
  put16(arp.data(), 1);  // Ethernet
  put16(arp.data() + 2, kEthIpv4);
  arp[4] = 6;
  arp[5] = 4;
  put16(arp.data() + 6, 1);  // request
  std::copy(kRunner1Mac.begin(), kRunner1Mac.end(), arp.begin() + 8);
  put32(arp.data() + 14, kW1);
  put32(arp.data() + 24, ip("10.1.0.254"));
  expect_passed_untouched(eth(Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kRunner1Mac, arp, kEthArp));
  expect_passed_untouched(eth(kTunnel1Mac, kRunner1Mac, Bytes(60, 0x60), 0x86dd));  // IPv6
  EXPECT_EQ(stats(1).pass_non_ipv4, 2u);
}

TEST_F(HostForwardTest, DestinationsOutsideRunnerSubnetsArePassed) {
  expect_passed_untouched(from_runner1(kW1, ip("192.0.2.80")));
  expect_passed_untouched(from_runner1(kW1, ip("10.3.0.1")));  // no runner 3
  EXPECT_EQ(stats(1).pass_no_route, 2u);
  EXPECT_EQ(stats(1).fwd_packets, 0u);
}

TEST_F(HostForwardTest, PacketsAboveTargetMtuArePassedForFragmentationNeeded) {
  // MTU 1450: an IP packet of exactly 1450 bytes fits, one more byte does not.
  size_t fits = 1450 - 20 - 8;
  EXPECT_EQ(run(from_runner1(kW1, kW2, {}, fits)).retval, kRedirect);
  expect_passed_untouched(from_runner1(kW1, kW2, {}, fits + 1));
  EXPECT_EQ(stats(1).pass_oversize, 1u);

  // GSO aggregates are judged per segment by bpf_check_mtu(BPF_MTU_CHK_SEGS); BPF_PROG_TEST_RUN
  // cannot build one (no gso_type, no transport header), so that case belongs to real traffic.

  // The target's MTU counts, not the ingress device's.
  sh("ip link set vxb mtu 1400");
  expect_passed_untouched(from_runner1(kW1, kW2, {}, fits));
  EXPECT_EQ(stats(1).pass_oversize, 2u);
}

TEST_F(HostForwardTest, FragmentsAndIpOptionsArePassed) {
  Ipv4Options first;
  first.dont_fragment = false;
  first.more_fragments = true;
  expect_passed_untouched(from_runner1(kW1, kW2, first));
  Ipv4Options later;
  later.dont_fragment = false;
  later.frag_offset = 4;
  expect_passed_untouched(from_runner1(kW1, kW2, later));
  EXPECT_EQ(stats(1).pass_fragment, 2u);

  // Same packet with a 4-byte option (NOPs + end of list): IHL 6.
  Bytes in = from_runner1(kW1, kW2);
  Bytes ip_hdr(in.begin() + kEthLen, in.begin() + kEthLen + 20);
  Bytes rest(in.begin() + kEthLen + 20, in.end());
  ip_hdr[0] = 0x46;
  put16(ip_hdr.data() + 2, static_cast<uint16_t>(24 + rest.size()));
  ip_hdr.insert(ip_hdr.end(), {1, 1, 1, 0});
  put16(ip_hdr.data() + 10, 0);
  put16(ip_hdr.data() + 10, csum(ip_hdr.data(), ip_hdr.size()));
  Bytes with_options = eth(kTunnel1Mac, kRunner1Mac, concat(ip_hdr, rest));
  expect_passed_untouched(with_options);
  EXPECT_EQ(stats(1).pass_ip_options, 1u);
}

TEST_F(HostForwardTest, MalformedHeadersAreLeftToTheKernel) {
  Bytes in = from_runner1(kW1, kW2);
  Bytes long_claim = in;
  put16(long_claim.data() + kEthLen + 2, static_cast<uint16_t>(in.size()));  // beyond the frame
  expect_passed_untouched(long_claim);
  Bytes short_ihl = in;
  short_ihl[kEthLen] = 0x44;
  expect_passed_untouched(short_ihl);
  Bytes wrong_version = in;
  wrong_version[kEthLen] = 0x65;
  expect_passed_untouched(wrong_version);
  // (A frame cut inside the IP header cannot be tested: BPF_PROG_TEST_RUN refuses it.)
  EXPECT_EQ(stats(1).pass_malformed, 3u);
}

TEST_F(HostForwardTest, FramesNotAddressedToTheTunnelArePassed) {
  Bytes in = from_runner1(kW1, kW2);
  Bytes other = in;
  other[5] = 0x77;  // another host's MAC: the kernel drops it as PACKET_OTHERHOST
  expect_passed_untouched(other);
  EXPECT_EQ(stats(1).pass_l2_not_host, 1u);
}

TEST_F(HostForwardTest, KernelRouteToAnotherDeviceWins) {
  // An operator's more specific route sends part of runner 2's subnet elsewhere.
  sh("ip route add 10.2.7.0/24 dev vxa");
  expect_passed_untouched(from_runner1(kW1, ip("10.2.7.1")));
  sh("ip route add unreachable 10.2.8.0/24");
  expect_passed_untouched(from_runner1(kW1, ip("10.2.8.1")));
  EXPECT_EQ(stats(1).pass_fib, 2u);
}

TEST_F(HostForwardTest, RouteToVanishedDeviceIsLeftToTheKernel) {
  // The tunnel was deleted before the daemon removed its route: nothing to redirect to.
  dp_->upsert_runner({3, Ipv4Cidr::parse("10.3.0.0/16"), 999999});
  expect_passed_untouched(from_runner1(kW1, ip("10.3.0.5")));
  EXPECT_EQ(stats(1).pass_fib, 1u);
  EXPECT_EQ(stats(1).pass_oversize, 0u);
}

TEST_F(HostForwardTest, UnregisteredIngressDeviceIsPassedAndCountedOnRunnerZero) {
  Bytes in = from_runner1(kW1, kW2);
  RunResult r = test_run(dp_->program_fd(), in, ifindex_of("vxb-peer"));
  EXPECT_EQ(r.retval, kPass);
  EXPECT_EQ(r.out, in);
  EXPECT_EQ(stats(0).pass_unmanaged, 1u);
  EXPECT_EQ(stats(1).pass_unmanaged, 0u);
}

TEST_F(HostForwardTest, ReleasedRunnerIsNoLongerRoutable) {
  ASSERT_EQ(run(from_runner1(kW1, kW2)).retval, kRedirect);
  ASSERT_TRUE(dp_->remove_runner(2));
  expect_passed_untouched(from_runner1(kW1, kW2));
  EXPECT_EQ(stats(1).pass_no_route, 1u);
  EXPECT_FALSE(dp_->counters(2));
  // Traffic arriving from the released runner's tunnel is no longer ours either.
  Bytes from2 =
      eth(kTunnel2Mac, kRunner1Mac, ipv4(kW2, kW1, kProtoUdp, udp(kW2, kW1, 1, 2, Bytes(8, 1))));
  EXPECT_EQ(test_run(dp_->program_fd(), from2, tunnel2_).retval, kPass);
}

TEST_F(HostForwardTest, CountersSumAcrossRepetitions) {
  Bytes in = from_runner1(kW1, kW2);
  bpf_test_run_opts opts{};
  std::vector<uint8_t> out(in.size() + 256);
  __sk_buff ctx{};
  ctx.ifindex = ctx.ingress_ifindex = tunnel1_;
  opts.sz = sizeof(opts);
  opts.data_in = in.data();
  opts.data_size_in = static_cast<uint32_t>(in.size());
  opts.data_out = out.data();
  opts.data_size_out = static_cast<uint32_t>(out.size());
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof(ctx);
  opts.repeat = 50;
  ASSERT_EQ(bpf_prog_test_run_opts(dp_->program_fd(), &opts), 0);
  EXPECT_EQ(opts.retval, kRedirect);
  host_stats s = stats(1);
  EXPECT_EQ(s.fwd_packets, 50u);
  EXPECT_EQ(s.fwd_bytes, 50u * in.size());
  auto named = dp_->counters(1)->named();
  ASSERT_FALSE(named.empty());
  EXPECT_EQ(named.front().first, "fwd_packets");
  EXPECT_EQ(named.front().second, 50u);
}

}  // namespace
}  // namespace kohaku::test
