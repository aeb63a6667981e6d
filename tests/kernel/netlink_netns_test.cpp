// Namespace handles, running code inside a namespace, and concurrent use of the layer.
#include <gtest/gtest.h>

#include <atomic>
#include <thread>
#include <vector>

#include "common/netlink/bridge_link.h"
#include "common/netlink/link.h"
#include "common/netlink/netns.h"
#include "netlink_test_helpers.h"

namespace kohaku::netlink {
namespace {

using NetnsLayerTest = testing::NetnsTest;

TEST_F(NetnsLayerTest, RunInNetnsReturnsValuesAndRethrows) {
  Netns other = Netns::create();
  EXPECT_NE(other.inode(), Netns::current().inode());
  // The callable really runs in the other namespace, and the caller's thread does not move.
  unsigned long seen = run_in_netns(other, [] { return Netns::current().inode(); });
  EXPECT_EQ(seen, other.inode());
  EXPECT_EQ(Netns::current().inode(), ns_.inode());

  run_in_netns(other, [] { create_bridge("kt-there"); });
  EXPECT_FALSE(link_exists("kt-there"));
  EXPECT_TRUE(run_in_netns(other, [] { return link_exists("kt-there"); }));

  try {
    run_in_netns(other, [] { delete_link("kt-missing"); });
    FAIL();
  } catch (const NetlinkError& e) {
    EXPECT_EQ(std::string(e.what()), "delete link kt-missing: No such device");
  }
}

TEST_F(NetnsLayerTest, OpenByPathAndPid) {
  Netns mine = Netns::of_pid(::getpid());  // the process's main thread: this test's namespace
  EXPECT_EQ(mine.inode(), ns_.inode());
  try {
    Netns::open("/var/run/netns/kt-does-not-exist");
    FAIL();
  } catch (const NetlinkError& e) {
    EXPECT_EQ(std::string(e.what()),
              "open network namespace /var/run/netns/kt-does-not-exist: No such file or directory");
  }
  EXPECT_THROW(Netns::of_pid(-1), NetlinkError);
}

TEST_F(NetnsLayerTest, MovedFromHandleIsEmpty) {
  Netns a = Netns::create();
  unsigned long ino = a.inode();
  Netns b = std::move(a);
  EXPECT_EQ(a.fd(), -1);
  EXPECT_EQ(b.inode(), ino);
}

// Each call owns its socket: threads hammering the layer at once must not see each other's
// replies or errors.
TEST_F(NetnsLayerTest, ConcurrentCallsFromManyThreads) {
  constexpr int kThreads = 4;
  constexpr int kRounds = 10;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < kRounds; ++i) {
        std::string name = "kt-c" + std::to_string(t) + "-" + std::to_string(i);
        try {
          if (ensure_bridge(name, 1400 + t) != EnsureAction::kCreated) ++failures;
          if (get_link(name).mtu != static_cast<unsigned>(1400 + t)) ++failures;
          delete_link(name);
          delete_link(name);  // must fail with this thread's own error
          ++failures;
        } catch (const NetlinkError& e) {
          if (std::string(e.what()) != "delete link " + name + ": No such device") ++failures;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_TRUE(list_links("kt-c").empty());
}

}  // namespace
}  // namespace kohaku::netlink
