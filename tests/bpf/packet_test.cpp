// The packet builders and the from-scratch checksum verifier that every BPF test relies on.
#include "packet.h"

#include <gtest/gtest.h>

namespace kohaku::test::pkt {
namespace {

const uint32_t kA = ip("10.1.0.5");
const uint32_t kB = ip("192.0.2.7");

TEST(PacketBuilders, TcpFrameVerifiesAndParses) {
  Bytes f =
      eth(kMacA, kMacB, ipv4(kA, kB, kProtoTcp, tcp(kA, kB, 40000, 443, kSyn | kAck, {1, 2, 3})));
  EXPECT_EQ(verify_checksums(f), "");
  auto v = parse_eth_ipv4(f);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->src, kA);
  EXPECT_EQ(v->dst, kB);
  EXPECT_EQ(v->l4.sport, 40000);
  EXPECT_EQ(v->l4.dport, 443);
  EXPECT_EQ(v->l4.tcp_flags, kSyn | kAck);
  EXPECT_EQ(v->total_length, 20 + 20 + 3);
}

TEST(PacketBuilders, VerifierCatchesEveryCorruptedChecksum) {
  Bytes tcpf = eth(kMacA, kMacB, ipv4(kA, kB, kProtoTcp, tcp(kA, kB, 1, 2, kAck, {9})));
  Bytes bad_ip = tcpf;
  bad_ip[kEthLen + 10] ^= 1;
  EXPECT_EQ(verify_checksums(bad_ip), "IPv4 header checksum bad");
  Bytes bad_tcp = tcpf;
  bad_tcp[kEthLen + 20 + 16] ^= 1;
  EXPECT_EQ(verify_checksums(bad_tcp), "TCP checksum bad");
  // An address change without a pseudo-header fix must fail the L4 check.
  Bytes moved = tcpf;
  put32(moved.data() + kEthLen + 12, kA + 1);
  put16(moved.data() + kEthLen + 10, 0);
  put16(moved.data() + kEthLen + 10, csum(moved.data() + kEthLen, 20));
  EXPECT_EQ(verify_checksums(moved), "TCP checksum bad");

  Bytes udpf = eth(kMacA, kMacB, ipv4(kA, kB, kProtoUdp, udp(kA, kB, 53, 5353, {1, 2})));
  udpf.back() ^= 0x40;
  EXPECT_EQ(verify_checksums(udpf), "UDP checksum bad");

  Bytes echo = eth(kMacA, kMacB, ipv4(kA, kB, kProtoIcmp, icmp_echo(kIcmpEchoRequest, 7, 1)));
  echo[kEthLen + 20 + 4] ^= 1;
  EXPECT_EQ(verify_checksums(echo), "ICMP checksum bad");
}

TEST(PacketBuilders, ZeroUdpChecksumIsLegal) {
  Bytes f = eth(kMacA, kMacB, ipv4(kA, kB, kProtoUdp, udp(kA, kB, 1, 2, {5}, true)));
  EXPECT_EQ(get16(f.data() + kEthLen + 26), 0);
  EXPECT_EQ(verify_checksums(f), "");
}

TEST(PacketBuilders, IcmpErrorInnerHeadersAreVerified) {
  Bytes inner = ipv4(kB, kA, kProtoUdp, udp(kB, kA, 40000, 53, {1, 2, 3, 4}));
  Bytes err = icmp_error(kIcmpDestUnreach, kIcmpPortUnreach, inner);
  Bytes f = eth(kMacA, kMacB, ipv4(kA, kB, kProtoIcmp, err));
  EXPECT_EQ(verify_checksums(f), "");
  auto outer = parse_eth_ipv4(f);
  ASSERT_TRUE(outer);
  auto in = parse_icmp_inner(f.data(), f.size(), *outer);
  ASSERT_TRUE(in);
  EXPECT_EQ(in->src, kB);
  EXPECT_EQ(in->l4.sport, 40000);
  EXPECT_FALSE(in->truncated);

  // Corrupt the inner UDP checksum and fix the outer ICMP checksum: only the inner check fails.
  Bytes g = f;
  size_t icmp = kEthLen + 20;
  size_t inner_udp_csum = icmp + 8 + 20 + 6;
  g[inner_udp_csum] ^= 1;
  put16(g.data() + icmp + 2, 0);
  put16(g.data() + icmp + 2, csum(g.data() + icmp, g.size() - icmp));
  EXPECT_EQ(verify_checksums(g), "inner UDP checksum bad");

  // A cut-off quote (IP header + 8 bytes) still has its inner IP header checked.
  Bytes cut =
      eth(kMacA, kMacB, ipv4(kA, kB, kProtoIcmp, icmp_error(kIcmpTimeExceeded, 0, inner, 28)));
  EXPECT_EQ(verify_checksums(cut), "");
  cut[icmp + 8 + 10] ^= 1;
  put16(cut.data() + icmp + 2, 0);
  put16(cut.data() + icmp + 2, csum(cut.data() + icmp, cut.size() - icmp));
  EXPECT_EQ(verify_checksums(cut), "inner IPv4 header checksum bad");
}

TEST(PacketBuilders, VxlanCarriesInnerFrame) {
  Bytes inner = eth(kMacB, kMacA, ipv4(kA, kB, kProtoIcmp, icmp_echo(kIcmpEchoRequest, 1, 1)));
  Bytes f = eth(kMacA, kMacB,
                ipv4(ip("198.51.100.1"), ip("198.51.100.2"), kProtoUdp,
                     udp(ip("198.51.100.1"), ip("198.51.100.2"), 51000, 4789, vxlan(100, inner))));
  EXPECT_EQ(verify_checksums(f), "");
  const uint8_t* v = f.data() + kEthLen + 28;
  EXPECT_EQ(v[0], 0x08);
  EXPECT_EQ(get32(v + 4) >> 8, 100u);
  EXPECT_EQ(Bytes(v + 8, v + (f.size() - kEthLen - 28)), inner);
}

}  // namespace
}  // namespace kohaku::test::pkt
