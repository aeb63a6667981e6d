#pragma once
// Shared setup of the runner data plane tests: an unpinned RunnerDatapath configured for the
// overlay 10.0.0.0/8 behind uplink 192.168.50.2, and helpers that push a frame through one of
// its programs with BPF_PROG_TEST_RUN.
#include <bpf/bpf.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <arpa/inet.h>

#include <cstring>
#include <memory>
#include <optional>

#include "packet.h"
#include "prog_run.h"
#include "runner/bpf/runner_datapath.h"

namespace kohaku::test {

using namespace kohaku::test::pkt;

struct ProgResult {
  int verdict = -1;  // TC_ACT_*
  Bytes out;
};

// Runs `frame` through the program once. ingress_ifindex != 0 marks the packet as forwarded
// (arrived on another device), which the forward filter distinguishes from local output.
inline ProgResult run_prog(int prog_fd, const Bytes& frame, uint32_t ingress_ifindex = 0) {
  __sk_buff ctx{};
  ctx.ingress_ifindex = ingress_ifindex;
  ProgResult r;
  try {
    RunResult out = prog_test_run(prog_fd, frame, ctx);
    r.verdict = static_cast<int>(out.retval);
    r.out = std::move(out.out);
  } catch (const std::system_error& e) {
    ADD_FAILURE() << e.what();
  }
  return r;
}

class RunnerDatapathTest : public ::testing::Test {
 protected:
  const uint32_t kWorkload1 = ip("10.1.0.5");
  const uint32_t kWorkload2 = ip("10.1.0.6");
  const uint32_t kOtherRunnerWorkload = ip("10.2.0.9");
  const uint32_t kUplink = ip("192.168.50.2");
  const uint32_t kHostUnderlay = ip("192.168.50.1");
  const uint32_t kServer = ip("198.51.100.10");
  const uint32_t kRouter = ip("203.0.113.1");

  void SetUp() override {
    runner::DatapathOptions options;
    options.conntrack_max_entries = 4096;
    dp_ = runner::RunnerDatapath::open(options);
    dp_->configure(config());
  }

  runner::NatConfig config() const {
    runner::NatConfig c;
    c.overlay = Ipv4Cidr::parse("10.0.0.0/8");
    c.uplink = Ipv4Addr{kUplink};
    return c;
  }

  static Bytes frame(uint32_t src, uint32_t dst, uint8_t proto, const Bytes& l4,
                     const Ipv4Options& o = {}) {
    return eth(kMacA, kMacB, ipv4(src, dst, proto, l4, o));
  }
  static Bytes tcp_frame(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport, uint8_t flags,
                         const Bytes& payload = {}) {
    return frame(src, dst, kProtoTcp, tcp(src, dst, sport, dport, flags, payload));
  }
  static Bytes udp_frame(uint32_t src, uint32_t dst, uint16_t sport, uint16_t dport,
                         const Bytes& payload, bool zero_csum = false) {
    return frame(src, dst, kProtoUdp, udp(src, dst, sport, dport, payload, zero_csum));
  }
  static Bytes echo_frame(uint32_t src, uint32_t dst, uint8_t type, uint16_t id, uint16_t seq) {
    return frame(src, dst, kProtoIcmp, icmp_echo(type, id, seq, {'p', 'i', 'n', 'g'}));
  }

  ProgResult egress(const Bytes& f) { return run_prog(dp_->nat_egress_fd(), f); }
  ProgResult ingress(const Bytes& f) { return run_prog(dp_->nat_ingress_fd(), f); }
  ProgResult filter(const Bytes& f, uint32_t ingress_ifindex = 7) {
    return run_prog(dp_->forward_filter_fd(), f, ingress_ifindex);
  }

  // Expects the program to have let `in` through as it was: verdict OK, not a byte changed.
  static void expect_untouched(const ProgResult& r, const Bytes& in) {
    EXPECT_EQ(r.verdict, TC_ACT_OK);
    EXPECT_EQ(r.out, in);
  }

  // Parses a program's output frame, asserting the frame passed and every checksum verifies.
  static Ipv4View passed(const ProgResult& r) {
    EXPECT_EQ(r.verdict, TC_ACT_OK);
    EXPECT_EQ(verify_checksums(r.out), "");
    auto v = parse_eth_ipv4(r.out);
    EXPECT_TRUE(v.has_value());
    return v.value_or(Ipv4View{});
  }

  // The conntrack entry stored under exactly this tuple (ports in host order).
  std::optional<runner_ct_entry> ct_entry(uint32_t src, uint32_t dst, uint16_t sport,
                                          uint16_t dport, uint8_t proto) const {
    runner_ct_key k{};
    uint32_t s = htonl(src), d = htonl(dst);
    std::memcpy(k.saddr, &s, 4);
    std::memcpy(k.daddr, &d, 4);
    k.sport = sport;
    k.dport = dport;
    k.proto = proto;
    runner_ct_entry e{};
    if (bpf_map_lookup_elem(dp_->conntrack_fd(), &k, &e) != 0) return std::nullopt;
    return e;
  }

  std::unique_ptr<runner::RunnerDatapath> dp_;
};

}  // namespace kohaku::test
