// The runner fast path (bpf/runner_workload.bpf.c on a workload's veth, and delivery of replies in
// runner_nat_ingress) through BPF_PROG_TEST_RUN with hand-built frames: source checks, what goes
// to the bridge untouched, deny rules and isolation, delivery to another workload, routing out
// through the FIB to the uplink and to vxlan0, and what is left to the kernel. Routing needs
// devices: each test runs in a private network namespace with a bridge, an uplink and a tunnel.
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>

#include <memory>

#include "host_test_env.h"
#include "runner/bpf/workload_table.h"
#include "runner_fixture.h"

namespace kohaku::test {
namespace {

using runner::WorkloadEntry;

constexpr uint32_t kVethA = 4201, kVethB = 4202;  // host-side veths (map keys only)
const Mac kWlMacA{0x02, 0, 0, 0, 0x0a, 0x05};
const Mac kWlMacB{0x02, 0, 0, 0, 0x0a, 0x06};
const Mac kGwMac{0x02, 0, 0, 0, 0x0a, 0x01};
const Mac kRouterMac{0x02, 0, 0, 0, 0xaa, 0x01};  // the uplink's default gateway
const Mac kHubMac{0x02, 0, 0, 0, 0xbb, 0x01};     // the hub's end of vxlan0

netlink::MacAddr mac_of(const Mac& m) {
  netlink::MacAddr out;
  std::copy(m.begin(), m.end(), out.bytes.begin());
  return out;
}

Mac dst_mac(const Bytes& f) {
  Mac m;
  std::copy(f.begin(), f.begin() + 6, m.begin());
  return m;
}
Mac src_mac(const Bytes& f) {
  Mac m;
  std::copy(f.begin() + 6, f.begin() + 12, m.begin());
  return m;
}

class RunnerWorkloadTest : public RunnerDatapathTest {
 protected:
  void SetUp() override {
    netns_ = std::make_unique<ScopedNetns>();
    sh("ip link set lo up && sysctl -qw net.ipv4.conf.all.forwarding=1");
    sh("ip link add br0 address 02:00:00:00:0a:01 type bridge && ip link set br0 up");
    sh("ip addr add 10.1.0.1/16 dev br0");
    sh("ip link add up0 address 02:00:00:00:aa:02 type veth peer name up0-peer");
    sh("ip link set up0 up && ip link set up0-peer up && ip addr add 192.168.50.2/24 dev up0");
    sh("ip route add default via 192.168.50.1 dev up0");
    sh("ip link add vx0 address 02:00:00:00:bb:02 type veth peer name vx0-peer");
    sh("ip link set vx0 up && ip link set vx0-peer up && ip addr add 10.255.0.2/30 dev vx0");
    sh("ip route add 10.0.0.0/8 via 10.255.0.1 dev vx0");
    sh("ip link add other0 type veth peer name other0-peer");
    sh("ip link set other0 up && ip link set other0-peer up");
    sh("ip addr add 172.31.0.2/24 dev other0");
    RunnerDatapathTest::SetUp();
    bridge_ = ifindex_of("br0");
    uplink_ = ifindex_of("up0");
    tunnel_ = ifindex_of("vx0");
    dp_->set_fast_path_devices(uplink_, tunnel_);
    add(kVethA, kWorkload1, kWlMacA);
    add(kVethB, kWorkload2, kWlMacB);
  }
  void TearDown() override {
    dp_.reset();
    netns_.reset();
  }

  void add(uint32_t veth, uint32_t addr, const Mac& mac, bool fast = true) {
    WorkloadEntry e{veth, Ipv4Addr{addr}, 16, mac_of(mac), mac_of(kGwMac), bridge_, fast};
    runner::upsert_workload(dp_->workload_maps(), e);
  }
  void neighbour(const char* addr, const char* mac, const char* dev) {
    sh(std::string("ip neigh replace ") + addr + " lladdr " + mac + " dev " + dev +
       " nud permanent");
  }

