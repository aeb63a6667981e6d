// The host fast path between real VXLAN tunnels: a hub namespace with two vxkr devices, two
// runner namespaces at the far ends, pings across. With kernel forwarding off on the hub only the
// BPF program can carry the traffic; with it on, the hub's IpForwDatagrams must not move.
#include <gtest/gtest.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <sstream>

#include "host/bpf/host_datapath.h"
#include "host_test_env.h"

namespace kohaku::test {
namespace {

using bpf::HostDatapath;

class HostVxlanTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tag = std::to_string(::getpid());
    r1_ = "khbpf-r1-" + tag;
    r2_ = "khbpf-r2-" + tag;
    hub_ = std::make_unique<ScopedNetns>();  // this thread is the hub from here on
    sh("ip netns add " + r1_);
    sh("ip netns add " + r2_);
    sh("ip link set lo up");
    // Underlay: one veth pair per runner.
    sh("ip link add u1 type veth peer name u1p netns " + r1_);
    sh("ip link add u2 type veth peer name u2p netns " + r2_);
    sh("ip addr add 192.168.77.1/24 dev u1 && ip link set u1 up");
    sh("ip addr add 192.168.78.1/24 dev u2 && ip link set u2 up");
    sh(in(r1_, "ip addr add 192.168.77.11/24 dev u1p && ip link set u1p up && ip link set lo up"));
    sh(in(r2_, "ip addr add 192.168.78.12/24 dev u2p && ip link set u2p up && ip link set lo up"));
    // Hub tunnels as kohaku-hostd builds them: point to point, no learning, MTU 1450, .254.
    sh("ip link add vxkr1 type vxlan id 101 local 192.168.77.1 remote 192.168.77.11 dstport 4789 "
       "nolearning && ip link set vxkr1 mtu 1450 up && ip addr add 10.1.0.254/16 dev vxkr1");
    sh("ip link add vxkr2 type vxlan id 102 local 192.168.78.1 remote 192.168.78.12 dstport 4789 "
       "nolearning && ip link set vxkr2 mtu 1450 up && ip addr add 10.2.0.254/16 dev vxkr2");
    // Runner ends: the workload address sits on the tunnel itself (no bridge needed here).
    sh(in(r1_,
          "ip link add vxlan0 type vxlan id 101 local 192.168.77.11 remote 192.168.77.1 "
          "dstport 4789 nolearning && ip link set vxlan0 mtu 1450 up && "
          "ip addr add 10.1.0.5/16 dev vxlan0 && ip route add 10.0.0.0/8 via 10.1.0.254"));
    sh(in(r2_,
          "ip link add vxlan0 type vxlan id 102 local 192.168.78.12 remote 192.168.78.1 "
          "dstport 4789 nolearning && ip link set vxlan0 mtu 1450 up && "
          "ip addr add 10.2.0.5/16 dev vxlan0 && ip route add 10.0.0.0/8 via 10.2.0.254"));
    sh("echo 0 > /proc/sys/net/ipv4/conf/all/forwarding");

    dp_ = std::make_unique<HostDatapath>(bpf::HostDatapathOptions{.pin = false});
    for (uint32_t id : {1u, 2u}) {
      uint32_t ifindex = ifindex_of("vxkr" + std::to_string(id));
      dp_->upsert_runner({id, Ipv4Cidr::parse("10." + std::to_string(id) + ".0.0/16"), ifindex});
      dp_->add_host_address({Ipv4Addr::parse("10." + std::to_string(id) + ".0.254"), ifindex});
    }
  }

  void TearDown() override {
    dp_.reset();
    hub_.reset();
    for (const std::string& ns : {r1_, r2_})
      ::system(("ip netns del " + ns + " 2>/dev/null").c_str());
  }

  static std::string in(const std::string& ns, const std::string& cmd) {
    return "ip netns exec " + ns + " sh -c '" + cmd + "'";
  }
  // True when `count` pings from runner 1 to dst all get their reply.
  bool ping_from_r1(const std::string& dst, int count, const std::string& source = "") {
    std::string cmd = "ip netns exec " + r1_ + " ping -q -n -c " + std::to_string(count) +
                      " -i 0.2 -W 2 " + (source.empty() ? "" : "-I " + source + " ") + dst;
    return ::system((cmd + " >/dev/null 2>&1").c_str()) == 0;
  }

