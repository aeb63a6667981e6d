#pragma once
// Shared setup of the hub express path tests (bpf/host_express.bpf.c through BPF_PROG_TEST_RUN,
// TC and XDP variants). HostExpressTest builds, in a private network namespace, the hub's uplink
// (a veth holding the hub's underlay address, with neighbour entries for the runners' physical
// IPs) and three runner tunnels (veths standing in for vxkr devices, with the workloads'
// neighbour entries), so every FIB and neighbour answer the program gets is the kernel's own.
// Frames are full VXLAN frames as a runner's vxlan0 sends them; the expected output is built from
// scratch with the same builders, so a wrongly patched checksum or a stray byte fails the
// comparison.
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <linux/pkt_cls.h>

#include <memory>
#include <string>

#include "host/bpf/host_datapath.h"
#include "host/bpf/host_express.h"
#include "host_test_env.h"
#include "packet.h"

namespace kohaku::test {

using namespace pkt;
using bpf::HostDatapath;
using bpf::HostExpress;

constexpr uint32_t kRedirect = TC_ACT_REDIRECT;
constexpr uint32_t kShot = TC_ACT_SHOT;
constexpr uint32_t kPass = static_cast<uint32_t>(TC_ACT_UNSPEC);

constexpr Mac kUplinkMac{0x02, 0, 0, 0, 0xaa, 0x01};    // the hub's uplink
constexpr Mac kRunner1Phys{0x02, 0, 0, 0, 0xaa, 0x11};  // runner 1's uplink
constexpr Mac kRunner2Phys{0x02, 0, 0, 0, 0xaa, 0x12};  // runner 2's uplink
constexpr Mac kTunnel1Mac{0x02, 0, 0, 0, 0x01, 0xfe};   // hub side of runner 1's tunnel
constexpr Mac kTunnel2Mac{0x02, 0, 0, 0, 0x02, 0xfe};
constexpr Mac kTunnel3Mac{0x02, 0, 0, 0, 0x03, 0xfe};
constexpr Mac kBridge1Mac{0x02, 0, 0, 0, 0x01, 0x01};  // runner 1's vxlan0 (inner source)
constexpr Mac kWorkload2Mac{0x02, 0, 0, 0, 0x02, 0x05};
constexpr Mac kWorkload3Mac{0x02, 0, 0, 0, 0x03, 0x05};
constexpr uint32_t kVniBase = 100;
constexpr uint16_t kEntropyPort = 40001;
constexpr size_t kUdpOffset = 34;  // outer Ethernet + IPv4

class HostExpressTest : public ::testing::Test {
 protected:
  const uint32_t kHub = ip("198.18.0.1");
  const uint32_t kRunner1 = ip("198.18.0.11");
  const uint32_t kRunner2 = ip("198.18.0.12");
  const uint32_t kRunner3 = ip("198.18.0.13");  // no neighbour entry: underlay unresolved
  const uint32_t kW1 = ip("10.1.0.5");
  const uint32_t kW2 = ip("10.2.0.5");
  const uint32_t kW2Unresolved = ip("10.2.0.9");
  const uint32_t kW3 = ip("10.3.0.5");

  void SetUp() override {
    netns_ = std::make_unique<ScopedNetns>();
    const HubDevices devices = make_hub_devices();
    uplink_ = devices.uplink;
    for (int i = 1; i <= 3; ++i) tunnel_[i] = devices.tunnel[i];

    dp_ = std::make_unique<HostDatapath>(bpf::HostDatapathOptions{.pin = false});
    const uint32_t phys[] = {0, kRunner1, kRunner2, kRunner3};
    const Mac macs[] = {{}, kTunnel1Mac, kTunnel2Mac, kTunnel3Mac};
    express_ = std::make_unique<HostExpress>(HostExpress::Options{.pin = false}, *dp_);
    for (uint32_t id = 1; id <= 3; ++id) {
      Ipv4Cidr subnet = Ipv4Cidr::parse("10." + std::to_string(id) + ".0.0/16");
      dp_->upsert_runner({id, subnet, tunnel_[id]});
      dp_->add_host_address({Ipv4Addr::parse("10." + std::to_string(id) + ".0.254"), tunnel_[id]});
      express_->upsert_runner(
          {id, kVniBase + id, Ipv4Addr{phys[id]}, tunnel_[id], macs[id], subnet});
    }
    configure(false);
  }

