// The daemon's side of the runner fast path (userspace/runner/datapath/fast_path.cpp) over real
// maps and a real veth on a bridge, in a private network namespace: a reconcile pass serves the
// workloads its sources report, and a restarted daemon (a new FastPath over the maps the old one
// left) keeps every workload's entry and counters until all of its sources have reported, then
// forgets those no source names.
#include <gtest/gtest.h>
#include <linux/pkt_cls.h>

#include <memory>

#include "host_test_env.h"
#include "runner/bpf/workload_table.h"
#include "runner/datapath/fast_path.h"
#include "runner_fixture.h"

namespace kohaku::test {
namespace {

using runner::FastPath;
using runner::FastPathWorkload;
using runner::kFastPathDockerSource;
using runner::kFastPathRunnerSource;

const Mac kWlMac{0x02, 0, 0, 0, 0x0a, 0x05};
const Mac kGwMac{0x02, 0, 0, 0, 0x0a, 0x01};

class RunnerFastPathTest : public RunnerDatapathTest {
 protected:
  void SetUp() override {
    netns_ = std::make_unique<ScopedNetns>();
    sh("ip link set lo up");
    sh("ip link add br0 address 02:00:00:00:0a:01 type bridge && ip link set br0 up");
    sh("ip link add wl0 type veth peer name wl0-ns address 02:00:00:00:0a:05");
    sh("ip link set wl0 master br0 && ip link set wl0 up && ip link set wl0-ns up");
    sh("ip link add up0 type veth peer name up0-peer && ip link set up0 up");
    RunnerDatapathTest::SetUp();
    veth_ = ifindex_of("wl0");
    uplink_ = ifindex_of("up0");
  }
  void TearDown() override {
    dp_.reset();
    netns_.reset();
  }

  std::unique_ptr<FastPath> fast_path() {
    return std::make_unique<FastPath>(
        *dp_, std::set<std::string>{kFastPathRunnerSource, kFastPathDockerSource});
  }
  static FastPathWorkload workload() {
    netlink::MacAddr mac;
    std::copy(kWlMac.begin(), kWlMac.end(), mac.bytes.begin());
    return {"workload wl-test", "wl0", Ipv4Addr{ip("10.1.0.5")}, 16, mac, "br0"};
  }
  // A frame from the workload's MAC with another address: dropped and counted on its veth.
  void send_spoofed() {
    Bytes f = eth(kGwMac, kWlMac,
                  ipv4(ip("10.1.0.77"), kServer, kProtoUdp,
                       udp(ip("10.1.0.77"), kServer, 40000, 53, Bytes(32, 0x11))));
    EXPECT_EQ(test_run(dp_->workload_fd(), f, 0, veth_).retval, uint32_t{TC_ACT_SHOT});
  }
  std::optional<uint64_t> spoofed_count() {
    auto counters = runner::read_workload_counters(dp_->workload_maps());
    auto it = counters.find(veth_);
    if (it == counters.end()) return std::nullopt;
    return it->second.drop_spoofed_ip;
  }
  size_t served(const FastPath& fp) const { return fp.status().size(); }

  std::unique_ptr<ScopedNetns> netns_;
  uint32_t veth_ = 0, uplink_ = 0;
};

TEST_F(RunnerFastPathTest, RestartKeepsEntriesAndCountersUntilEverySourceReported) {
  auto before = fast_path();
  before->set_workloads(kFastPathRunnerSource, {workload()});
  before->set_workloads(kFastPathDockerSource, {});
  before->reconcile(uplink_, 0);
  ASSERT_EQ(served(*before), 1u);
  send_spoofed();
  send_spoofed();
  ASSERT_EQ(spoofed_count(), 2u);

  // The restarted daemon: its first pass runs before any source has reported (the overlay's
  // apply()), the next ones after each source in turn.
  before.reset();
  auto after = fast_path();
  after->reconcile(uplink_, 0);
  EXPECT_EQ(runner::read_workloads(dp_->workload_maps()).size(), 1u);
  EXPECT_EQ(spoofed_count(), 2u) << "the first pass reset the counters";
  after->set_workloads(kFastPathDockerSource, {});
  after->reconcile(uplink_, 0);
  EXPECT_EQ(spoofed_count(), 2u) << "a pass before the runner source reported reset the counters";
  after->set_workloads(kFastPathRunnerSource, {workload()});
  after->reconcile(uplink_, 0);
  EXPECT_EQ(served(*after), 1u);
  EXPECT_EQ(spoofed_count(), 2u);
  send_spoofed();
  EXPECT_EQ(spoofed_count(), 3u);

  // All sources heard from: a workload none of them names is forgotten.
  after->set_workloads(kFastPathRunnerSource, {});
  after->reconcile(uplink_, 0);
  EXPECT_EQ(served(*after), 0u);
  EXPECT_TRUE(runner::read_workloads(dp_->workload_maps()).empty());
  EXPECT_EQ(spoofed_count(), std::nullopt);
}

TEST_F(RunnerFastPathTest, RestartForgetsWhatNoSourceReports) {
  auto before = fast_path();
  before->set_workloads(kFastPathRunnerSource, {workload()});
  before->set_workloads(kFastPathDockerSource, {});
  before->reconcile(uplink_, 0);
  ASSERT_EQ(runner::read_workloads(dp_->workload_maps()).size(), 1u);

  // The workload went while the daemon was down.
  before.reset();
  auto after = fast_path();
  after->set_workloads(kFastPathRunnerSource, {});
  after->reconcile(uplink_, 0);
  EXPECT_EQ(runner::read_workloads(dp_->workload_maps()).size(), 1u) << "docker not heard yet";
  after->set_workloads(kFastPathDockerSource, {});
  after->reconcile(uplink_, 0);
  EXPECT_TRUE(runner::read_workloads(dp_->workload_maps()).empty());
}

}  // namespace
}  // namespace kohaku::test
