// main() of the test binaries that touch the kernel (kernel_tests, api_tests): moves the process
// into a private mount namespace and every test into a fresh network namespace (with that
// namespace's /sys and its own bpffs), so neither the tests nor the daemons they start can reach
// the root namespace's links, addresses, routes, firewall or BPF pins, nor each other's.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "common/netlink/link.h"

namespace {

bool only_listing(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string_view(argv[i]).starts_with("--gtest_list_tests")) return true;
  }
  return false;
}

// unshare(flag) for the calling thread; a failure (the suites need root) is reported as `what`.
bool unshare_or_report(int flag, const char* what) {
  if (::unshare(flag) == 0) return true;
  std::fprintf(stderr, "isolated test main: unshare(%s): %s (needs root)\n", what,
               std::strerror(errno));
  return false;
}

// A fresh network namespace for the calling thread, with a /sys that shows its links and a
// bpffs of its own on /sys/fs/bpf. Needs the private mount namespace made by isolate().
bool fresh_network_namespace() {
  if (!unshare_or_report(CLONE_NEWNET, "CLONE_NEWNET")) return false;
  // A sysfs mounted from inside the new namespace shows its links under /sys/class/net. bpffs
  // goes on top so BPF suites pin into a tree private to this namespace.
  if (::umount2("/sys", MNT_DETACH) != 0 ||
      ::mount("sysfs", "/sys", "sysfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, nullptr) != 0) {
    std::fprintf(stderr, "isolated test main: remount /sys: %s\n", std::strerror(errno));
    return false;
  }
  if (::mount("bpffs", "/sys/fs/bpf", "bpf", 0, nullptr) != 0) {
    std::fprintf(stderr, "isolated test main: warning: mount bpffs: %s\n", std::strerror(errno));
  }
  kohaku::netlink::set_link_up("lo");
  return true;
}

bool isolate() {
  if (!unshare_or_report(CLONE_NEWNS, "CLONE_NEWNS")) return false;
  // Keep our mounts from propagating back to the host's mount namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::fprintf(stderr, "isolated test main: make / private: %s\n", std::strerror(errno));
    return false;
  }
  return fresh_network_namespace();
}

// Every test starts in a namespace of its own, as it does when ctest runs one test per process:
// devices and pins a test's daemons leave behind (a hub recovers vxkr devices and adopts pins
// on start) never reach the next test when the whole binary runs at once.
class FreshNamespacePerTest : public testing::EmptyTestEventListener {
  void OnTestStart(const testing::TestInfo& test) override {
    if (!fresh_network_namespace())
      std::fprintf(stderr, "isolated test main: %s.%s shares the previous test's namespace\n",
                   test.test_suite_name(), test.name());
  }
};

}  // namespace

int main(int argc, char** argv) {
  // gtest_discover_tests lists tests at build time, possibly without root: no namespaces then.
  bool listing = only_listing(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  if (!listing) {
    if (!isolate()) return 1;
    // The daemons the tests start must never reach a firewalld of this machine's system bus
    // (common/firewalld.h): that is the root namespace's firewall. A bus that does not exist
    // is "firewalld not running"; tests of firewalld start their own bus and point at it.
    ::setenv("DBUS_SYSTEM_BUS_ADDRESS", "unix:path=/nonexistent/kohaku-tests-no-system-bus", 0);
    testing::UnitTest::GetInstance()->listeners().Append(new FreshNamespacePerTest);
  }
  return RUN_ALL_TESTS();
}
