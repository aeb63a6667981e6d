#pragma once
// Hand-built packets for BPF_PROG_TEST_RUN tests, and a parser that re-checks every checksum from
// scratch (never incrementally), so a program that patches a checksum wrongly cannot pass.
//
// Addresses and ports are passed in host byte order and written in network order. Builders nest:
//   auto frame = pkt::eth(kMacA, kMacB, pkt::ipv4(src, dst, pkt::tcp(src, dst, 1000, 80,
//   pkt::kSyn)));
// The L4 builders take the IPv4 addresses because their checksums cover the pseudo header.
#include <algorithm>
#include <array>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace kohaku::test::pkt {

using Bytes = std::vector<uint8_t>;
using Mac = std::array<uint8_t, 6>;

inline constexpr uint16_t kEthIpv4 = 0x0800;
inline constexpr uint16_t kEthArp = 0x0806;
inline constexpr uint8_t kProtoIcmp = 1;
inline constexpr uint8_t kProtoTcp = 6;
inline constexpr uint8_t kProtoUdp = 17;
inline constexpr size_t kEthLen = 14;

// TCP flag bits (byte 13 of the TCP header).
inline constexpr uint8_t kFin = 0x01;
inline constexpr uint8_t kSyn = 0x02;
inline constexpr uint8_t kRst = 0x04;
inline constexpr uint8_t kPsh = 0x08;
inline constexpr uint8_t kAck = 0x10;

// ICMP types and codes used by the tests.
inline constexpr uint8_t kIcmpEchoReply = 0;
inline constexpr uint8_t kIcmpDestUnreach = 3;
inline constexpr uint8_t kIcmpEchoRequest = 8;
inline constexpr uint8_t kIcmpTimeExceeded = 11;
inline constexpr uint8_t kIcmpPortUnreach = 3;  // code under kIcmpDestUnreach

// Big-endian field access.
inline uint16_t get16(const uint8_t* p) {
  return static_cast<uint16_t>(p[0] << 8 | p[1]);
}
inline uint32_t get32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
inline void put16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void put32(uint8_t* p, uint32_t v) {
  put16(p, static_cast<uint16_t>(v >> 16));
  put16(p + 2, static_cast<uint16_t>(v));
}

// "a.b.c.d" -> host-order address; throws on malformed input so a typo fails the test loudly.
inline uint32_t ip(const char* text) {
  unsigned a, b, c, d;
  char tail;
  if (std::sscanf(text, "%u.%u.%u.%u%c", &a, &b, &c, &d, &tail) != 4 || a > 255 || b > 255 ||
      c > 255 || d > 255)
    throw std::invalid_argument(std::string("bad IPv4 address in test: ") + text);
  return a << 24 | b << 16 | c << 8 | d;
}
inline std::string ip_str(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string(a >> 16 & 255) + "." +
         std::to_string(a >> 8 & 255) + "." + std::to_string(a & 255);
}

// RFC 1071 one's-complement sum, folded to 16 bits (not inverted). `initial` chains partial sums.
inline uint32_t sum16(const uint8_t* p, size_t n, uint32_t initial = 0) {
  uint64_t s = initial;
  for (size_t i = 0; i + 1 < n; i += 2) s += get16(p + i);
  if (n & 1) s += uint32_t{p[n - 1]} << 8;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint32_t>(s);
}
inline uint16_t csum(const uint8_t* p, size_t n, uint32_t initial = 0) {
  return static_cast<uint16_t>(~sum16(p, n, initial) & 0xffff);
}
inline uint32_t pseudo_sum(uint32_t src, uint32_t dst, uint8_t proto, size_t l4_len) {
  uint8_t ph[12];
  put32(ph, src);
  put32(ph + 4, dst);
  ph[8] = 0;
  ph[9] = proto;
  put16(ph + 10, static_cast<uint16_t>(l4_len));
  return sum16(ph, sizeof ph);
}

inline Bytes concat(Bytes head, const Bytes& tail) {
  head.insert(head.end(), tail.begin(), tail.end());
  return head;
}

inline Bytes eth(const Mac& dst, const Mac& src, const Bytes& payload,
                 uint16_t ethertype = kEthIpv4) {
  Bytes f(kEthLen);
  std::copy(dst.begin(), dst.end(), f.begin());
  std::copy(src.begin(), src.end(), f.begin() + 6);
  put16(f.data() + 12, ethertype);
  return concat(std::move(f), payload);
}

