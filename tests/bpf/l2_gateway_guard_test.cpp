// The distributed gateway guard (bpf/l2_gateway_guard.bpf.c) through BPF_PROG_TEST_RUN, and
// its loader (userspace/runner/bpf/l2_gateway_guard.h) against a real device: hand-built
// frames as the vxlan device would encapsulate them, the verdict and the counters checked.
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>

#include <memory>

#include "common/bpf/bpffs.h"
#include "host_test_env.h"
#include "packet.h"
#include "runner/bpf/l2_gateway_guard.h"

namespace kohaku::test {
namespace {

using namespace pkt;
using runner::L2Gateway;
using runner::L2GatewayGuard;

constexpr uint32_t kShot = TC_ACT_SHOT;
constexpr uint32_t kPass = TC_ACT_OK;
constexpr int kLoopback = 1;  // BPF_PROG_TEST_RUN runs the skb on this device

constexpr Mac kBroadcast{0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
constexpr Mac kIpv6AllNodes{0x33, 0x33, 0, 0, 0, 1};
constexpr Mac kGatewayMac{0x0a, 0x6b, 172, 20, 0, 1};  // MacAddr::stable_for(172.20.0.1)
constexpr Mac kWorkloadA{0x02, 0, 0, 0, 0, 0x0a};
constexpr Mac kWorkloadB{0x02, 0, 0, 0, 0, 0x0b};
constexpr Mac kZero{};

// Who has `who_has`? asked by `from` (at `from_ip`), broadcast as on the wire.
Bytes arp_request(const Mac& from, uint32_t from_ip, uint32_t who_has) {
  return eth(kBroadcast, from, arp(kArpRequest, from, from_ip, kZero, who_has), kEthArp);
}

// `from` (at `from_ip`) answering `to` (at `to_ip`), unicast.
Bytes arp_reply(const Mac& from, uint32_t from_ip, const Mac& to, uint32_t to_ip) {
  return eth(to, from, arp(kArpReply, from, from_ip, to, to_ip), kEthArp);
}

class L2GatewayGuardTest : public ::testing::Test {
 protected:
  void SetUp() override {
    guard_ = L2GatewayGuard::open("");
    gateway_.address = Ipv4Addr::parse("172.20.0.1");
    std::copy(kGatewayMac.begin(), kGatewayMac.end(), gateway_.mac.bytes.begin());
  }

  // Entry for the loopback device, without attaching (test runs need no filter).
  void guard_loopback() {
    // sync() also attaches: give it a namespace of its own so the real loopback is untouched.
    ScopedNetns ns;
    guard_->sync({{kLoopback, gateway_}});
  }

  uint32_t verdict(const Bytes& frame) {
    return test_run(guard_->program_fd(), frame, kLoopback).retval;
  }

  std::unique_ptr<L2GatewayGuard> guard_;
  L2Gateway gateway_;
  const uint32_t kGw = ip("172.20.0.1");
  const uint32_t kA = ip("172.20.0.2");
  const uint32_t kB = ip("172.20.0.3");
};

TEST_F(L2GatewayGuardTest, ArpRequestForTheGatewayStaysLocal) {
  guard_loopback();
  EXPECT_EQ(verdict(arp_request(kWorkloadA, kA, kGw)), kShot);
  EXPECT_EQ(guard_->counters().gateway_arp_kept_local, 1u);
  EXPECT_EQ(guard_->counters().passed, 0u);
}

TEST_F(L2GatewayGuardTest, ArpBetweenWorkloadsCrosses) {
  guard_loopback();
  // Who has B (on another member)? And B's answer, and a reply that happens to name the
  // gateway as target (only requests for the gateway are kept).
  EXPECT_EQ(verdict(arp_request(kWorkloadA, kA, kB)), kPass);
  EXPECT_EQ(verdict(arp_reply(kWorkloadB, kB, kWorkloadA, kA)), kPass);
  EXPECT_EQ(verdict(arp_reply(kWorkloadB, kB, kWorkloadA, kGw)), kPass);
  EXPECT_EQ(guard_->counters().passed, 3u);
  EXPECT_EQ(guard_->counters().gateway_arp_kept_local, 0u);
}

TEST_F(L2GatewayGuardTest, BroadcastsFromTheGatewayMacStayLocal) {
  guard_loopback();
  // The gateway resolving a workload, and its IPv6 neighbour discovery noise.
  EXPECT_EQ(verdict(arp_request(kGatewayMac, kGw, kB)), kShot);
  EXPECT_EQ(verdict(eth(kIpv6AllNodes, kGatewayMac, Bytes(40), 0x86dd)), kShot);
  EXPECT_EQ(guard_->counters().gateway_floods_kept_local, 2u);
}

TEST_F(L2GatewayGuardTest, UnicastFromTheGatewayAndWorkloadTrafficCross) {
  guard_loopback();
  auto ping = icmp_echo(kIcmpEchoRequest, 7, 1);
  EXPECT_EQ(verdict(eth(kWorkloadB, kGatewayMac, ipv4(kGw, kB, kProtoIcmp, ping))), kPass);
  EXPECT_EQ(verdict(eth(kWorkloadB, kWorkloadA, ipv4(kA, kB, kProtoIcmp, ping))), kPass);
  EXPECT_EQ(verdict(eth(
                kBroadcast, kWorkloadA,
                ipv4(kA, ip("172.20.0.255"), kProtoUdp, udp(kA, ip("172.20.0.255"), 68, 67, {})))),
            kPass);
  EXPECT_EQ(guard_->counters().passed, 3u);
}

TEST_F(L2GatewayGuardTest, DeviceWithoutEntryPassesEverything) {
  EXPECT_EQ(verdict(arp_request(kWorkloadA, kA, kGw)), kPass);
  EXPECT_EQ(verdict(arp_request(kGatewayMac, kGw, kB)), kPass);
  EXPECT_EQ(guard_->counters().passed, 0u);  // not even counted: none of our devices
}

TEST_F(L2GatewayGuardTest, TruncatedFramesPass) {
  guard_loopback();
  Bytes runt(kEthLen + 4, 0xff);  // broadcast dst, then a cut ARP header
  std::copy(kWorkloadA.begin(), kWorkloadA.end(), runt.begin() + 6);
  put16(runt.data() + 12, kEthArp);
  EXPECT_EQ(verdict(runt), kPass);
}

TEST_F(L2GatewayGuardTest, SyncAttachesAndKeepsTheMapExact) {
  ScopedNetns ns;
  sh("ip link add va type veth peer name vb && ip link set va up && ip link set vb up");
  const int va = static_cast<int>(ifindex_of("va")), vb = static_cast<int>(ifindex_of("vb"));
  L2Gateway other{Ipv4Addr::parse("172.21.0.1"), gateway_.mac};
  guard_->sync({{va, gateway_}, {vb, other}});
  EXPECT_EQ(guard_->entries(), (std::map<int, L2Gateway>{{va, gateway_}, {vb, other}}));
  EXPECT_TRUE(tc_attached_program(va, TcDirection::kEgress, kL2GuardTcFilter));
  EXPECT_TRUE(tc_attached_program(vb, TcDirection::kEgress, kL2GuardTcFilter));

  guard_->sync({{va, gateway_}});  // vb's network left
  EXPECT_EQ(guard_->entries(), (std::map<int, L2Gateway>{{va, gateway_}}));
}

TEST_F(L2GatewayGuardTest, PinnedMapsAreAdoptedByTheNextDaemon) {
  ScopedNetns ns;
  sh("ip link add va type veth peer name vb && ip link set va up");
  const int va = static_cast<int>(ifindex_of("va"));
  const ScopedBpffs bpffs("kohaku-guard-pins");  // the pins below live on this one mount
  const std::string root = bpffs.path() + "/kohaku";
  {
    auto first = L2GatewayGuard::open(root);
    ASSERT_TRUE(bpf::is_on_bpffs(root + "/l2/l2_gateways"));
    first->sync({{va, gateway_}});
  }
  auto second = L2GatewayGuard::open(root);
  EXPECT_EQ(second->entries(), (std::map<int, L2Gateway>{{va, gateway_}}));
}

}  // namespace
}  // namespace kohaku::test
