// Fuzz target: the runner's BPF programs through BPF_PROG_TEST_RUN with mutated frames, on a
// datapath configured as tests/bpf/runner_fixture.h configures it (overlay 10.0.0.0/8 behind
// the uplink 192.168.50.2). Every input is one frame; it runs through the masquerade on the
// uplink's egress, then (when the masquerade translated a TCP or UDP frame) the server's reply
// to it through the masquerade on the uplink's ingress, and the frame itself through the
// ingress masquerade and the forward filter. Checked:
//   - the verdict is UNSPEC, OK or SHOT (these programs never redirect);
//   - egress leaves alone what is not the overlay's: a frame whose source is outside
//     10.0.0.0/8, and VXLAN (UDP 4789) frames of the underlay;
//   - a translation keeps every checksum valid that was valid, and egress rewrites the source
//     to the uplink address only;
//   - the reply to a translated flow, when translated back, goes to the workload and port that
//     sent the flow (never to another one);
//   - the forward filter decides and never rewrites.
// Seeds: corpus/bpf_runner/ (written by this binary with KOHAKU_WRITE_SEEDS=DIR).
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>

#include <optional>
#include <system_error>
#include <vector>

#include "bpf/packet.h"
#include "bpf/prog_run.h"
#include "bpf_fuzz_support.h"
#include "runner/bpf/runner_datapath.h"

