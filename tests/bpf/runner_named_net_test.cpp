// Named L2 networks in the runner's data plane (map runner_nets, bpf/lib/net_class.h), through
// BPF_PROG_TEST_RUN: a NAT-on network is masqueraded like the overlay, a NAT-off one leaves and
// enters untouched, and traffic routed between two different kohaku networks is dropped.
#include <netinet/in.h>

#include "runner_fixture.h"

namespace kohaku::test {
namespace {

class RunnerNamedNet : public RunnerDatapathTest {
 protected:
  const uint32_t kNatted1 = ip("172.20.0.5");  // network "train", outbound NAT on
  const uint32_t kNatted2 = ip("172.20.0.9");
  const uint32_t kRouted1 = ip("172.21.0.5");  // network "lab", outbound NAT off
  const runner::NetEntry kTrain{Ipv4Cidr::parse("172.20.0.0/24"), 13091, true};
  const runner::NetEntry kLab{Ipv4Cidr::parse("172.21.0.0/24"), 13092, false};

  void SetUp() override {
    RunnerDatapathTest::SetUp();
    dp_->set_named_networks({kTrain, kLab});
  }
};

TEST_F(RunnerNamedNet, NatOnNetworkIsMasqueradedBothWays) {
  auto syn = passed(egress(tcp_frame(kNatted1, kServer, 40000, 443, kSyn)));
  EXPECT_EQ(syn.src, kUplink);
  EXPECT_EQ(syn.dst, kServer);
  EXPECT_EQ(syn.l4.sport, 40000);
  auto e = ct_entry(kNatted1, kServer, 40000, 443, kProtoTcp);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->dir, RUNNER_CT_ORIGINAL);

  auto back = ingress(tcp_frame(kServer, kUplink, 443, 40000, kSyn | kAck));
  auto v = passed(back);
  EXPECT_EQ(v.dst, kNatted1);
  EXPECT_EQ(v.l4.dport, 40000);
  // The reply may enter the network's bridge; an unsolicited packet may not.
  expect_untouched(filter(back.out), back.out);
  EXPECT_EQ(filter(tcp_frame(kServer, kNatted1, 443, 40001, kSyn)).verdict, TC_ACT_SHOT);

