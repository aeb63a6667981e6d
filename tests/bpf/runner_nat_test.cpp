// Masquerade on the runner's uplink (runner_nat_egress / runner_nat_ingress) through
// BPF_PROG_TEST_RUN: every translated frame is checked field by field and every checksum is
// recomputed from scratch (packet.h).
#include <netinet/in.h>

#include <set>

#include "runner_fixture.h"

namespace kohaku::test {
namespace {

using RunnerNat = RunnerDatapathTest;
constexpr uint64_t kSec = 1'000'000'000ull;

TEST_F(RunnerNat, TcpSynDataFinRoundTrip) {
  // SYN: source becomes the uplink, the in-range source port is kept.
  auto syn = passed(egress(tcp_frame(kWorkload1, kServer, 40000, 443, kSyn)));
  EXPECT_EQ(syn.src, kUplink);
  EXPECT_EQ(syn.dst, kServer);
  EXPECT_EQ(syn.l4.sport, 40000);
  EXPECT_EQ(syn.l4.dport, 443);
  EXPECT_EQ(syn.l4.tcp_flags, kSyn);
  EXPECT_EQ(syn.ttl, 64);
  auto e = ct_entry(kWorkload1, kServer, 40000, 443, kProtoTcp);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->dir, RUNNER_CT_ORIGINAL);
  EXPECT_EQ(e->tcp_state, RUNNER_TCP_SYN_SENT);
  EXPECT_EQ(e->nat_port, 40000);
  EXPECT_NEAR(double(e->expires_ns - e->last_seen_ns), 120.0 * kSec, 1.0);
  auto r = ct_entry(kServer, kUplink, 443, 40000, kProtoTcp);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->dir, RUNNER_CT_REPLY);
  EXPECT_EQ(r->nat_port, 40000);

  // SYN-ACK comes back to the workload.
  auto synack = passed(ingress(tcp_frame(kServer, kUplink, 443, 40000, kSyn | kAck)));
  EXPECT_EQ(synack.src, kServer);
  EXPECT_EQ(synack.dst, kWorkload1);
  EXPECT_EQ(synack.l4.sport, 443);
  EXPECT_EQ(synack.l4.dport, 40000);
  EXPECT_EQ(ct_entry(kWorkload1, kServer, 40000, 443, kProtoTcp)->tcp_state, RUNNER_TCP_SYN_RECV);

  // ACK with data: established, payload intact.
  Bytes data = {'G', 'E', 'T', ' ', '/'};
  auto ack = egress(tcp_frame(kWorkload1, kServer, 40000, 443, kAck | kPsh, data));
  auto ackv = passed(ack);
  EXPECT_EQ(ackv.src, kUplink);
  EXPECT_EQ(Bytes(ack.out.end() - 5, ack.out.end()), data);
  e = ct_entry(kWorkload1, kServer, 40000, 443, kProtoTcp);
  EXPECT_EQ(e->tcp_state, RUNNER_TCP_ESTABLISHED);
  EXPECT_NEAR(double(e->expires_ns - e->last_seen_ns), 432000.0 * kSec, 1.0);
  EXPECT_EQ(e->packets_original, 2u);
  EXPECT_EQ(e->packets_reply, 1u);

  auto reply = passed(ingress(tcp_frame(kServer, kUplink, 443, 40000, kAck, {'o', 'k'})));
  EXPECT_EQ(reply.dst, kWorkload1);

  // FIN from the workload, then from the server: FIN_WAIT then TIME_WAIT.
  passed(egress(tcp_frame(kWorkload1, kServer, 40000, 443, kFin | kAck)));
  EXPECT_EQ(ct_entry(kWorkload1, kServer, 40000, 443, kProtoTcp)->tcp_state, RUNNER_TCP_FIN_WAIT);
  auto fin = passed(ingress(tcp_frame(kServer, kUplink, 443, 40000, kFin | kAck)));
  EXPECT_EQ(fin.dst, kWorkload1);
  EXPECT_EQ(fin.l4.tcp_flags, kFin | kAck);
  e = ct_entry(kWorkload1, kServer, 40000, 443, kProtoTcp);
  EXPECT_EQ(e->tcp_state, RUNNER_TCP_TIME_WAIT);
  EXPECT_NEAR(double(e->expires_ns - e->last_seen_ns), 120.0 * kSec, 1.0);