  std::string r1_, r2_;
  std::unique_ptr<ScopedNetns> hub_;
  std::unique_ptr<HostDatapath> dp_;
};

TEST_F(HostVxlanTest, RunnersReachEachOtherOnlyThroughTheProgram) {
  // Kernel forwarding is off on the hub: without the program nothing crosses.
  EXPECT_FALSE(ping_from_r1("10.2.0.5", 1));
  dp_->attach(ifindex_of("vxkr1"));
  dp_->attach(ifindex_of("vxkr2"));
  ASSERT_TRUE(ping_from_r1("10.2.0.5", 3));
  auto c1 = dp_->counters(1), c2 = dp_->counters(2);
  ASSERT_TRUE(c1 && c2);
  EXPECT_GE(c1->sum.fwd_packets, 3u);                  // requests
  EXPECT_GE(c2->sum.fwd_packets, 3u);                  // replies
  EXPECT_EQ(c1->sum.fwd_packets, c1->sum.fwd_no_fib);  // FIB refused: forwarding is off
  EXPECT_EQ(ip_forwarded_datagrams(), 0u);
  // The runner still reaches the hub itself through the kernel.
  EXPECT_TRUE(ping_from_r1("10.1.0.254", 1));
  EXPECT_GE(dp_->counters(1)->sum.pass_to_host, 1u);
}

TEST_F(HostVxlanTest, WithKernelForwardingOnTrafficStillTakesTheFastPath) {
  sh("echo 1 > /proc/sys/net/ipv4/conf/all/forwarding");
  dp_->attach(ifindex_of("vxkr1"));
  dp_->attach(ifindex_of("vxkr2"));
  uint64_t before = ip_forwarded_datagrams();
  ASSERT_TRUE(ping_from_r1("10.2.0.5", 5));
  auto c1 = dp_->counters(1);
  EXPECT_GE(c1->sum.fwd_packets, 5u);
  // Once the hub's neighbour entry for 10.2.0.5 is resolved, MACs come from the FIB lookup.
  EXPECT_LT(c1->sum.fwd_neigh, c1->sum.fwd_packets);
  EXPECT_EQ(ip_forwarded_datagrams(), before);
}

TEST_F(HostVxlanTest, KernelAnswersWhatTheProgramHandsOver) {
  sh("echo 1 > /proc/sys/net/ipv4/conf/all/forwarding");
  dp_->attach(ifindex_of("vxkr1"));
  dp_->attach(ifindex_of("vxkr2"));
  // TTL 1: the hub's kernel sends Time Exceeded back to runner 1.
  std::string ttl = sh("ip netns exec " + r1_ + " ping -n -c 1 -W 2 -t 1 10.2.0.5; true");
  EXPECT_NE(ttl.find("Time to live exceeded"), std::string::npos) << ttl;
  EXPECT_GE(dp_->counters(1)->sum.pass_ttl, 1u);
  // Larger than runner 2's tunnel with DF set: the hub's kernel sends Fragmentation Needed.
  sh("ip link set vxkr2 mtu 1400");
  std::string big = sh("ip netns exec " + r1_ + " ping -n -c 1 -W 2 -M do -s 1420 10.2.0.5; true");
  EXPECT_NE(big.find("mtu = 1400"), std::string::npos) << big;
  EXPECT_GE(dp_->counters(1)->sum.pass_oversize, 1u);
}

TEST_F(HostVxlanTest, SpoofedSourceNeverArrives) {
  dp_->attach(ifindex_of("vxkr1"));
  dp_->attach(ifindex_of("vxkr2"));
  sh(in(r1_, "ip addr add 10.9.0.1/32 dev vxlan0"));
  sh(in(r2_, "ip route add 10.9.0.1/32 via 10.2.0.254"));  // so a reply could come back
  EXPECT_FALSE(ping_from_r1("10.2.0.5", 2, "10.9.0.1"));
  EXPECT_GE(dp_->counters(1)->sum.drop_spoofed, 2u);
  EXPECT_EQ(dp_->counters(2)->sum.fwd_packets, 0u);  // runner 2 never answered
}

}  // namespace
}  // namespace kohaku::test
