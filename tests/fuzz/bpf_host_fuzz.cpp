// Fuzz target: the hub's BPF programs through BPF_PROG_TEST_RUN with mutated frames. Every input
// is one frame as it arrives on the hub's uplink: it runs through the express stage (TC and
// XDP, bpf/host_express.bpf.c), and its inner Ethernet frame (or, when it has none, the frame
// itself) through host_forward (bpf/host_forward.bpf.c) as if it came out of runner 1's tunnel.
// The kernel's verifier accepted the programs; what is checked here is what they decide:
//   - the verdict is one the hook defines (TC: UNSPEC/OK/SHOT/REDIRECT; XDP: PASS/DROP/TX/
//     REDIRECT), never anything else;
//   - a frame passed to the kernel leaves byte for byte as it came (no rewrite of an underlay
//     packet, or of anything else the fast path does not take);
//   - a frame redirected (or sent back out by XDP) was a runner's own: for the express stage,
//     VXLAN to the hub's address and port from the physical address registered for its VNI,
//     with an inner source inside that runner's subnet, rewritten towards the physical address
//     and VNI of the runner that holds the destination; for host_forward, an inner source inside
//     runner 1's subnet and a destination inside a runner's (runner 1's own included: a hairpin, as
//     the kernel does).
// The environment is the express tests' one (make_hub_devices(), tests/bpf/host_test_env.h): a
// private network namespace with the hub's uplink and three runner tunnels (veths), so FIB and
// neighbour answers are the kernel's own. Seeds: corpus/bpf_host/ (written by this binary with
// KOHAKU_WRITE_SEEDS=DIR).
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

#include "bpf/host_test_env.h"
#include "bpf/packet.h"
#include "bpf_fuzz_support.h"
#include "host/bpf/host_datapath.h"
#include "host/bpf/host_express.h"

namespace {

using namespace kohaku;
using namespace kohaku::test;
using namespace kohaku::test::pkt;
using namespace kohaku::fuzz;

constexpr uint32_t kVniBase = 100;
constexpr uint16_t kVxlanPort = 4789;
constexpr Mac kUplinkMac{0x02, 0, 0, 0, 0xaa, 0x01};
constexpr Mac kRunner1Phys{0x02, 0, 0, 0, 0xaa, 0x11};
constexpr Mac kTunnelMac[4] = {
    {}, {0x02, 0, 0, 0, 0x01, 0xfe}, {0x02, 0, 0, 0, 0x02, 0xfe}, {0x02, 0, 0, 0, 0x03, 0xfe}};
constexpr Mac kBridge1Mac{0x02, 0, 0, 0, 0x01, 0x01};

const uint32_t kHub = ip("198.18.0.1");
const uint32_t kPhys[4] = {0, ip("198.18.0.11"), ip("198.18.0.12"), ip("198.18.0.13")};

// Runner id of an address inside one of the three subnets 10.<id>.0.0/16; 0 otherwise.
uint32_t runner_of(uint32_t addr) {
  const uint32_t id = (addr >> 16) & 0xff;
  return (addr >> 24) == 10 && id >= 1 && id <= 3 ? id : 0;
}

struct Hub {
  Hub() {
    netns = std::make_unique<ScopedNetns>();
    const HubDevices devices = make_hub_devices();
    uplink = devices.uplink;
    for (int i = 1; i <= 3; ++i) tunnel[i] = devices.tunnel[i];
    sh("ip addr add 10.0.0.1/32 dev lo");

    dp = std::make_unique<bpf::HostDatapath>(bpf::HostDatapathOptions{.pin = false});
    express = std::make_unique<bpf::HostExpress>(bpf::HostExpress::Options{.pin = false}, *dp);
    for (uint32_t id = 1; id <= 3; ++id) {
      const Ipv4Cidr subnet = Ipv4Cidr::parse("10." + std::to_string(id) + ".0.0/16");
      dp->upsert_runner({id, subnet, tunnel[id]});
      dp->add_host_address({Ipv4Addr::parse("10." + std::to_string(id) + ".0.254"), tunnel[id]});
      express->upsert_runner(
          {id, kVniBase + id, Ipv4Addr{kPhys[id]}, tunnel[id], kTunnelMac[id], subnet});
    }
    dp->add_host_address({Ipv4Addr::parse("10.0.0.1"), 0});
    express->configure({Ipv4Addr{kHub}, uplink, kUplinkMac, kVxlanPort, kVniBase, false});
  }