  auto c = dp_->counters();
  EXPECT_EQ(c.egress_translated, 3u);
  EXPECT_EQ(c.ingress_translated, 3u);
  EXPECT_EQ(c.ct_created, 1u);
  // Every counter has a name in the status output.
  EXPECT_EQ(runner::RunnerDatapath::named_counters(c).size() * sizeof(uint64_t),
            sizeof(runner_stats));
}

TEST_F(RunnerNat, RstClosesFlowWithShortTimeout) {
  passed(egress(tcp_frame(kWorkload1, kServer, 40001, 80, kSyn)));
  passed(ingress(tcp_frame(kServer, kUplink, 80, 40001, kRst | kAck)));
  auto e = ct_entry(kWorkload1, kServer, 40001, 80, kProtoTcp);
  ASSERT_TRUE(e);
  EXPECT_EQ(e->tcp_state, RUNNER_TCP_CLOSE);
  EXPECT_NEAR(double(e->expires_ns - e->last_seen_ns), 10.0 * kSec, 1.0);
}

TEST_F(RunnerNat, PortOutsideRangeGetsOneFromTheRange) {
  auto out = passed(egress(tcp_frame(kWorkload1, kServer, 1234, 22, kSyn)));
  EXPECT_EQ(out.src, kUplink);
  EXPECT_GE(out.l4.sport, 32768);
  EXPECT_NE(out.l4.sport, 1234);
  auto back = passed(ingress(tcp_frame(kServer, kUplink, 22, out.l4.sport, kSyn | kAck)));
  EXPECT_EQ(back.dst, kWorkload1);
  EXPECT_EQ(back.l4.dport, 1234);
}

TEST_F(RunnerNat, UdpRoundTripAndStreamTimeout) {
  Bytes query = {1, 2, 3, 4, 5, 6, 7};
  auto out = passed(egress(udp_frame(kWorkload1, kServer, 50000, 53, query)));
  EXPECT_EQ(out.src, kUplink);
  EXPECT_EQ(out.l4.sport, 50000);
  EXPECT_EQ(out.l4.dport, 53);
  EXPECT_NE(out.l4.checksum, 0);
  auto e = ct_entry(kWorkload1, kServer, 50000, 53, kProtoUdp);
  ASSERT_TRUE(e);
  EXPECT_NEAR(double(e->expires_ns - e->last_seen_ns), 30.0 * kSec, 1.0);

  auto back = passed(ingress(udp_frame(kServer, kUplink, 53, 50000, {9, 9})));
  EXPECT_EQ(back.src, kServer);
  EXPECT_EQ(back.dst, kWorkload1);
  EXPECT_EQ(back.l4.dport, 50000);
  e = ct_entry(kWorkload1, kServer, 50000, 53, kProtoUdp);
  EXPECT_TRUE(e->flags & RUNNER_CT_SEEN_REPLY);
  EXPECT_NEAR(double(e->expires_ns - e->last_seen_ns), 120.0 * kSec, 1.0);
}

TEST_F(RunnerNat, UdpZeroChecksumStaysZero) {
  auto out = egress(udp_frame(kWorkload1, kServer, 50001, 4500, {1, 2, 3}, true));
  auto v = passed(out);
  EXPECT_EQ(v.src, kUplink);
  EXPECT_EQ(v.l4.checksum, 0);
  auto back = ingress(udp_frame(kServer, kUplink, 4500, 50001, {4, 5}, true));
  auto b = passed(back);
  EXPECT_EQ(b.dst, kWorkload1);
  EXPECT_EQ(b.l4.checksum, 0);
}