struct Ipv4Options {
  uint8_t ttl = 64;
  uint16_t id = 0x1234;
  bool dont_fragment = true;
  bool more_fragments = false;
  uint16_t frag_offset = 0;  // in 8-byte units
  // When set, the header claims this total length (ICMP errors quote the original length of a
  // packet whose tail they cut off).
  std::optional<uint16_t> total_length;
};

// IPv4 header (no options) + payload, with a correct header checksum. `proto` is the L4 protocol.
inline Bytes ipv4(uint32_t src, uint32_t dst, uint8_t proto, const Bytes& payload,
                  const Ipv4Options& o = {}) {
  Bytes h(20);
  h[0] = 0x45;
  put16(h.data() + 2, o.total_length.value_or(static_cast<uint16_t>(20 + payload.size())));
  put16(h.data() + 4, o.id);
  uint16_t frag = static_cast<uint16_t>((o.dont_fragment ? 0x4000 : 0) |
                                        (o.more_fragments ? 0x2000 : 0) | (o.frag_offset & 0x1fff));
  put16(h.data() + 6, frag);
  h[8] = o.ttl;
  h[9] = proto;
  put32(h.data() + 12, src);
  put32(h.data() + 16, dst);
  put16(h.data() + 10, csum(h.data(), 20));
  return concat(std::move(h), payload);
}

struct TcpOptions {
  uint32_t seq = 1000;
  uint32_t ack = 0;
  uint16_t window = 65535;
};

inline Bytes tcp(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t flags,
                 const Bytes& payload = {}, const TcpOptions& o = {}) {
  Bytes t(20);
  put16(t.data(), sport);
  put16(t.data() + 2, dport);
  put32(t.data() + 4, o.seq);
  put32(t.data() + 8, o.ack);
  t[12] = 5 << 4;
  t[13] = flags;
  put16(t.data() + 14, o.window);
  t = concat(std::move(t), payload);
  put16(t.data() + 16, csum(t.data(), t.size(), pseudo_sum(src, dst, kProtoTcp, t.size())));
  return t;
}

// UDP datagram; zero_checksum leaves the checksum field 0 ("not computed", legal for IPv4).
inline Bytes udp(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, const Bytes& payload,
                 bool zero_checksum = false) {
  Bytes u(8);
  put16(u.data(), sport);
  put16(u.data() + 2, dport);
  put16(u.data() + 4, static_cast<uint16_t>(8 + payload.size()));
  u = concat(std::move(u), payload);
  if (!zero_checksum) {
    uint16_t c = csum(u.data(), u.size(), pseudo_sum(src, dst, kProtoUdp, u.size()));
    put16(u.data() + 6, c == 0 ? 0xffff : c);  // a computed 0 is sent as all ones
  }
  return u;
}

inline Bytes icmp_echo(uint8_t type, uint16_t id, uint16_t seq, const Bytes& payload = {}) {
  Bytes m(8);
  m[0] = type;
  put16(m.data() + 4, id);
  put16(m.data() + 6, seq);
  m = concat(std::move(m), payload);
  put16(m.data() + 2, csum(m.data(), m.size()));
  return m;
}

// ICMP error (Destination Unreachable, Time Exceeded, ...) quoting `offending_ip`: an IPv4 packet
// starting at its IP header. `quote_bytes` cuts the quote (RFC 792 minimum: IP header + 8 bytes);
// 0 quotes it whole, as Linux does for small packets.
inline Bytes icmp_error(uint8_t type, uint8_t code, const Bytes& offending_ip,
                        size_t quote_bytes = 0) {
  Bytes m(8);
  m[0] = type;
  m[1] = code;
  size_t n = quote_bytes == 0 ? offending_ip.size() : std::min(quote_bytes, offending_ip.size());
  m.insert(m.end(), offending_ip.begin(), offending_ip.begin() + static_cast<long>(n));
  put16(m.data() + 2, csum(m.data(), m.size()));
  return m;
}

