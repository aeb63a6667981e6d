// Forward filter on the overlay bridge (runner_forward_filter) and operator deny rules,
// through BPF_PROG_TEST_RUN.
#include <netinet/in.h>

#include "runner_fixture.h"

namespace kohaku::test {
namespace {

using RunnerFilter = RunnerDatapathTest;

runner::DenyRule rule(const char* src, const char* dst, uint8_t proto, uint16_t port) {
  return {Ipv4Cidr::parse(src), Ipv4Cidr::parse(dst), proto, port};
}

TEST_F(RunnerFilter, OverlayToOverlayAllowed) {
  Bytes f = tcp_frame(kOtherRunnerWorkload, kWorkload1, 5000, 22, kSyn);
  expect_untouched(filter(f), f);
  EXPECT_EQ(dp_->counters().forward_allowed, 1u);
}

TEST_F(RunnerFilter, UnsolicitedInboundDropped) {
  for (const Bytes& f : {tcp_frame(kServer, kWorkload1, 443, 40000, kSyn),
                         udp_frame(kServer, kWorkload1, 53, 40000, {1}),
                         echo_frame(kServer, kWorkload1, kIcmpEchoRequest, 1, 1),
                         echo_frame(kServer, kWorkload1, kIcmpEchoReply, 1, 1)})
    EXPECT_EQ(filter(f).verdict, TC_ACT_SHOT);
  EXPECT_EQ(dp_->counters().forward_dropped_untracked, 4u);
}

TEST_F(RunnerFilter, RepliesOfTrackedFlowsAllowedAfterReverseTranslation) {
  auto out = egress(tcp_frame(kWorkload1, kServer, 40000, 443, kSyn));
  ASSERT_EQ(out.verdict, TC_ACT_OK);
  // The reply as the uplink ingress program hands it to routing, then to the bridge.
  auto back = ingress(tcp_frame(kServer, kUplink, 443, 40000, kSyn | kAck));
  ASSERT_EQ(back.verdict, TC_ACT_OK);
  expect_untouched(filter(back.out), back.out);

  // Same server, other port: not the tracked flow.
  EXPECT_EQ(filter(tcp_frame(kServer, kWorkload1, 444, 40000, kAck)).verdict, TC_ACT_SHOT);

  // Ping reply of a tracked echo.
  auto ping = egress(echo_frame(kWorkload1, kServer, kIcmpEchoRequest, 33000, 1));
  ASSERT_EQ(ping.verdict, TC_ACT_OK);
  EXPECT_EQ(filter(echo_frame(kServer, kWorkload1, kIcmpEchoReply, 33000, 1)).verdict, TC_ACT_OK);

  // An ICMP error about the tracked flow (already translated back) is related: allowed.
  Bytes quoted = ipv4(kWorkload1, kServer, kProtoTcp, tcp(kWorkload1, kServer, 40000, 443, kSyn));
  EXPECT_EQ(filter(frame(kRouter, kWorkload1, kProtoIcmp, icmp_error(kIcmpDestUnreach, 1, quoted)))
                .verdict,
            TC_ACT_OK);
  Bytes other = ipv4(kWorkload1, kServer, kProtoTcp, tcp(kWorkload1, kServer, 40001, 443, kSyn));
  EXPECT_EQ(filter(frame(kRouter, kWorkload1, kProtoIcmp, icmp_error(kIcmpDestUnreach, 1, other)))
                .verdict,
            TC_ACT_SHOT);
}

TEST_F(RunnerFilter, OutsideToOutsideThroughBridgeDropped) {
  auto r = filter(tcp_frame(kServer, ip("203.0.113.50"), 1, 2, kSyn));
  EXPECT_EQ(r.verdict, TC_ACT_SHOT);
  EXPECT_EQ(dp_->counters().forward_dropped_spoofed, 1u);
}

TEST_F(RunnerFilter, LocallyGeneratedAndNonIpv4Pass) {
  // ingress_ifindex 0: the runner itself talks to a workload; FORWARD never sees that.
  Bytes f = tcp_frame(kUplink, kWorkload1, 5000, 80, kSyn);
  EXPECT_EQ(filter(f, 0).verdict, TC_ACT_OK);
  Bytes arp = eth(kMacA, kMacB, Bytes(28, 0), kEthArp);
  EXPECT_EQ(filter(arp).verdict, TC_ACT_OK);
}

TEST_F(RunnerFilter, DenyRuleDropsEgressAndForwardedTraffic) {
  ASSERT_TRUE(dp_->add_deny_rule(rule("0.0.0.0/0", "198.51.100.10/32", IPPROTO_TCP, 443)));
  EXPECT_FALSE(dp_->add_deny_rule(rule("0.0.0.0/0", "198.51.100.10/32", IPPROTO_TCP, 443)));
  ASSERT_TRUE(dp_->add_deny_rule(rule("10.2.0.0/16", "10.1.0.5/32", 0, 0)));

  EXPECT_EQ(egress(tcp_frame(kWorkload1, kServer, 40000, 443, kSyn)).verdict, TC_ACT_SHOT);
  EXPECT_FALSE(ct_entry(kWorkload1, kServer, 40000, 443, kProtoTcp));
  // Other port, other protocol: not matched.
  EXPECT_EQ(egress(tcp_frame(kWorkload1, kServer, 40000, 80, kSyn)).verdict, TC_ACT_OK);
  EXPECT_EQ(egress(udp_frame(kWorkload1, kServer, 40000, 443, {1})).verdict, TC_ACT_OK);
  // Overlay traffic from the denied subnet into workload 1, and only into it.
  EXPECT_EQ(filter(udp_frame(kOtherRunnerWorkload, kWorkload1, 1, 2, {1})).verdict, TC_ACT_SHOT);
  EXPECT_EQ(filter(udp_frame(kOtherRunnerWorkload, kWorkload2, 1, 2, {1})).verdict, TC_ACT_OK);

  auto rules = dp_->deny_rules();
  ASSERT_EQ(rules.size(), 2u);
  uint64_t hits = 0;
  for (const auto& r : rules) hits += r.hits;
  EXPECT_EQ(hits, 2u);
  EXPECT_EQ(dp_->counters().policy_denied, 2u);

  ASSERT_TRUE(dp_->remove_deny_rule(rule("0.0.0.0/0", "198.51.100.10/32", IPPROTO_TCP, 443)));
  EXPECT_FALSE(dp_->remove_deny_rule(rule("0.0.0.0/0", "198.51.100.10/32", IPPROTO_TCP, 443)));
  EXPECT_EQ(egress(tcp_frame(kWorkload1, kServer, 40000, 443, kSyn)).verdict, TC_ACT_OK);
  ASSERT_TRUE(dp_->remove_deny_rule(rule("10.2.0.0/16", "10.1.0.5/32", 0, 0)));
  EXPECT_TRUE(dp_->deny_rules().empty());
  EXPECT_EQ(filter(udp_frame(kOtherRunnerWorkload, kWorkload1, 1, 2, {1})).verdict, TC_ACT_OK);
}

TEST_F(RunnerFilter, InvalidDenyRulesRejectedWithoutChange) {
  EXPECT_THROW(dp_->add_deny_rule(rule("0.0.0.0/0", "10.0.0.0/8", IPPROTO_ICMP, 80)),
               std::invalid_argument);
  runner::DenyRule host_bits{Ipv4Cidr{Ipv4Addr{ip("10.1.0.5")}, 16}, Ipv4Cidr{}, 0, 0};
  EXPECT_THROW(dp_->add_deny_rule(host_bits), std::invalid_argument);
  EXPECT_THROW(runner::DenyRule::parse_protocol("sctpx"), std::invalid_argument);
  EXPECT_EQ(runner::DenyRule::parse_protocol("udp"), IPPROTO_UDP);
  EXPECT_TRUE(dp_->deny_rules().empty());
  EXPECT_EQ(rule("10.2.0.0/16", "0.0.0.0/0", IPPROTO_TCP, 22).to_string(),
            "src=10.2.0.0/16 dst=any proto=tcp port=22");
}

}  // namespace
}  // namespace kohaku::test