TEST_F(RunnerNat, IcmpEchoAndReply) {
  // Identifier 7 lies outside the port range: it is replaced by one from the range.
  auto out = passed(egress(echo_frame(kWorkload1, kServer, kIcmpEchoRequest, 7, 1)));
  EXPECT_EQ(out.src, kUplink);
  EXPECT_EQ(out.l4.icmp_type, kIcmpEchoRequest);
  EXPECT_EQ(out.l4.icmp_seq, 1);
  uint16_t external = out.l4.icmp_id;
  EXPECT_GE(external, 32768);
  auto e = ct_entry(kWorkload1, kServer, 7, 7, kProtoIcmp);
  ASSERT_TRUE(e);
  EXPECT_NEAR(double(e->expires_ns - e->last_seen_ns), 30.0 * kSec, 1.0);

  auto back = passed(ingress(echo_frame(kServer, kUplink, kIcmpEchoReply, external, 1)));
  EXPECT_EQ(back.dst, kWorkload1);
  EXPECT_EQ(back.l4.icmp_type, kIcmpEchoReply);
  EXPECT_EQ(back.l4.icmp_id, 7);
  EXPECT_EQ(back.l4.icmp_seq, 1);

  // An echo request from outside to the uplink is the runner's own business.
  Bytes ping_us = echo_frame(kServer, kUplink, kIcmpEchoRequest, external, 2);
  expect_untouched(ingress(ping_us), ping_us);
}

TEST_F(RunnerNat, PortCollisionGivesDistinctExternalPorts) {
  auto a = passed(egress(tcp_frame(kWorkload1, kServer, 41000, 443, kSyn)));
  auto b = passed(egress(tcp_frame(kWorkload2, kServer, 41000, 443, kSyn)));
  EXPECT_EQ(a.l4.sport, 41000);
  EXPECT_NE(b.l4.sport, 41000);
  EXPECT_GE(b.l4.sport, 32768);
  EXPECT_EQ(a.src, kUplink);
  EXPECT_EQ(b.src, kUplink);
  EXPECT_GE(dp_->counters().nat_port_retries, 1u);

  // Each reply finds its own workload.
  auto ra = passed(ingress(tcp_frame(kServer, kUplink, 443, a.l4.sport, kSyn | kAck)));
  auto rb = passed(ingress(tcp_frame(kServer, kUplink, 443, b.l4.sport, kSyn | kAck)));
  EXPECT_EQ(ra.dst, kWorkload1);
  EXPECT_EQ(ra.l4.dport, 41000);
  EXPECT_EQ(rb.dst, kWorkload2);
  EXPECT_EQ(rb.l4.dport, 41000);

  // Packets of an existing flow keep their port.
  auto again = passed(egress(tcp_frame(kWorkload2, kServer, 41000, 443, kAck)));
  EXPECT_EQ(again.l4.sport, b.l4.sport);
}

TEST_F(RunnerNat, ExhaustedPortRangeDropsAndCounts) {
  auto c = config();
  c.port_min = 45000;
  c.port_max = 45001;
  dp_->configure(c);
  std::set<uint16_t> ports;
  for (uint32_t host : {ip("10.1.0.10"), ip("10.1.0.11")}) {
    auto v = passed(egress(tcp_frame(host, kServer, 45000, 443, kSyn)));
    ports.insert(v.l4.sport);
  }
  EXPECT_EQ(ports, (std::set<uint16_t>{45000, 45001}));
  auto third = egress(tcp_frame(ip("10.1.0.12"), kServer, 45000, 443, kSyn));
  EXPECT_EQ(third.verdict, TC_ACT_SHOT);
  auto counters = dp_->counters();
  EXPECT_EQ(counters.nat_alloc_failed, 1u);
  EXPECT_GE(counters.nat_port_retries, 2u);
}

