// RunnerDatapath beyond single packets: configuration validation, garbage collection of
// expired flows, pin adoption across a daemon restart, and TC attach/detach on a real device
// (loopback of a private network namespace).
#include <net/if.h>
#include <netinet/in.h>
#include <sys/mount.h>
#include <sys/statfs.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/bpf/bpffs.h"
#include "host_test_env.h"
#include "runner_fixture.h"

namespace kohaku::test {
namespace {

using RunnerDatapathLife = RunnerDatapathTest;
constexpr uint64_t kSec = 1'000'000'000ull;

TEST_F(RunnerDatapathLife, InvalidConfigRejectedAndOldOneKept) {
  auto bad = config();
  bad.uplink = Ipv4Addr{ip("10.9.9.9")};  // inside the overlay
  EXPECT_THROW(dp_->configure(bad), std::invalid_argument);
  bad = config();
  bad.port_min = 40000;
  bad.port_max = 30000;
  EXPECT_THROW(dp_->configure(bad), std::invalid_argument);
  bad = config();
  bad.timeouts.udp = 0;
  EXPECT_THROW(dp_->configure(bad), std::invalid_argument);
  auto now = dp_->configuration();
  ASSERT_TRUE(now);
  EXPECT_EQ(*now, config());
}

TEST_F(RunnerDatapathLife, GarbageCollectionRemovesExpiredFlowsOnly) {
  ASSERT_EQ(egress(udp_frame(kWorkload1, kServer, 50000, 53, {1})).verdict, TC_ACT_OK);
  ASSERT_EQ(egress(tcp_frame(kWorkload1, kServer, 40000, 443, kSyn)).verdict, TC_ACT_OK);
  ASSERT_EQ(ingress(tcp_frame(kServer, kUplink, 443, 40000, kSyn | kAck)).verdict, TC_ACT_OK);
  ASSERT_EQ(egress(tcp_frame(kWorkload1, kServer, 40000, 443, kAck)).verdict, TC_ACT_OK);
  EXPECT_EQ(dp_->table_usage().entries, 4u);
  EXPECT_EQ(dp_->table_usage().max_entries, 4096u);

  uint64_t now = runner::monotonic_now_ns();
  auto early = dp_->collect_garbage(now + 20 * kSec);  // UDP unreplied lives 30 s
  EXPECT_EQ(early.flows_expired, 0u);
  EXPECT_EQ(early.flows_live, 2u);
  EXPECT_EQ(dp_->table_usage().entries, 4u);

  auto later = dp_->collect_garbage(now + 31 * kSec);
  EXPECT_EQ(later.flows_expired, 1u);
  EXPECT_EQ(later.flows_live, 1u);
  EXPECT_EQ(dp_->table_usage().entries, 2u);
  EXPECT_FALSE(ct_entry(kWorkload1, kServer, 50000, 53, kProtoUdp));
  EXPECT_FALSE(ct_entry(kServer, kUplink, 53, 50000, kProtoUdp));
  // The established TCP flow (5 days) survives a day.
  EXPECT_EQ(dp_->collect_garbage(now + 86400 * kSec).flows_expired, 0u);
  EXPECT_TRUE(ct_entry(kWorkload1, kServer, 40000, 443, kProtoTcp));

  // A reply after collection finds no flow: it is no longer translated.
  Bytes late = udp_frame(kServer, kUplink, 53, 50000, {2});
  EXPECT_EQ(ingress(late).out, late);
}

TEST_F(RunnerDatapathLife, GarbageCollectionExpiresRunnerOwnFlows) {
  ASSERT_EQ(egress(udp_frame(kUplink, kServer, 45000, 53, {1})).verdict, TC_ACT_OK);
  uint64_t now = runner::monotonic_now_ns();
  auto early = dp_->collect_garbage(now + 20 * kSec);
  EXPECT_EQ(early.host_flows_live, 1u);
  EXPECT_EQ(early.orphans_removed, 0u);  // a reservation is no orphan
  auto later = dp_->collect_garbage(now + 31 * kSec);
  EXPECT_EQ(later.host_flows_expired, 1u);
  EXPECT_EQ(dp_->table_usage().entries, 0u);
}

TEST_F(RunnerDatapathLife, GarbageCollectionRemovesOrphanedReplyHalves) {
  ASSERT_EQ(egress(udp_frame(kWorkload1, kServer, 50000, 53, {1})).verdict, TC_ACT_OK);
  // Drop the ORIGINAL half, as an LRU eviction would.
  runner_ct_key k{};
  for (const auto& r : dp_->conntrack())
    if (r.entry.dir == RUNNER_CT_ORIGINAL) k = r.key;
  ASSERT_EQ(bpf_map_delete_elem(dp_->conntrack_fd(), &k), 0);
  uint64_t now = runner::monotonic_now_ns();
  EXPECT_EQ(dp_->collect_garbage(now).orphans_removed, 0u);  // young: may be a flow in setup
  EXPECT_EQ(dp_->collect_garbage(now + 11 * kSec).orphans_removed, 1u);
  EXPECT_EQ(dp_->table_usage().entries, 0u);
}

TEST_F(RunnerDatapathLife, EvictedReplyHalfIsRestoredByTraffic) {
  ASSERT_EQ(egress(udp_frame(kWorkload1, kServer, 50000, 53, {1})).verdict, TC_ACT_OK);
  auto reply = ct_entry(kServer, kUplink, 53, 50000, kProtoUdp);
  ASSERT_TRUE(reply);
  runner_ct_key k{};
  for (const auto& r : dp_->conntrack())
    if (r.entry.dir == RUNNER_CT_REPLY) k = r.key;
  ASSERT_EQ(bpf_map_delete_elem(dp_->conntrack_fd(), &k), 0);
  ASSERT_EQ(egress(udp_frame(kWorkload1, kServer, 50000, 53, {1})).verdict, TC_ACT_OK);
  EXPECT_TRUE(ct_entry(kServer, kUplink, 53, 50000, kProtoUdp));
  EXPECT_EQ(dp_->counters().ct_peer_missing, 1u);
  auto back = ingress(udp_frame(kServer, kUplink, 53, 50000, {2}));
  EXPECT_EQ(parse_eth_ipv4(back.out)->dst, kWorkload1);
}

// A private directory on bpffs (mounted at /sys/fs/bpf when missing), removed afterwards.
class PinRoot {
 public:
  PinRoot() {
    std::filesystem::create_directories("/sys/fs/bpf");
    struct statfs st {};
    if (statfs("/sys/fs/bpf", &st) != 0 || st.f_type != 0xcafe4a11)
      mount("bpf", "/sys/fs/bpf", "bpf", 0, nullptr);
    path_ = "/sys/fs/bpf/kohaku-test-" + std::to_string(getpid());
    std::filesystem::create_directories(path_);
  }
  ~PinRoot() { std::filesystem::remove_all(path_); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

TEST_F(RunnerDatapathLife, PinnedFlowsSurviveARestart) {
  PinRoot root;
  runner::DatapathOptions options{root.path(), 4096};
  uint16_t external = 0;
  {
    auto first = runner::RunnerDatapath::open(options);
    EXPECT_FALSE(first->adopted_conntrack());
    first->configure(config());
    first->set_named_networks({{Ipv4Cidr::parse("172.20.0.0/24"), 13091, false}});
    auto out =
        run_prog(first->nat_egress_fd(), echo_frame(kWorkload1, kServer, kIcmpEchoRequest, 5, 1));
    external = parse_eth_ipv4(out.out)->l4.icmp_id;
    for (const char* pin : {"runner_ct", "runner_config", "runner_policy", "runner_nets",
                            "runner_stats", "nat_egress", "nat_ingress", "forward_filter"})
      EXPECT_TRUE(std::filesystem::exists(root.path() + "/runner/" + pin)) << pin;
  }  // the daemon exits: pins stay

  auto second = runner::RunnerDatapath::open(options);
  EXPECT_TRUE(second->adopted_conntrack());
  ASSERT_TRUE(second->configuration());
  EXPECT_EQ(*second->configuration(), config());
  auto back =
      run_prog(second->nat_ingress_fd(), echo_frame(kServer, kUplink, kIcmpEchoReply, external, 1));
  auto v = parse_eth_ipv4(back.out);
  EXPECT_EQ(v->dst, kWorkload1);
  EXPECT_EQ(v->l4.icmp_id, 5);
  EXPECT_EQ(second->counters().egress_translated, 1u);  // counters adopted too
  ASSERT_EQ(second->named_networks().size(), 1u);       // and the named networks
  EXPECT_EQ(second->named_networks()[0].id, 13091u);

  // A resized table is recreated and the flows copied over.
  second.reset();
  runner::DatapathOptions bigger{root.path(), 8192};
  auto third = runner::RunnerDatapath::open(bigger);
  EXPECT_TRUE(third->adopted_conntrack());
  EXPECT_EQ(third->table_usage().max_entries, 8192u);
  EXPECT_EQ(third->table_usage().entries, 2u);
  third->unpin();
  EXPECT_FALSE(std::filesystem::exists(root.path() + "/runner"));
}

// A daemon from before the named networks left counters of another layout (fewer fields) and no
// runner_nets: the counters are recreated with the new layout, the flows are kept.
TEST_F(RunnerDatapathLife, CountersOfAnOlderLayoutAreRecreated) {
  PinRoot root;
  runner::DatapathOptions options{root.path(), 4096};
  {
    auto first = runner::RunnerDatapath::open(options);
    first->configure(config());
    ASSERT_EQ(
        run_prog(first->nat_egress_fd(), udp_frame(kWorkload1, kServer, 50000, 53, {1})).verdict,
        TC_ACT_OK);
  }
  const std::string dir = root.path() + "/runner/";
  ASSERT_EQ(::unlink((dir + "runner_stats").c_str()), 0);
  ASSERT_EQ(::unlink((dir + "runner_nets").c_str()), 0);
  constexpr uint32_t kOldFields = 17;
  int old =
      bpf_map_create(BPF_MAP_TYPE_PERCPU_ARRAY, "runner_stats", 4, kOldFields * 8, 1, nullptr);
  ASSERT_GE(old, 0);
  ASSERT_EQ(bpf_obj_pin(old, (dir + "runner_stats").c_str()), 0);
  ::close(old);

  auto second = runner::RunnerDatapath::open(options);
  EXPECT_TRUE(second->adopted_conntrack());
  EXPECT_EQ(second->table_usage().entries, 2u);
  int pinned = bpf_obj_get((dir + "runner_stats").c_str());
  ASSERT_GE(pinned, 0);
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  ASSERT_EQ(bpf_obj_get_info_by_fd(pinned, &info, &len), 0);
  ::close(pinned);
  EXPECT_EQ(info.value_size, sizeof(runner_stats));
  EXPECT_TRUE(std::filesystem::exists(dir + "runner_nets"));
  second->set_named_networks({{Ipv4Cidr::parse("172.21.0.0/24"), 7, false}});
  Bytes f = udp_frame(ip("172.21.0.5"), kServer, 1, 2, {1});
  EXPECT_EQ(run_prog(second->nat_egress_fd(), f).out, f);
  EXPECT_EQ(second->counters().passed_no_nat, 1u);
  second->unpin();
}

TEST_F(RunnerDatapathLife, ForgetFlowsViaAnOldUplinkAddress) {
  ASSERT_EQ(egress(udp_frame(kWorkload1, kServer, 50000, 53, {1})).verdict, TC_ACT_OK);
  ASSERT_EQ(egress(udp_frame(kUplink, kServer, 45000, 53, {1})).verdict, TC_ACT_OK);  // own flow
  auto moved = config();
  moved.uplink = Ipv4Addr{ip("192.168.60.2")};
  dp_->configure(moved);
  ASSERT_EQ(egress(udp_frame(kWorkload1, kServer, 50001, 53, {1})).verdict, TC_ACT_OK);
  EXPECT_EQ(dp_->table_usage().entries, 5u);

  // The flow and the reservation behind the old address go; the new flow stays whole.
  EXPECT_EQ(dp_->forget_flows_via(Ipv4Addr{kUplink}), 3u);
  EXPECT_EQ(dp_->table_usage().entries, 2u);
  EXPECT_FALSE(ct_entry(kWorkload1, kServer, 50000, 53, kProtoUdp));
  EXPECT_TRUE(ct_entry(kWorkload1, kServer, 50001, 53, kProtoUdp));
  EXPECT_TRUE(ct_entry(kServer, ip("192.168.60.2"), 53, 50001, kProtoUdp));
}

TEST(RunnerDatapathLeftovers, DetachEverywhereAndRemovePins) {
  PinRoot root;
  auto dp = runner::RunnerDatapath::open({root.path(), 4096});
  std::string failure;
  {
    ScopedNetns netns;  // this thread's own: the root namespace's devices are never touched
    int lo = static_cast<int>(if_nametoindex("lo"));
    dp->attach_uplink(lo);
    dp->attach_bridge(lo);  // the egress hook now holds the bridge program
    auto removed = runner::RunnerDatapath::detach_everywhere();
    if (removed != std::vector<std::string>{"lo ingress", "lo egress"})
      failure += "detach_everywhere removed " + std::to_string(removed.size()) + " filters; ";
    if (!runner::RunnerDatapath::detach_everywhere().empty())
      failure += "a second sweep found filters; ";
  }
  EXPECT_EQ(failure, "");
  dp.reset();
  EXPECT_EQ(runner::RunnerDatapath::remove_pins(root.path()).size(), 14u);  // 9 maps (5 NAT, 4 fast path), 5 programs
  EXPECT_FALSE(std::filesystem::exists(root.path() + "/runner"));
  EXPECT_TRUE(runner::RunnerDatapath::remove_pins(root.path()).empty());
}

// A runner-only machine may have nothing mounted at the pin root: the loader mounts a bpffs
// (here on a temp directory: not below /sys/fs/bpf, so right at the pin directory) rather than
// falling back to the kernel datapath.
TEST(RunnerDatapathOpen, MountsBpffsWhenPinRootIsNotOnOne) {
  std::string dir = "/tmp/kohaku-not-bpffs-" + std::to_string(getpid());
  ASSERT_FALSE(bpf::is_on_bpffs(dir));
  {
    auto dp = runner::RunnerDatapath::open({dir, 4096});
    EXPECT_TRUE(bpf::is_on_bpffs(dir + "/runner/runner_ct"));
  }
  ::umount2((dir + "/runner").c_str(), MNT_DETACH);
  std::filesystem::remove_all(dir);
}

TEST(RunnerDatapathOpen, RejectsPinRootBelowARegularFile) {
  std::string file = "/tmp/kohaku-pin-file-" + std::to_string(getpid());
  std::ofstream(file).put('x');
  EXPECT_THROW(runner::RunnerDatapath::open({file + "/pins", 4096}), std::runtime_error);
  std::filesystem::remove(file);
}

TEST(RunnerDatapathAttach, AttachReplaceDetachOnLoopbackOfPrivateNamespace) {
  auto dp = runner::RunnerDatapath::open({});
  std::string failure;
  {
    ScopedNetns netns;  // this thread's own: the root namespace's devices are never touched
    int lo = static_cast<int>(if_nametoindex("lo"));
    auto prog_id = [](int fd) {
      bpf_prog_info info{};
      uint32_t len = sizeof(info);
      bpf_obj_get_info_by_fd(fd, &info, &len);
      return info.id;
    };
    dp->attach_uplink(lo);
    dp->attach_uplink(lo);  // a restarted daemon: replaced, not duplicated
    dp->attach_bridge(lo);
    auto eg = tc_attached_program(lo, TcDirection::kEgress, kRunnerTcFilter);
    auto in = tc_attached_program(lo, TcDirection::kIngress, kRunnerTcFilter);
    if (!eg || *eg != prog_id(dp->forward_filter_fd()))
      failure += "egress filter not the bridge program; ";
    if (!in || *in != prog_id(dp->nat_ingress_fd())) failure += "ingress filter not nat_ingress; ";
    dp->detach_bridge(lo);
    dp->detach_uplink(lo);
    if (tc_attached_program(lo, TcDirection::kIngress, kRunnerTcFilter))
      failure += "ingress filter still attached; ";
    if (tc_detach(lo, TcDirection::kEgress, kRunnerTcFilter))
      failure += "second detach reported success; ";
  }
  EXPECT_EQ(failure, "");
}

}  // namespace
}  // namespace kohaku::test
