// bench_nat_attach: the runner's masquerade programs (RunnerDatapath, unpinned) attached to an
// uplink of the calling network namespace for a NAT benchmark, until SIGTERM/SIGINT. This stands
// in for kohaku-runnerd until the daemon drives the programs itself.
//
//   bench_nat_attach --dev eth0 --uplink A.B.C.D --overlay 10.0.0.0/8
//
// Prints "attached" once the filters are in place; on exit detaches them and prints the
// program counters (so the harness can check the packets really went through translation).
#include <signal.h>

#include <cstdio>
#include <cstring>
#include <stdexcept>
#include <string>

#include "bench_cli.h"
#include "bench_skeleton.h"
#include "runner/bpf/runner_datapath.h"

int main(int argc, char** argv) {
  std::string dev, uplink, overlay = "10.0.0.0/8";
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--dev")
      dev = v;
    else if (k == "--uplink")
      uplink = v;
    else if (k == "--overlay")
      overlay = v;
  }
  if (dev.empty() || uplink.empty()) {
    std::fprintf(stderr, "usage: bench_nat_attach --dev IF --uplink ADDR [--overlay CIDR]\n");
    return 2;
  }
  return kohaku::bench::report_failures("bench_nat_attach", [&] {
    // Block the stop signals first so they are only ever taken by sigwait below.
    sigset_t stop;
    sigemptyset(&stop);
    sigaddset(&stop, SIGTERM);
    sigaddset(&stop, SIGINT);
    pthread_sigmask(SIG_BLOCK, &stop, nullptr);

    const int ifindex = kohaku::bench::device_ifindex(dev);
    auto dp =
        kohaku::runner::RunnerDatapath::open({.pin_root = "", .conntrack_max_entries = 262144});
    kohaku::runner::NatConfig config;
    config.overlay = kohaku::Ipv4Cidr::parse(overlay);
    config.uplink = kohaku::Ipv4Addr::parse(uplink);
    dp->configure(config);
    dp->attach_uplink(ifindex);
    std::printf("attached\n");
    std::fflush(stdout);

    int sig = 0;
    sigwait(&stop, &sig);
    dp->detach_uplink(ifindex);
    for (const auto& [name, value] : kohaku::runner::RunnerDatapath::named_counters(dp->counters()))
      if (value) std::printf("%s=%llu\n", name.c_str(), static_cast<unsigned long long>(value));
    return 0;
  });
}