TEST_F(RunnerNat, IcmpErrorForTranslatedUdpFlowIsReverseTranslated) {
  Bytes payload = {'q', 'u', 'e', 'r', 'y'};
  auto out = egress(udp_frame(kWorkload1, kServer, 50002, 53, payload));
  auto ov = passed(out);
  // The router quotes the translated packet whole (as Linux does for small packets).
  Bytes quoted(out.out.begin() + kEthLen, out.out.end());
  Bytes err =
      frame(kRouter, kUplink, kProtoIcmp, icmp_error(kIcmpDestUnreach, kIcmpPortUnreach, quoted));
  auto res = ingress(err);
  auto v = passed(res);  // verifies outer ICMP, inner IP and inner UDP checksums
  EXPECT_EQ(v.src, kRouter);
  EXPECT_EQ(v.dst, kWorkload1);
  EXPECT_EQ(v.l4.icmp_type, kIcmpDestUnreach);
  EXPECT_EQ(v.l4.icmp_code, kIcmpPortUnreach);
  auto in = parse_icmp_inner(res.out.data(), res.out.size(), v);
  ASSERT_TRUE(in);
  EXPECT_FALSE(in->truncated);
  EXPECT_EQ(in->src, kWorkload1);
  EXPECT_EQ(in->dst, kServer);
  EXPECT_EQ(in->l4.sport, 50002);
  EXPECT_EQ(in->l4.dport, 53);
  EXPECT_NE(in->l4.checksum, 0);
  EXPECT_EQ(Bytes(res.out.end() - 5, res.out.end()), payload);
  EXPECT_EQ(dp_->counters().icmp_errors_translated, 1u);
  (void)ov;
}

TEST_F(RunnerNat, IcmpErrorQuotingTcpHeaderOnlyAndCutOff) {
  auto out = egress(tcp_frame(kWorkload1, kServer, 1500, 443, kSyn));  // port 1500 is remapped
  auto ov = passed(out);
  ASSERT_NE(ov.l4.sport, 1500);
  Bytes quoted(out.out.begin() + kEthLen, out.out.end());

  // Whole quote: inner TCP checksum verified after translation.
  auto whole =
      ingress(frame(kRouter, kUplink, kProtoIcmp, icmp_error(kIcmpTimeExceeded, 0, quoted)));
  auto wv = passed(whole);
  auto win = parse_icmp_inner(whole.out.data(), whole.out.size(), wv);
  ASSERT_TRUE(win);
  EXPECT_EQ(win->src, kWorkload1);
  EXPECT_EQ(win->l4.sport, 1500);
  EXPECT_EQ(win->l4.dport, 443);

  // RFC 792 minimum quote (IP header + 8 bytes): ports translated, inner IP checksum verified.
  auto cut =
      ingress(frame(kRouter, kUplink, kProtoIcmp, icmp_error(kIcmpTimeExceeded, 0, quoted, 28)));
  auto cv = passed(cut);
  auto cin = parse_icmp_inner(cut.out.data(), cut.out.size(), cv);
  ASSERT_TRUE(cin);
  EXPECT_TRUE(cin->truncated);
  EXPECT_EQ(cv.dst, kWorkload1);
  EXPECT_EQ(cin->src, kWorkload1);
  EXPECT_EQ(cin->l4.sport, 1500);
}

TEST_F(RunnerNat, IcmpErrorAboutEchoIsReverseTranslated) {
  auto out = egress(echo_frame(kWorkload1, kServer, kIcmpEchoRequest, 9, 3));
  auto ov = passed(out);
  Bytes quoted(out.out.begin() + kEthLen, out.out.end());
  auto res = ingress(frame(kRouter, kUplink, kProtoIcmp, icmp_error(kIcmpTimeExceeded, 0, quoted)));
  auto v = passed(res);  // includes the quoted echo's ICMP checksum
  auto in = parse_icmp_inner(res.out.data(), res.out.size(), v);
  ASSERT_TRUE(in);
  EXPECT_EQ(v.dst, kWorkload1);
  EXPECT_EQ(in->src, kWorkload1);
  EXPECT_EQ(in->l4.icmp_id, 9);
  EXPECT_EQ(in->l4.icmp_seq, 3);
  (void)ov;
}