  auto c = dp_->counters();
  EXPECT_EQ(c.egress_translated, 1u);
  EXPECT_EQ(c.ingress_translated, 1u);
  EXPECT_EQ(c.forward_allowed, 1u);
  EXPECT_EQ(c.forward_dropped_untracked, 1u);
  EXPECT_EQ(c.passed_no_nat, 0u);
}

TEST_F(RunnerNamedNet, WorkloadUdpToTheVxlanPortIsNoUnderlay) {
  // Only the uplink address sends the underlay: a workload's datagram to 4789 is masqueraded.
  auto out = passed(egress(udp_frame(kNatted1, kServer, 50000, 4789, {1, 2})));
  EXPECT_EQ(out.src, kUplink);
  EXPECT_EQ(dp_->counters().passed_vxlan_underlay, 0u);
  Bytes underlay = udp_frame(kUplink, kHostUnderlay, 51000, 4789, {1, 2});
  EXPECT_EQ(egress(underlay).out, underlay);
  EXPECT_EQ(dp_->counters().passed_vxlan_underlay, 1u);
}

TEST_F(RunnerNamedNet, NatOffNetworkLeavesUntouched) {
  Bytes f = tcp_frame(kRouted1, kServer, 40000, 443, kSyn);
  expect_untouched(egress(f), f);
  Bytes u = udp_frame(kRouted1, kServer, 50000, 53, {1, 2, 3});
  EXPECT_EQ(egress(u).out, u);
  // What a NAT-on network could not masquerade (and drops) is fine here: nothing to leak.
  Ipv4Options frag;
  frag.dont_fragment = false;
  frag.more_fragments = true;
  Bytes fragment = frame(kRouted1, kServer, kProtoUdp, udp(kRouted1, kServer, 1, 2, {1}), frag);
  EXPECT_EQ(egress(fragment).verdict, TC_ACT_OK);
  Bytes gre = frame(kRouted1, kServer, 47, Bytes(8, 0));
  EXPECT_EQ(egress(gre).verdict, TC_ACT_OK);
  EXPECT_EQ(egress(frame(kNatted1, kServer, 47, Bytes(8, 0))).verdict, TC_ACT_SHOT);

  EXPECT_FALSE(ct_entry(kRouted1, kServer, 40000, 443, kProtoTcp));
  EXPECT_EQ(dp_->table_usage().entries, 0u);
  auto c = dp_->counters();
  EXPECT_EQ(c.passed_no_nat, 4u);
  EXPECT_EQ(c.egress_translated, 0u);
  EXPECT_EQ(c.dropped_unsupported, 1u);
}

TEST_F(RunnerNamedNet, NatOffNetworkAcceptsInboundConnections) {
  Bytes syn = tcp_frame(kServer, kRouted1, 5000, 22, kSyn);
  expect_untouched(filter(syn), syn);
  EXPECT_EQ(filter(echo_frame(kServer, kRouted1, kIcmpEchoRequest, 7, 1)).verdict, TC_ACT_OK);
  EXPECT_EQ(dp_->counters().forward_allowed, 2u);
  // The uplink's ingress leaves it alone: it is not addressed to the uplink.
  EXPECT_EQ(ingress(syn).out, syn);
}

TEST_F(RunnerNamedNet, DenyRulesApplyToNatOffNetworks) {
  ASSERT_TRUE(dp_->add_deny_rule(
      {Ipv4Cidr::parse("172.21.0.0/24"), Ipv4Cidr::parse("198.51.100.10/32"), IPPROTO_TCP, 443}));
  EXPECT_EQ(egress(tcp_frame(kRouted1, kServer, 40000, 443, kSyn)).verdict, TC_ACT_SHOT);
  EXPECT_EQ(egress(tcp_frame(kRouted1, kServer, 40000, 80, kSyn)).verdict, TC_ACT_OK);
  ASSERT_TRUE(dp_->add_deny_rule(
      {Ipv4Cidr::parse("198.51.100.10/32"), Ipv4Cidr::parse("172.21.0.5/32"), 0, 0}));
  EXPECT_EQ(filter(tcp_frame(kServer, kRouted1, 5000, 22, kSyn)).verdict, TC_ACT_SHOT);
  auto c = dp_->counters();
  EXPECT_EQ(c.policy_denied, 2u);
  EXPECT_EQ(c.passed_no_nat, 1u);
}

TEST_F(RunnerNamedNet, RoutingBetweenDifferentNetworksIsDropped) {
  const Bytes between[] = {
      tcp_frame(kNatted1, kRouted1, 40000, 22, kSyn),  // named -> other named
      tcp_frame(kRouted1, kNatted1, 40000, 22, kSyn),
      tcp_frame(kWorkload1, kNatted1, 40000, 22, kSyn),  // overlay -> named
      tcp_frame(kRouted1, kWorkload1, 40000, 22, kSyn),  // named -> overlay
      echo_frame(kNatted1, kOtherRunnerWorkload, kIcmpEchoRequest, 1, 1),
  };
  for (const Bytes& f : between) EXPECT_EQ(filter(f).verdict, TC_ACT_SHOT);
  // Within one network (and within the overlay) it is still allowed.
  EXPECT_EQ(filter(tcp_frame(kNatted2, kNatted1, 40000, 22, kSyn)).verdict, TC_ACT_OK);
  EXPECT_EQ(filter(tcp_frame(kOtherRunnerWorkload, kWorkload1, 40000, 22, kSyn)).verdict,
            TC_ACT_OK);
  // The runner's own packets are not forwarding.
  EXPECT_EQ(filter(tcp_frame(kNatted1, kRouted1, 40000, 22, kSyn), 0).verdict, TC_ACT_OK);
  auto c = dp_->counters();
  EXPECT_EQ(c.forward_dropped_isolated, 5u);
  EXPECT_EQ(c.forward_allowed, 2u);

  // Between two kohaku networks the uplink neither masquerades nor counts it as outbound.
  Bytes f = tcp_frame(kNatted1, kWorkload1, 40000, 22, kSyn);
  EXPECT_EQ(egress(f).out, f);
  EXPECT_EQ(dp_->counters().egress_translated, 0u);
}

TEST_F(RunnerNamedNet, LongestPrefixDecidesTheNetwork) {
  dp_->set_named_networks(
      {{Ipv4Cidr::parse("172.16.0.0/12"), 1, true}, {Ipv4Cidr::parse("172.16.5.0/24"), 2, false}});
  EXPECT_EQ(filter(tcp_frame(ip("172.16.5.1"), ip("172.16.9.1"), 1, 2, kSyn)).verdict, TC_ACT_SHOT);
  EXPECT_EQ(filter(tcp_frame(ip("172.17.0.1"), ip("172.16.9.1"), 1, 2, kSyn)).verdict, TC_ACT_OK);
  // The inner /24 is NAT-off: untouched on the uplink; the /12 around it is masqueraded.
  Bytes inner = tcp_frame(ip("172.16.5.1"), kServer, 40000, 80, kSyn);
  EXPECT_EQ(egress(inner).out, inner);
  EXPECT_EQ(passed(egress(tcp_frame(ip("172.16.6.1"), kServer, 40000, 80, kSyn))).src, kUplink);
  EXPECT_EQ(dp_->counters().forward_dropped_isolated, 1u);
}

TEST_F(RunnerNamedNet, SyncWritesExactlyTheWantedSet) {
  auto have = dp_->named_networks();
  ASSERT_EQ(have.size(), 2u);
  EXPECT_EQ(have[0], kTrain);
  EXPECT_EQ(have[1], kLab);
  EXPECT_EQ(dp_->set_named_networks({kTrain, kLab}), 0u);  // nothing to change

  // "lab" leaves, "train" turns NAT off, "dev" joins.
  runner::NetEntry train_off = kTrain;
  train_off.outbound_nat = false;
  runner::NetEntry dev{Ipv4Cidr::parse("172.22.0.0/16"), 13093, true};
  EXPECT_EQ(dp_->set_named_networks({dev, train_off}), 3u);
  have = dp_->named_networks();
  ASSERT_EQ(have.size(), 2u);
  EXPECT_EQ(have[0], train_off);
  EXPECT_EQ(have[1], dev);
  Bytes f = tcp_frame(kNatted1, kServer, 40000, 443, kSyn);
  EXPECT_EQ(egress(f).out, f);  // NAT now off
  // lab's addresses are outside again: not masqueraded, not "no NAT" either.
  Bytes lab = tcp_frame(kRouted1, kServer, 40000, 443, kSyn);
  EXPECT_EQ(egress(lab).out, lab);
  auto c = dp_->counters();
  EXPECT_EQ(c.passed_no_nat, 1u);
  EXPECT_EQ(c.passed_not_overlay, 1u);

  EXPECT_EQ(dp_->set_named_networks({}), 2u);
  EXPECT_TRUE(dp_->named_networks().empty());
}

TEST_F(RunnerNamedNet, InvalidSetsAreRejectedWithoutChange) {
  using runner::NetEntry;
  const std::vector<std::vector<NetEntry>> bad = {
      {{Ipv4Cidr::parse("172.23.0.0/24"), 0, true}},          // id 0
      {{Ipv4Cidr{Ipv4Addr{ip("172.23.0.1")}, 24}, 5, true}},  // host bits
      {{Ipv4Cidr::parse("172.23.0.0/24"), 5, true}, {kTrain.subnet, 6, false}, kTrain},  // twice
  };
  for (const auto& set : bad) EXPECT_THROW(dp_->set_named_networks(set), std::invalid_argument);
  std::vector<NetEntry> too_many;
  for (uint32_t i = 0; i <= RUNNER_NETS_MAX; ++i)
    too_many.push_back({Ipv4Cidr{Ipv4Addr{ip("100.64.0.0") + (i << 8)}, 24}, i + 1, true});
  EXPECT_THROW(dp_->set_named_networks(too_many), std::invalid_argument);
  too_many.pop_back();
  EXPECT_EQ(dp_->set_named_networks(too_many), RUNNER_NETS_MAX + 2u);  // all new, both old gone
  EXPECT_EQ(dp_->named_networks().size(), size_t{RUNNER_NETS_MAX});
}

}  // namespace
}  // namespace kohaku::test