  std::unique_ptr<ScopedNetns> netns;
  std::unique_ptr<bpf::HostDatapath> dp;
  std::unique_ptr<bpf::HostExpress> express;
  uint32_t uplink = 0;
  uint32_t tunnel[4] = {};
};

Hub* hub = nullptr;

std::vector<uint64_t> counter_snapshot() {
  std::vector<uint64_t> v;
  for (const auto& [id, c] : hub->express->all_counters())
    for (const auto& [name, value] : c.named()) v.push_back(value);
  for (const auto& [id, c] : hub->dp->all_counters())
    for (const auto& [name, value] : c.named()) v.push_back(value);
  return v;
}

// Offsets in a VXLAN frame without IP options (the only kind the express stage rewrites).
constexpr size_t kOuterIp = 14, kOuterUdp = 34, kVxlan = 42, kInnerEth = 50, kInnerIp = 64;

// The express stage took the frame (redirect or XDP_TX): it must have been a runner's own,
// rewritten towards another runner.
void check_express_forward(const Bytes& in, const Bytes& out, uint32_t verdict) {
  if (in.size() < kInnerIp + 20 || get16(&in[12]) != kEthIpv4 || (in[kOuterIp] & 0x0f) != 5 ||
      in[kOuterIp + 9] != kProtoUdp || get32(&in[kOuterIp + 16]) != kHub ||
      get16(&in[kOuterUdp + 2]) != kVxlanPort || get16(&in[kInnerEth + 12]) != kEthIpv4)
    violated("express forwarded a frame that is not VXLAN to the hub", in, out, verdict);
  const uint32_t vni = get32(&in[kVxlan + 4]) >> 8;
  const uint32_t id = vni - kVniBase;
  if (vni < kVniBase + 1 || vni > kVniBase + 3)
    violated("express forwarded an unknown VNI", in, out, verdict);
  if (get32(&in[kOuterIp + 12]) != kPhys[id])
    violated("express forwarded a spoofed outer source (not the VNI's runner)", in, out, verdict);
  if (runner_of(get32(&in[kInnerIp + 12])) != id)
    violated("express forwarded a spoofed inner source (outside the runner's subnet)", in, out,
             verdict);
  const uint32_t target = runner_of(get32(&in[kInnerIp + 16]));
  // (target == id is a hairpin, which the kernel path routes back the same way.)
  if (target == 0) violated("express forwarded to no runner", in, out, verdict);
  if (out.size() != in.size() || get32(&out[kOuterIp + 16]) != kPhys[target] ||
      get32(&out[kVxlan + 4]) >> 8 != kVniBase + target)
    violated("express rewrote towards the wrong runner", in, out, verdict);
}

void run_express(const Bytes& frame) {
  auto tc_run = run_unless_refused(
      [&] { return test_run(hub->express->tc_program_fd(), frame, hub->uplink); });
  if (!tc_run) return;
  const RunResult& tc = *tc_run;
  const uint32_t unspec = static_cast<uint32_t>(TC_ACT_UNSPEC);
  if (tc.retval == unspec || tc.retval == TC_ACT_OK) {
    if (tc.out != frame)
      violated("express (tc) changed a frame it passed", frame, tc.out, tc.retval);
  } else if (tc.retval == TC_ACT_REDIRECT) {
    check_express_forward(frame, tc.out, tc.retval);
  } else if (tc.retval != TC_ACT_SHOT) {
    violated("express (tc) returned an undefined verdict", frame, tc.out, tc.retval);
  }

  auto xdp_run = run_unless_refused(
      [&] { return test_run_xdp(hub->express->xdp_program_fd(), frame, hub->uplink); });
  if (!xdp_run) return;
  const RunResult& xdp = *xdp_run;
  if (xdp.retval == XDP_PASS) {
    if (xdp.out != frame)
      violated("express (xdp) changed a frame it passed", frame, xdp.out, xdp.retval);
  } else if (xdp.retval == XDP_TX || xdp.retval == XDP_REDIRECT) {
    check_express_forward(frame, xdp.out, xdp.retval);
  } else if (xdp.retval != XDP_DROP) {
    violated("express (xdp) returned an undefined verdict", frame, xdp.out, xdp.retval);
  }
}

// A frame out of runner 1's tunnel (decapsulated by the kernel).
void run_forward(const Bytes& frame) {
  auto run =
      run_unless_refused([&] { return test_run(hub->dp->program_fd(), frame, hub->tunnel[1]); });
  if (!run) return;
  const RunResult& r = *run;
  const uint32_t unspec = static_cast<uint32_t>(TC_ACT_UNSPEC);
  if (r.retval == unspec || r.retval == TC_ACT_OK) {
    if (r.out != frame) violated("host_forward changed a frame it passed", frame, r.out, r.retval);
  } else if (r.retval == TC_ACT_REDIRECT) {
    if (frame.size() < kEthLen + 20 || get16(&frame[12]) != kEthIpv4)
      violated("host_forward redirected a frame that is not IPv4", frame, r.out, r.retval);
    if (runner_of(get32(&frame[kEthLen + 12])) != 1)
      violated("host_forward redirected a spoofed source (outside runner 1's subnet)", frame, r.out,
               r.retval);
    const uint32_t target = runner_of(get32(&frame[kEthLen + 16]));
    if (target == 0) violated("host_forward redirected to no runner", frame, r.out, r.retval);
  } else if (r.retval != TC_ACT_SHOT) {
    violated("host_forward returned an undefined verdict", frame, r.out, r.retval);
  }
}

// Seeds: frames each program takes, and near misses it must not.
std::vector<std::pair<std::string, Bytes>> seeds() {
  auto inner = [](uint32_t src, uint32_t dst, uint8_t proto = kProtoUdp) {
    Bytes l4 = proto == kProtoTcp    ? tcp(src, dst, 40000, 5201, kSyn, Bytes(16, 0x5a))
               : proto == kProtoIcmp ? icmp_echo(kIcmpEchoRequest, 7, 1, Bytes(16, 0x5a))
                                     : udp(src, dst, 40000, 9, Bytes(18, 0x5a));
    return ipv4(src, dst, proto, l4);
  };
  auto vx = [](uint32_t outer_src, uint32_t vni, const Bytes& ip_packet) {
    Bytes inner_frame = eth(kTunnelMac[1], kBridge1Mac, ip_packet);
    return eth(kUplinkMac, kRunner1Phys,
               ipv4(outer_src, kHub, kProtoUdp,
                    udp(outer_src, kHub, 40001, kVxlanPort, vxlan(vni, inner_frame), true)));
  };
  const uint32_t w1 = ip("10.1.0.5"), w2 = ip("10.2.0.5"), w3 = ip("10.3.0.5");
  return {
      {"r1-to-r2-udp", vx(kPhys[1], 101, inner(w1, w2))},
      {"r1-to-r2-tcp", vx(kPhys[1], 101, inner(w1, w2, kProtoTcp))},
      {"r1-to-r3-icmp", vx(kPhys[1], 101, inner(w1, w3, kProtoIcmp))},
      {"r1-to-hub", vx(kPhys[1], 101, inner(w1, ip("10.0.0.1")))},
      {"spoofed-inner", vx(kPhys[1], 101, inner(ip("10.2.0.7"), w2))},
      {"spoofed-outer", vx(kPhys[2], 101, inner(w1, w2))},
      {"unknown-vni", vx(kPhys[1], 142, inner(w1, w2))},
      {"underlay-udp",
       eth(kUplinkMac, kRunner1Phys,
           ipv4(kPhys[1], kHub, kProtoUdp, udp(kPhys[1], kHub, 5000, 53, Bytes(8))))},
      {"inner-r1-to-r2", eth(kTunnelMac[1], kBridge1Mac, inner(w1, w2))},
      {"inner-spoofed", eth(kTunnelMac[1], kBridge1Mac, inner(w3, w2))},
  };
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz::write_seeds_if_asked(seeds);
  hub = new Hub();  // lives as long as the process: the namespace and the programs with it
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The kernel refuses a frame shorter than an Ethernet header before any program runs.
  if (size < kEthLen) return -1;
  const Bytes frame(data, data + std::min(size, kMaxFrame));
  const auto before = counter_snapshot();
  run_express(frame);
  const auto middle = counter_snapshot();
  note_moved_counters(before, middle, 0);
  // The inner frame of a VXLAN frame is what comes out of the tunnel after the kernel's decap.
  if (frame.size() >= kInnerEth + kEthLen && get16(&frame[12]) == kEthIpv4 &&
      frame[kOuterIp + 9] == kProtoUdp && get16(&frame[kOuterUdp + 2]) == kVxlanPort)
    run_forward(Bytes(frame.begin() + kInnerEth, frame.end()));
  else
    run_forward(frame);
  note_moved_counters(middle, counter_snapshot(), 1);
  return 0;
}