  // A frame from workload A (its MAC, to its gateway unless told otherwise).
  static Bytes from_a(uint32_t src, uint32_t dst, const Mac& to = kGwMac, uint8_t ttl = 64) {
    Ipv4Options o;
    o.ttl = ttl;
    return eth(to, kWlMacA,
               ipv4(src, dst, kProtoUdp, udp(src, dst, 40000, 53, Bytes(32, 0x11)), o));
  }

  RunResult run(const Bytes& f, uint32_t veth = kVethA) {
    return test_run(dp_->workload_fd(), f, 0, veth);
  }
  runner_wl_stats counters(uint32_t veth = kVethA) {
    return runner::read_workload_counters(dp_->workload_maps()).at(veth);
  }

  std::unique_ptr<ScopedNetns> netns_;
  uint32_t bridge_ = 0, uplink_ = 0, tunnel_ = 0;
};

TEST_F(RunnerWorkloadTest, UnknownVethPassesUntouched) {
  Bytes f = from_a(kWorkload1, kServer);
  RunResult r = run(f, 999);
  EXPECT_EQ(r.retval, uint32_t{TC_ACT_OK});
  EXPECT_EQ(r.out, f);
}

TEST_F(RunnerWorkloadTest, SpoofedSourceMacOrAddressIsDropped) {
  Bytes wrong_mac = eth(kGwMac, kMacB, ipv4(kWorkload1, kServer, kProtoUdp, Bytes(8, 0)));
  EXPECT_EQ(run(wrong_mac).retval, uint32_t{TC_ACT_SHOT});
  // Workload B's address sent from A's veth.
  EXPECT_EQ(run(from_a(kWorkload2, kServer)).retval, uint32_t{TC_ACT_SHOT});
  // ARP is switched by the bridge, but only from the workload's own MAC.
  Bytes arp_ok = eth(Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kWlMacA,
                     arp(kArpRequest, kWlMacA, kWorkload1, Mac{}, ip("10.1.0.1")), kEthArp);
  Bytes arp_spoof = eth(Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kMacB,
                        arp(kArpRequest, kMacB, kWorkload1, Mac{}, ip("10.1.0.1")), kEthArp);
  RunResult ok = run(arp_ok);
  EXPECT_EQ(ok.retval, uint32_t{TC_ACT_OK});
  EXPECT_EQ(ok.out, arp_ok);
  EXPECT_EQ(run(arp_spoof).retval, uint32_t{TC_ACT_SHOT});
  runner_wl_stats c = counters();
  EXPECT_EQ(c.drop_spoofed_mac, 2u);
  EXPECT_EQ(c.drop_spoofed_ip, 1u);
  EXPECT_EQ(c.pass_l2, 1u);
}

TEST_F(RunnerWorkloadTest, FramesNotForTheGatewayGoToTheBridgeUntouched) {
  // Same segment, addressed to B's MAC: the bridge switches it (after the source check).
  Bytes f = from_a(kWorkload1, kWorkload2, kWlMacB);
  RunResult r = run(f);
  EXPECT_EQ(r.retval, uint32_t{TC_ACT_OK});
  EXPECT_EQ(r.out, f);
  // A workload without the fast path: checked, then the bridge, even when routed.
  add(kVethA, kWorkload1, kWlMacA, false);
  Bytes routed = from_a(kWorkload1, kServer);
  RunResult slow = run(routed);
  EXPECT_EQ(slow.retval, uint32_t{TC_ACT_OK});
  EXPECT_EQ(slow.out, routed);
  EXPECT_EQ(run(from_a(kWorkload2, kServer)).retval, uint32_t{TC_ACT_SHOT});
  EXPECT_EQ(counters().pass_l2, 2u);
}

TEST_F(RunnerWorkloadTest, DeliversToAnotherWorkloadOfTheRunner) {
  Bytes f = from_a(kWorkload1, kWorkload2);
  RunResult r = run(f);
  ASSERT_EQ(r.retval, uint32_t{TC_ACT_REDIRECT});
  EXPECT_EQ(routed_differences(r.out, kWlMacB, kGwMac, kWorkload1, kWorkload2, 63), "");
  EXPECT_EQ(counters(kVethA).fwd_peer, 1u);
  EXPECT_EQ(counters(kVethB).delivered, 1u);
}

TEST_F(RunnerWorkloadTest, RoutesOutThroughTheUplinkWithTheFibNeighbour) {
  neighbour("192.168.50.1", "02:00:00:00:aa:01", "up0");
  RunResult r = run(from_a(kWorkload1, kServer));
  ASSERT_EQ(r.retval, uint32_t{TC_ACT_REDIRECT});
  // The source stays: masquerade is the uplink egress program's job.
  EXPECT_EQ(routed_differences(r.out, kRouterMac, Mac{0x02, 0, 0, 0, 0xaa, 0x02}, kWorkload1,
                               kServer, 63),
            "");
  EXPECT_EQ(counters().fwd_fib, 1u);
}

TEST_F(RunnerWorkloadTest, RoutesToOtherRunnersThroughTheTunnel) {
  neighbour("10.255.0.1", "02:00:00:00:bb:01", "vx0");
  RunResult r = run(from_a(kWorkload1, kOtherRunnerWorkload));
  ASSERT_EQ(r.retval, uint32_t{TC_ACT_REDIRECT});
  EXPECT_EQ(dst_mac(r.out), kHubMac);
  EXPECT_EQ(parse_eth_ipv4(r.out)->ttl, 63);
}

TEST_F(RunnerWorkloadTest, WithoutANeighbourTheKernelResolvesIt) {
  Bytes f = from_a(kWorkload1, kServer);
  RunResult r = run(f);
  ASSERT_EQ(r.retval, uint32_t{TC_ACT_REDIRECT});
  EXPECT_EQ(dst_mac(r.out), kGwMac);  // untouched: bpf_redirect_neigh fills them
  EXPECT_EQ(parse_eth_ipv4(r.out)->ttl, 63);
  EXPECT_EQ(verify_checksums(r.out), "");
  EXPECT_EQ(counters().fwd_neigh, 1u);
}

TEST_F(RunnerWorkloadTest, LeavesToTheKernelWhatItDoesNotOwn) {
  neighbour("192.168.50.1", "02:00:00:00:aa:01", "up0");
  neighbour("172.31.0.1", "02:00:00:00:cc:01", "other0");
  sh("ip route add 198.51.100.0/24 via 172.31.0.1 dev other0");
  Ipv4Options frag;
  frag.more_fragments = true;
  frag.dont_fragment = false;
  const Bytes cases[] = {
      from_a(kWorkload1, kServer, kGwMac, 1),   // TTL expires: the kernel answers
      from_a(kWorkload1, ip("10.1.0.1")),       // the runner itself
      from_a(kWorkload1, ip("192.168.50.2")),   // the runner's uplink address
      from_a(kWorkload1, ip("198.51.100.10")),  // a route through a device not ours
      eth(kGwMac, kWlMacA, ipv4(kWorkload1, kServer, kProtoUdp, Bytes(16, 0), frag)),
  };
  for (const Bytes& f : cases) {
    RunResult r = run(f);
    EXPECT_EQ(r.retval, uint32_t{TC_ACT_OK});
    EXPECT_EQ(r.out, f);
  }
  EXPECT_EQ(counters().pass_kernel, 5u);
  Bytes bcast = from_a(kWorkload1, ip("255.255.255.255"));
  EXPECT_EQ(run(bcast).out, bcast);
  EXPECT_EQ(counters().pass_local, 1u);
}

TEST_F(RunnerWorkloadTest, DenyRulesAndIsolationApplyAsOnTheBridge) {
  runner::DenyRule rule{Ipv4Cidr::parse("0.0.0.0/0"), Ipv4Cidr::parse("10.1.0.6/32"), IPPROTO_UDP,
                        53};
  ASSERT_TRUE(dp_->add_deny_rule(rule));
  EXPECT_EQ(run(from_a(kWorkload1, kWorkload2)).retval, uint32_t{TC_ACT_SHOT});
  dp_->set_named_networks({{Ipv4Cidr::parse("172.20.0.0/24"), 13091, true}});
  EXPECT_EQ(run(from_a(kWorkload1, ip("172.20.0.5"))).retval, uint32_t{TC_ACT_SHOT});
  runner_wl_stats c = counters();
  EXPECT_EQ(c.drop_denied, 1u);
  EXPECT_EQ(c.drop_isolated, 1u);
  runner_stats totals = dp_->counters();
  EXPECT_EQ(totals.policy_denied, 1u);
  EXPECT_EQ(totals.forward_dropped_isolated, 1u);
}

TEST_F(RunnerWorkloadTest, RepliesAtTheUplinkGoStraightIntoTheWorkload) {
  // Workload A opens a flow (masqueraded on the uplink), the reply comes back to the uplink.
  auto out = egress(udp_frame(kWorkload1, kServer, 40000, 53, Bytes(8, 1)));
  auto sent = passed(out);
  Bytes reply =
      eth(kMacB, kMacA,
          ipv4(kServer, kUplink, kProtoUdp, udp(kServer, kUplink, 53, sent.l4.sport, Bytes(8, 2))));
  ProgResult r = ingress(reply);
  ASSERT_EQ(r.verdict, TC_ACT_REDIRECT);
  EXPECT_EQ(dst_mac(r.out), kWlMacA);
  EXPECT_EQ(src_mac(r.out), kGwMac);
  auto v = parse_eth_ipv4(r.out);
  ASSERT_TRUE(v);
  EXPECT_EQ(v->dst, kWorkload1);
  EXPECT_EQ(v->l4.dport, 40000);
  EXPECT_EQ(v->ttl, 63);
  EXPECT_EQ(verify_checksums(r.out), "");
  EXPECT_EQ(counters().delivered, 1u);

  // A workload the fast path does not know: translated and left to the host stack, as before.
  runner::remove_workload(dp_->workload_maps(), kVethA);
  auto again = passed(ingress(reply));
  EXPECT_EQ(again.dst, kWorkload1);
  EXPECT_EQ(again.ttl, 64);
}

// runner_overlay_ingress on vxlan0: what the hub routed to a fast-path workload (to the gateway's
// MAC, as the hub's tunnel addresses it) goes straight into the workload; the rest to the bridge.
class RunnerOverlayIngressTest : public RunnerWorkloadTest {
 protected:
  static Bytes from_hub(uint32_t src, uint32_t dst, const Mac& to = kGwMac, uint8_t ttl = 63) {
    Ipv4Options o;
    o.ttl = ttl;
    return eth(to, kHubMac,
               ipv4(src, dst, kProtoUdp, udp(src, dst, 40000, 53, Bytes(32, 0x22)), o));
  }
  RunResult run_overlay(const Bytes& f) {
    return test_run(dp_->overlay_ingress_fd(), f, 0, tunnel_);
  }
  void expect_to_bridge(const Bytes& f) {
    RunResult r = run_overlay(f);
    EXPECT_EQ(r.retval, uint32_t{TC_ACT_OK});
    EXPECT_EQ(r.out, f);
  }
};

TEST_F(RunnerOverlayIngressTest, DeliversWhatTheHubRoutedToAWorkload) {
  RunResult r = run_overlay(from_hub(kOtherRunnerWorkload, kWorkload2));
  ASSERT_EQ(r.retval, uint32_t{TC_ACT_REDIRECT});
  EXPECT_EQ(routed_differences(r.out, kWlMacB, kGwMac, kOtherRunnerWorkload, kWorkload2, 62), "");
  EXPECT_EQ(counters(kVethB).delivered, 1u);
  EXPECT_EQ(counters(kVethA).delivered, 0u);
}

TEST_F(RunnerOverlayIngressTest, LeavesTheRestToTheBridgeUntouched) {
  expect_to_bridge(from_hub(kOtherRunnerWorkload, ip("10.1.0.77")));      // no such workload
  expect_to_bridge(from_hub(kOtherRunnerWorkload, kWorkload2, kWlMacB));  // switched to its MAC
  expect_to_bridge(
      from_hub(kOtherRunnerWorkload, kWorkload2, kGwMac, 1));  // TTL: the kernel answers
  expect_to_bridge(eth(Mac{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}, kHubMac,
                       arp(kArpRequest, kHubMac, ip("10.1.0.254"), Mac{}, kWorkload2), kEthArp));
  Ipv4Options frag;
  frag.more_fragments = true;
  frag.dont_fragment = false;
  expect_to_bridge(
      eth(kGwMac, kHubMac, ipv4(kOtherRunnerWorkload, kWorkload2, kProtoUdp, Bytes(16, 0), frag)));
  // A workload without the fast path is the bridge's, as before.
  add(kVethB, kWorkload2, kWlMacB, false);
  expect_to_bridge(from_hub(kOtherRunnerWorkload, kWorkload2));
  EXPECT_EQ(counters(kVethB).delivered, 0u);
}

TEST_F(RunnerOverlayIngressTest, WhatTheForwardFilterRefusesGoesToTheBridgeToBeDropped) {
  // The bridge's runner_forward_filter drops and counts it, as for any other port.
  runner::DenyRule rule{Ipv4Cidr::parse("10.2.0.0/16"), Ipv4Cidr::parse("10.1.0.6/32"), IPPROTO_UDP,
                        53};
  ASSERT_TRUE(dp_->add_deny_rule(rule));
  expect_to_bridge(from_hub(kOtherRunnerWorkload, kWorkload2));
  EXPECT_EQ(counters(kVethB).delivered, 0u);
  ASSERT_TRUE(dp_->remove_deny_rule(rule));
  EXPECT_EQ(run_overlay(from_hub(kOtherRunnerWorkload, kWorkload2)).retval,
            uint32_t{TC_ACT_REDIRECT});
}

TEST(WorkloadTable, RefusesBadEntriesAndChangesNothing) {
  runner::DatapathOptions options;
  auto dp = runner::RunnerDatapath::open(options);
  const auto maps = dp->workload_maps();
  WorkloadEntry good{7, Ipv4Addr::parse("10.1.0.5"), 16, mac_of(kWlMacA), mac_of(kGwMac), 3, true};
  WorkloadEntry no_mac = good;
  no_mac.mac = {};
  WorkloadEntry multicast = good;
  multicast.gw_mac.bytes[0] = 1;
  WorkloadEntry twice = good;
  twice.ifindex = 8;
  EXPECT_THROW(runner::upsert_workload(maps, no_mac), std::invalid_argument);
  EXPECT_THROW(runner::upsert_workload(maps, multicast), std::invalid_argument);
  EXPECT_THROW(runner::sync_workloads(maps, {good, twice}), std::invalid_argument);
  EXPECT_TRUE(runner::read_workloads(maps).empty());

  EXPECT_EQ(runner::sync_workloads(maps, {good}), 1u);
  EXPECT_EQ(runner::sync_workloads(maps, {good}), 0u);
  // The address moves to another veth: the old entry and its address go.
  EXPECT_EQ(runner::sync_workloads(maps, {twice}), 2u);
  EXPECT_EQ(runner::read_workloads(maps), std::vector<WorkloadEntry>{twice});
  EXPECT_TRUE(runner::remove_workload(maps, 8));
  EXPECT_FALSE(runner::remove_workload(maps, 8));
  EXPECT_TRUE(runner::read_workloads(maps).empty());
}

}  // namespace
}  // namespace kohaku::test