// VXLAN header (I flag set) + inner Ethernet frame: the payload of a UDP datagram to port 4789.
inline Bytes vxlan(uint32_t vni, const Bytes& inner_frame) {
  Bytes v(8);
  v[0] = 0x08;
  v[4] = static_cast<uint8_t>(vni >> 16);
  v[5] = static_cast<uint8_t>(vni >> 8);
  v[6] = static_cast<uint8_t>(vni);
  return concat(std::move(v), inner_frame);
}

inline constexpr uint16_t kArpRequest = 1;
inline constexpr uint16_t kArpReply = 2;

// Ethernet/IPv4 ARP body (RFC 826); wrap it with eth(..., kEthArp).
inline Bytes arp(uint16_t op, const Mac& sender_mac, uint32_t sender_ip, const Mac& target_mac,
                 uint32_t target_ip) {
  Bytes a(28);
  put16(a.data(), 1);  // Ethernet
  put16(a.data() + 2, kEthIpv4);
  a[4] = 6;
  a[5] = 4;
  put16(a.data() + 6, op);
  std::copy(sender_mac.begin(), sender_mac.end(), a.begin() + 8);
  put32(a.data() + 14, sender_ip);
  std::copy(target_mac.begin(), target_mac.end(), a.begin() + 18);
  put32(a.data() + 24, target_ip);
  return a;
}

// ---------------------------------------------------------------------------------------------
// Parsing and from-scratch verification.

struct L4View {
  uint8_t proto = 0;
  uint16_t sport = 0, dport = 0;  // TCP/UDP ports; ICMP echo: both hold the identifier
  uint8_t tcp_flags = 0;
  uint16_t checksum = 0;  // as found in the packet
  uint8_t icmp_type = 0, icmp_code = 0;
  uint16_t icmp_id = 0, icmp_seq = 0;
};

struct Ipv4View {
  size_t offset = 0;  // of the IP header inside the buffer parsed
  size_t header_len = 0;
  uint16_t total_length = 0;
  uint8_t ttl = 0;
  uint8_t proto = 0;
  uint16_t checksum = 0;
  uint32_t src = 0, dst = 0;
  bool truncated = false;  // fewer bytes present than total_length claims (quoted in ICMP)
  L4View l4;
};

// Parses an IPv4 header and the start of its L4 header at `off`; nullopt when too short.
inline std::optional<Ipv4View> parse_ipv4(const uint8_t* p, size_t len, size_t off = 0) {
  if (len < off + 20 || (p[off] >> 4) != 4) return std::nullopt;
  Ipv4View v;
  v.offset = off;
  v.header_len = size_t{p[off] & 15u} * 4;
  if (v.header_len < 20 || len < off + v.header_len) return std::nullopt;
  const uint8_t* h = p + off;
  v.total_length = get16(h + 2);
  v.ttl = h[8];
  v.proto = h[9];
  v.checksum = get16(h + 10);
  v.src = get32(h + 12);
  v.dst = get32(h + 16);
  v.truncated = len - off < v.total_length;
  const uint8_t* l4 = h + v.header_len;
  size_t l4_avail = std::min<size_t>(len - off, v.total_length) - v.header_len;
  v.l4.proto = v.proto;
  if ((v.proto == kProtoTcp || v.proto == kProtoUdp) && l4_avail >= 4) {
    v.l4.sport = get16(l4);
    v.l4.dport = get16(l4 + 2);
    if (v.proto == kProtoTcp && l4_avail >= 18) {
      v.l4.tcp_flags = l4[13];
      v.l4.checksum = get16(l4 + 16);
    }
    if (v.proto == kProtoUdp && l4_avail >= 8) v.l4.checksum = get16(l4 + 6);
  } else if (v.proto == kProtoIcmp && l4_avail >= 8) {
    v.l4.icmp_type = l4[0];
    v.l4.icmp_code = l4[1];
    v.l4.checksum = get16(l4 + 2);
    v.l4.icmp_id = v.l4.sport = v.l4.dport = get16(l4 + 4);
    v.l4.icmp_seq = get16(l4 + 6);
  }
  return v;
}

inline std::optional<Ipv4View> parse_eth_ipv4(const Bytes& frame) {
  if (frame.size() < kEthLen || get16(frame.data() + 12) != kEthIpv4) return std::nullopt;
  return parse_ipv4(frame.data(), frame.size(), kEthLen);
}