namespace {

using namespace kohaku;
using namespace kohaku::test;
using namespace kohaku::test::pkt;
using namespace kohaku::fuzz;

const uint32_t kUplink = ip("192.168.50.2");
const uint32_t kServer = ip("198.51.100.10");

bool in_overlay(uint32_t a) {
  return (a >> 24) == 10;
}

runner::RunnerDatapath* dp = nullptr;

struct ProgResult {
  int verdict = -1;
  Bytes out;
};

// One BPF_PROG_TEST_RUN; ingress_ifindex != 0 marks a forwarded packet (the forward filter
// tells it from local output). nullopt when the kernel refused the frame (EINVAL) before any
// program ran.
std::optional<ProgResult> run_prog(int fd, const Bytes& frame, uint32_t ingress_ifindex = 0) {
  __sk_buff ctx{};
  ctx.ingress_ifindex = ingress_ifindex;
  auto r = run_unless_refused([&] { return prog_test_run(fd, frame, ctx); });
  if (!r) return std::nullopt;
  return ProgResult{static_cast<int>(r->retval), std::move(r->out)};
}

std::vector<uint64_t> counter_snapshot() {
  std::vector<uint64_t> v;
  for (const auto& [name, value] : runner::RunnerDatapath::named_counters(dp->counters()))
    v.push_back(value);
  return v;
}

bool defined_verdict(int v) {
  return v == TC_ACT_UNSPEC || v == TC_ACT_OK || v == TC_ACT_SHOT;
}

// The server's answer to a frame the masquerade sent out: addresses and ports swapped.
std::optional<Bytes> reply_to(const Ipv4View& out) {
  if (out.proto == kProtoUdp)
    return eth(kMacB, kMacA,
               ipv4(out.dst, out.src, kProtoUdp,
                    udp(out.dst, out.src, out.l4.dport, out.l4.sport, Bytes(8, 'r'))));
  if (out.proto == kProtoTcp) {
    const uint8_t flags = (out.l4.tcp_flags & kSyn) ? uint8_t(kSyn | kAck) : kAck;
    return eth(kMacB, kMacA,
               ipv4(out.dst, out.src, kProtoTcp,
                    tcp(out.dst, out.src, out.l4.dport, out.l4.sport, flags)));
  }
  return std::nullopt;
}

// What a masquerade program (`hook`, for the messages) rewrote `frame` into, after the checks
// every rewrite passes: a defined verdict, and IPv4 in and out. nullopt when the kernel refused
// the frame, or the program dropped it or left it as it was.
struct Rewrite {
  Ipv4View in, out;
  ProgResult run;
};

std::optional<Rewrite> rewrite_by(int fd, const std::string& hook, const Bytes& frame) {
  auto run = run_prog(fd, frame);
  if (!run) return std::nullopt;
  const ProgResult& r = *run;
  if (!defined_verdict(r.verdict))
    violated((hook + ": undefined verdict").c_str(), frame, r.out, r.verdict);
  if (r.verdict == TC_ACT_SHOT || r.out == frame) return std::nullopt;
  auto in = parse_eth_ipv4(frame);
  auto out = parse_eth_ipv4(r.out);
  if (!in || !out)
    violated((hook + " rewrote a frame that is not IPv4").c_str(), frame, r.out, r.verdict);
  return Rewrite{*in, *out, std::move(*run)};
}

void run_egress(const Bytes& frame) {
  auto rewrite = rewrite_by(dp->nat_egress_fd(), "egress", frame);
  if (!rewrite) return;
  const auto& [in, out, r] = *rewrite;
  if (!in_overlay(in.src))
    violated("egress rewrote a frame not from the overlay", frame, r.out, r.verdict);
  if (in.proto == kProtoUdp && (in.l4.dport == 4789 || in.l4.sport == 4789))
    violated("egress rewrote an underlay VXLAN frame", frame, r.out, r.verdict);
  if (out.src != kUplink)
    violated("egress rewrote the source to something but the uplink address", frame, r.out,
             r.verdict);
  if (verify_checksums(frame).empty() && !verify_checksums(r.out).empty())
    violated("egress broke a valid checksum", frame, r.out, r.verdict);
  if (out.dst != in.dst) violated("egress changed the destination", frame, r.out, r.verdict);

  // The reply, back through the ingress masquerade.
  auto reply = reply_to(out);
  if (!reply || out.truncated) return;
  auto back_run = run_prog(dp->nat_ingress_fd(), *reply);
  if (!back_run) return;
  const ProgResult& back = *back_run;
  if (!defined_verdict(back.verdict))
    violated("ingress: undefined verdict on a reply", *reply, back.out, back.verdict);
  if (back.verdict == TC_ACT_SHOT || back.out == *reply) return;
  auto to = parse_eth_ipv4(back.out);
  if (!to || to->dst != in.src || to->l4.dport != in.l4.sport)
    violated("ingress translated a reply to another workload or port", *reply, back.out,
             back.verdict);
  if (!verify_checksums(back.out).empty())
    violated("ingress broke a valid checksum of a reply", *reply, back.out, back.verdict);
}

void run_ingress(const Bytes& frame) {
  auto rewrite = rewrite_by(dp->nat_ingress_fd(), "ingress", frame);
  if (!rewrite) return;
  const auto& [in, out, r] = *rewrite;
  if (in.dst != kUplink && !(in.proto == kProtoIcmp))
    violated("ingress rewrote a frame not sent to the uplink address", frame, r.out, r.verdict);
  if (!in_overlay(out.dst))
    violated("ingress translated to an address outside the overlay", frame, r.out, r.verdict);
  if (verify_checksums(frame).empty() && !verify_checksums(r.out).empty())
    violated("ingress broke a valid checksum", frame, r.out, r.verdict);
}

void run_filter(const Bytes& frame) {
  auto run = run_prog(dp->forward_filter_fd(), frame, 7);
  if (!run) return;
  const ProgResult& r = *run;
  if (!defined_verdict(r.verdict)) violated("filter: undefined verdict", frame, r.out, r.verdict);
  if (r.verdict != TC_ACT_SHOT && r.out != frame)
    violated("the forward filter rewrote a frame", frame, r.out, r.verdict);
}

std::vector<std::pair<std::string, Bytes>> seeds() {
  const uint32_t w1 = ip("10.1.0.5"), peer = ip("10.2.0.9");
  auto f = [](uint32_t s, uint32_t d, uint8_t proto, const Bytes& l4) {
    return eth(kMacA, kMacB, ipv4(s, d, proto, l4));
  };
  return {
      {"tcp-syn-out", f(w1, kServer, kProtoTcp, tcp(w1, kServer, 40000, 443, kSyn))},
      {"udp-out", f(w1, kServer, kProtoUdp, udp(w1, kServer, 40001, 53, Bytes(20, 'q')))},
      {"udp-zero-csum-out",
       f(w1, kServer, kProtoUdp, udp(w1, kServer, 40002, 53, Bytes(20, 'q'), true))},
      {"echo-out", f(w1, kServer, kProtoIcmp, icmp_echo(kIcmpEchoRequest, 9, 1, Bytes(8, 'p')))},
      {"overlay-internal", f(w1, peer, kProtoUdp, udp(w1, peer, 40003, 5000, Bytes(8, 'x')))},
      {"vxlan-underlay", f(kUplink, ip("192.168.50.1"), kProtoUdp,
                           udp(kUplink, ip("192.168.50.1"), 40004, 4789, Bytes(58, 0)))},
      {"inbound-unsolicited",
       f(kServer, kUplink, kProtoTcp, tcp(kServer, kUplink, 443, 61000, kSyn | kAck))},
      {"port-unreach-in", f(kServer, kUplink, kProtoIcmp,
                            icmp_error(kIcmpDestUnreach, kIcmpPortUnreach,
                                       ipv4(kUplink, kServer, kProtoUdp,
                                            udp(kUplink, kServer, 61001, 53, Bytes(20, 'q')))))},
  };
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::write_seeds_if_asked(seeds);
  runner::DatapathOptions options;
  options.conntrack_max_entries = 4096;
  dp = runner::RunnerDatapath::open(options).release();  // lives as long as the process
  runner::NatConfig c;
  c.overlay = Ipv4Cidr::parse("10.0.0.0/8");
  c.uplink = Ipv4Addr{kUplink};
  dp->configure(c);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < kEthLen) return -1;
  const Bytes frame(data, data + std::min(size, kMaxFrame));
  const auto before = counter_snapshot();
  run_egress(frame);
  run_ingress(frame);
  run_filter(frame);
  note_moved_counters(before, counter_snapshot(), 0);
  return 0;
}