TEST_F(RunnerNat, IcmpErrorFromWorkloadAboutReplyIsTranslated) {
  auto out = passed(egress(udp_frame(kWorkload1, kServer, 1600, 9999, {1})));
  uint16_t external = out.l4.sport;
  // The workload answers a reply with Port Unreachable, quoting the reply as it received it.
  Bytes reply_as_received =
      ipv4(kServer, kWorkload1, kProtoUdp, udp(kServer, kWorkload1, 9999, 1600, {7, 7, 7}));
  auto res = egress(frame(kWorkload1, kServer, kProtoIcmp,
                          icmp_error(kIcmpDestUnreach, kIcmpPortUnreach, reply_as_received)));
  auto v = passed(res);
  EXPECT_EQ(v.src, kUplink);
  EXPECT_EQ(v.dst, kServer);
  auto in = parse_icmp_inner(res.out.data(), res.out.size(), v);
  ASSERT_TRUE(in);
  EXPECT_EQ(in->src, kServer);
  EXPECT_EQ(in->dst, kUplink);
  EXPECT_EQ(in->l4.sport, 9999);
  EXPECT_EQ(in->l4.dport, external);

  // An ICMP error about no tracked flow would leak an overlay address: dropped.
  Bytes unknown = ipv4(kServer, kWorkload1, kProtoUdp, udp(kServer, kWorkload1, 1, 2, {}));
  auto drop = egress(frame(kWorkload1, kServer, kProtoIcmp,
                           icmp_error(kIcmpDestUnreach, kIcmpPortUnreach, unknown)));
  EXPECT_EQ(drop.verdict, TC_ACT_SHOT);
  EXPECT_EQ(dp_->counters().dropped_untracked_icmp_error, 1u);
}

TEST_F(RunnerNat, OverlayInternalTrafficUntouched) {
  Bytes f = tcp_frame(kWorkload1, kOtherRunnerWorkload, 40000, 80, kSyn);
  expect_untouched(egress(f), f);
  EXPECT_FALSE(ct_entry(kWorkload1, kOtherRunnerWorkload, 40000, 80, kProtoTcp));
}

TEST_F(RunnerNat, VxlanUnderlayUntouched) {
  Bytes inner = eth(kMacB, kMacA,
                    ipv4(kWorkload1, kOtherRunnerWorkload, kProtoUdp,
                         udp(kWorkload1, kOtherRunnerWorkload, 5000, 4789, {1, 2})));
  for (bool zero : {false, true}) {
    Bytes out_f = udp_frame(kUplink, kHostUnderlay, 51000, 4789, vxlan(101, inner), zero);
    expect_untouched(egress(out_f), out_f);
    Bytes in_f = udp_frame(kHostUnderlay, kUplink, 51000, 4789, vxlan(101, inner), zero);
    expect_untouched(ingress(in_f), in_f);
  }
  EXPECT_EQ(dp_->counters().passed_vxlan_underlay, 4u);
  EXPECT_EQ(dp_->table_usage().entries, 0u);
}

TEST_F(RunnerNat, TrafficNotFromOverlayUntouched) {
  Bytes own = tcp_frame(kUplink, kServer, 40000, 443, kSyn);
  expect_untouched(egress(own), own);
  Bytes other = udp_frame(ip("172.16.0.1"), kServer, 1, 2, {3});
  EXPECT_EQ(egress(other).out, other);
  // Only the runner's own flow is remembered (as a port reservation), never translated.
  EXPECT_EQ(dp_->table_usage().entries, 1u);
  EXPECT_EQ(dp_->counters().egress_translated, 0u);
}