  void TearDown() override {
    express_.reset();
    dp_.reset();
    netns_.reset();
  }

  void configure(bool tx_devmap) {
    express_->configure({Ipv4Addr{kHub}, uplink_, kUplinkMac, 4789, kVniBase, tx_devmap});
  }

  // The inner IPv4/UDP packet a1 -> b1 as runner 1's workload sends it.
  static Bytes inner_ip(uint32_t src, uint32_t dst, uint8_t ttl = 64, size_t payload = 18) {
    Ipv4Options o;
    o.ttl = ttl;
    return ipv4(src, dst, kProtoUdp, udp(src, dst, 40000, 9, Bytes(payload, 0x5a)), o);
  }

  // A VXLAN frame from `outer_src` to the hub with VNI `vni` around `inner_frame`.
  Bytes vxlan_frame(uint32_t outer_src, uint32_t vni, const Bytes& inner_frame,
                    bool outer_udp_csum = false, const Ipv4Options& outer = {}) const {
    return eth(
        kUplinkMac, kRunner1Phys,
        ipv4(outer_src, kHub, kProtoUdp,
             udp(outer_src, kHub, kEntropyPort, 4789, vxlan(vni, inner_frame), !outer_udp_csum),
             outer));
  }

  // What runner 1's vxlan0 sends for a packet of its workload routed towards the hub.
  Bytes from_runner1(const Bytes& inner, bool outer_udp_csum = false) const {
    return vxlan_frame(kRunner1, kVniBase + 1, eth(kTunnel1Mac, kBridge1Mac, inner),
                       outer_udp_csum);
  }

  // What the hub must send to runner 2 for it, built from scratch.
  Bytes expected_to_runner2(const Bytes& inner_out, bool outer_udp_csum = false) const {
    return eth(kRunner2Phys, kUplinkMac,
               ipv4(kHub, kRunner2, kProtoUdp,
                    udp(kHub, kRunner2, kEntropyPort, 4789,
                        vxlan(kVniBase + 2, eth(kWorkload2Mac, kTunnel2Mac, inner_out)),
                        !outer_udp_csum)));
  }

  RunResult run_tc(const Bytes& frame) {
    return test_run(express_->tc_program_fd(), frame, uplink_);
  }
  RunResult run_xdp(const Bytes& frame) {
    return test_run_xdp(express_->xdp_program_fd(), frame, uplink_);
  }

  express_stats stats(uint32_t runner_id) {
    auto c = express_->counters(runner_id);
    EXPECT_TRUE(c) << "no express counters for runner " << runner_id;
    return c ? c->sum : express_stats{};
  }

  // Both variants leave the frame untouched and hand it to the kernel.
  void expect_passed(const Bytes& frame, uint32_t runner_id, __u64 express_stats::*counter) {
    uint64_t before = stats(runner_id).*counter;
    RunResult tc = run_tc(frame);
    EXPECT_EQ(tc.retval, kPass);
    EXPECT_EQ(tc.out, frame);
    RunResult xdp = run_xdp(frame);
    EXPECT_EQ(xdp.retval, static_cast<uint32_t>(XDP_PASS));
    EXPECT_EQ(xdp.out, frame);
    EXPECT_EQ(stats(runner_id).*counter, before + 2);
  }

  std::unique_ptr<ScopedNetns> netns_;
  std::unique_ptr<HostDatapath> dp_;
  std::unique_ptr<HostExpress> express_;
  uint32_t uplink_ = 0;
  uint32_t tunnel_[4] = {};
};

}  // namespace kohaku::test
