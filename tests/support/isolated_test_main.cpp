// main() of the test binaries that touch the kernel (kernel_tests, api_tests): moves the whole
// process into a fresh network namespace (and a private mount namespace with that namespace's
// /sys and its own bpffs) before any test runs, so neither the tests nor the daemons they start
// can reach the root namespace's links, addresses, routes, firewall or BPF pins.
#include <gtest/gtest.h>
#include <sched.h>
#include <sys/mount.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
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

bool isolate() {
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) {
    std::fprintf(stderr, "isolated test main: unshare(CLONE_NEWNET|CLONE_NEWNS): %s (needs root)\n",
                 std::strerror(errno));
    return false;
  }
  // Keep our mounts from propagating back to the host's mount namespace.
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) {
    std::fprintf(stderr, "isolated test main: make / private: %s\n", std::strerror(errno));
    return false;
  }
  // A sysfs mounted from inside the new namespace shows its links under /sys/class/net. bpffs
  // goes on top so BPF suites pin into a tree private to this process.
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

}  // namespace

int main(int argc, char** argv) {
  // gtest_discover_tests lists tests at build time, possibly without root: no namespaces then.
  bool listing = only_listing(argc, argv);
  testing::InitGoogleTest(&argc, argv);
  if (!listing && !isolate()) return 1;
  return RUN_ALL_TESTS();
}