TEST_F(RunnerNat, RunnerOwnFlowsReserveTheirPorts) {
  // The runner's own connection from the uplink address, port 40000, to the server.
  Bytes own = tcp_frame(kUplink, kServer, 40000, 443, kSyn);
  EXPECT_EQ(egress(own).out, own);
  auto host = ct_entry(kServer, kUplink, 443, 40000, kProtoTcp);
  ASSERT_TRUE(host);
  EXPECT_TRUE(host->flags & RUNNER_CT_HOST);
  EXPECT_EQ(host->tcp_state, RUNNER_TCP_SYN_SENT);

  // A workload using the same port to the same server must get another external port.
  auto w = passed(egress(tcp_frame(kWorkload1, kServer, 40000, 443, kSyn)));
  EXPECT_NE(w.l4.sport, 40000);

  // The server's answer to the runner stays with the runner, the other goes to the workload.
  Bytes to_runner = tcp_frame(kServer, kUplink, 443, 40000, kSyn | kAck);
  expect_untouched(ingress(to_runner), to_runner);
  EXPECT_EQ(ct_entry(kServer, kUplink, 443, 40000, kProtoTcp)->tcp_state, RUNNER_TCP_SYN_RECV);
  auto tw = passed(ingress(tcp_frame(kServer, kUplink, 443, w.l4.sport, kSyn | kAck)));
  EXPECT_EQ(tw.dst, kWorkload1);
  EXPECT_EQ(tw.l4.dport, 40000);

  // An ICMP error about the runner's own flow is not translated either.
  Bytes quoted = ipv4(kUplink, kServer, kProtoTcp, tcp(kUplink, kServer, 40000, 443, kSyn));
  Bytes err = frame(kRouter, kUplink, kProtoIcmp, icmp_error(kIcmpDestUnreach, 1, quoted));
  EXPECT_EQ(ingress(err).out, err);

  // The other order: the runner reuses a port masquerade already handed out. Counted.
  auto w2 = passed(egress(udp_frame(kWorkload2, kServer, 47000, 53, {1})));
  ASSERT_EQ(w2.l4.sport, 47000);
  Bytes own_udp = udp_frame(kUplink, kServer, 47000, 53, {2});
  EXPECT_EQ(egress(own_udp).out, own_udp);
  EXPECT_EQ(dp_->counters().host_port_conflicts, 1u);
}

TEST_F(RunnerNat, UnsolicitedInboundPassesUntranslatedToHost) {
  // No flow: the packet is for the runner itself (its own sockets decide), never a workload.
  Bytes f = tcp_frame(kServer, kUplink, 443, 40000, kSyn);
  expect_untouched(ingress(f), f);
  EXPECT_EQ(dp_->counters().ingress_translated, 0u);
}

TEST_F(RunnerNat, OverlayFragmentsAndPortlessProtocolsAreDropped) {
  Ipv4Options frag;
  frag.dont_fragment = false;
  frag.more_fragments = true;
  auto r = egress(frame(kWorkload1, kServer, kProtoUdp, udp(kWorkload1, kServer, 1, 2, {1}), frag));
  EXPECT_EQ(r.verdict, TC_ACT_SHOT);
  auto gre = egress(frame(kWorkload1, kServer, 47, Bytes(8, 0)));
  EXPECT_EQ(gre.verdict, TC_ACT_SHOT);
  EXPECT_EQ(dp_->counters().dropped_unsupported, 2u);
}

TEST_F(RunnerNat, DisabledDatapathPassesEverything) {
  dp_->disable();
  Bytes f = tcp_frame(kWorkload1, kServer, 40000, 443, kSyn);
  expect_untouched(egress(f), f);
  EXPECT_FALSE(dp_->configuration());
}

TEST_F(RunnerNat, ChangedUplinkAddressRemapsExistingFlow) {
  passed(egress(tcp_frame(kWorkload1, kServer, 42000, 443, kSyn)));
  auto c = config();
  c.uplink = Ipv4Addr{ip("192.168.60.2")};
  dp_->configure(c);
  auto v = passed(egress(tcp_frame(kWorkload1, kServer, 42000, 443, kAck)));
  EXPECT_EQ(v.src, ip("192.168.60.2"));
  EXPECT_FALSE(ct_entry(kServer, kUplink, 443, 42000, kProtoTcp));
  EXPECT_TRUE(ct_entry(kServer, ip("192.168.60.2"), 443, 42000, kProtoTcp));
}

}  // namespace
}  // namespace kohaku::test