inline bool is_icmp_error(uint8_t type) {
  return type == 3 || type == 11 || type == 12;
}

// The IPv4 packet quoted by an ICMP error, parsed from the error's payload.
inline std::optional<Ipv4View> parse_icmp_inner(const uint8_t* p, size_t len,
                                                const Ipv4View& outer) {
  if (outer.proto != kProtoIcmp || !is_icmp_error(outer.l4.icmp_type)) return std::nullopt;
  size_t end = std::min<size_t>(len, outer.offset + outer.total_length);
  return parse_ipv4(p, end, outer.offset + outer.header_len + 8);
}

// Verifies the IPv4 header checksum and the L4 checksum of the packet at `off` from scratch;
// for ICMP errors also the quoted packet's IP header and, when quoted whole, its L4 checksum.
// Returns "" when everything verifies, else what failed. A quoted packet that was cut off cannot
// have its L4 checksum verified (its bytes are missing), so only its IP header is checked.
inline std::string verify_ipv4_checksums(const uint8_t* p, size_t len, size_t off,
                                         const std::string& what = "") {
  auto v = parse_ipv4(p, len, off);
  if (!v) return what + "IPv4 header unparsable";
  const uint8_t* h = p + off;
  if (sum16(h, v->header_len) != 0xffff) return what + "IPv4 header checksum bad";
  if (v->truncated) return "";  // L4 of a cut-off quote cannot be verified
  const uint8_t* l4 = h + v->header_len;
  size_t l4_len = v->total_length - v->header_len;
  switch (v->proto) {
    case kProtoTcp:
      if (l4_len < 20) return what + "TCP header short";
      if (sum16(l4, l4_len, pseudo_sum(v->src, v->dst, kProtoTcp, l4_len)) != 0xffff)
        return what + "TCP checksum bad";
      return "";
    case kProtoUdp:
      if (l4_len < 8) return what + "UDP header short";
      if (get16(l4 + 6) == 0) return "";  // not computed: legal, nothing to verify
      if (sum16(l4, l4_len, pseudo_sum(v->src, v->dst, kProtoUdp, l4_len)) != 0xffff)
        return what + "UDP checksum bad";
      return "";
    case kProtoIcmp: {
      if (l4_len < 8) return what + "ICMP header short";
      if (sum16(l4, l4_len) != 0xffff) return what + "ICMP checksum bad";
      if (is_icmp_error(l4[0]))
        return verify_ipv4_checksums(p, off + v->total_length, off + v->header_len + 8,
                                     what + "inner ");
      return "";
    }
    default:
      return "";
  }
}

// Same for an Ethernet frame carrying IPv4.
inline std::string verify_checksums(const Bytes& frame) {
  if (frame.size() < kEthLen || get16(frame.data() + 12) != kEthIpv4) return "not Ethernet/IPv4";
  return verify_ipv4_checksums(frame.data(), frame.size(), kEthLen);
}

// What differs in `out` from a frame routed one hop: Ethernet `dst`/`src`, IPv4 `saddr` ->
// `daddr` with TTL `ttl`, every checksum right. "" when nothing does.
inline std::string routed_differences(const Bytes& out, const Mac& dst, const Mac& src,
                                      uint32_t saddr, uint32_t daddr, uint8_t ttl) {
  auto v = parse_eth_ipv4(out);
  if (!v) return "not Ethernet/IPv4";
  std::string diff;
  if (!std::equal(dst.begin(), dst.end(), out.begin())) diff += "destination MAC; ";
  if (!std::equal(src.begin(), src.end(), out.begin() + 6)) diff += "source MAC; ";
  if (v->src != saddr) diff += "source " + ip_str(v->src) + "; ";
  if (v->dst != daddr) diff += "destination " + ip_str(v->dst) + "; ";
  if (v->ttl != ttl) diff += "TTL " + std::to_string(v->ttl) + "; ";
  return diff + verify_checksums(out);
}

// Common MACs for tests.
inline constexpr Mac kMacA{0x02, 0x00, 0x00, 0x00, 0x00, 0x0a};
inline constexpr Mac kMacB{0x02, 0x00, 0x00, 0x00, 0x00, 0x0b};

}  // namespace kohaku::test::pkt
