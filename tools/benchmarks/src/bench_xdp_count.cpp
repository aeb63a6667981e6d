// bench_xdp_count: attaches tools/bench's XDP counter (bench_xdp_count.bpf.c) in native mode to a
// device of the calling network namespace, waits out a warm-up, then counts the frames it drops
// over a measured window and prints the rate. The program is detached on every exit path.
//
//   bench_xdp_count --dev eth0 [--udp-port 4789] [--saddr A.B.C.D] [--warmup 0.5] [--seconds 3]
//                   [--snmp-pid PID]
//
// Output (one line): matched_pps=<n> matched=<n> other_saddr=<n> passed=<n> window_s=<s>
// With --snmp-pid, also ip_forwarded=<n>: the IpForwDatagrams delta of PID's network namespace
// (/proc/PID/net/snmp) over the same window, read at the same instants as the counters, so the
// harness can tell which share of the counted packets the kernel's IP forwarding handled.
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "bench_cli.h"
#include "bench_skeleton.h"
#include "bench_xdp_count.skel.h"

namespace {

struct Args {
  std::string dev;
  uint16_t udp_port = 0;
  uint32_t saddr = 0;  // network order
  double warmup = 0.5;
  double seconds = 3;
  long snmp_pid = 0;
};

Args parse(int argc, char** argv) {
  Args a;
  for (const auto& [k, v] : kohaku::bench::option_pairs(argc, argv)) {
    if (k == "--dev") {
      a.dev = v;
    } else if (k == "--udp-port") {
      a.udp_port = static_cast<uint16_t>(std::stoul(v));
    } else if (k == "--saddr") {
      in_addr in{};
      if (inet_pton(AF_INET, v.c_str(), &in) != 1)
        throw std::invalid_argument("--saddr: not an IPv4 address: " + v);
      a.saddr = in.s_addr;
    } else if (k == "--warmup") {
      a.warmup = std::stod(v);
    } else if (k == "--seconds") {
      a.seconds = std::stod(v);
    } else if (k == "--snmp-pid") {
      a.snmp_pid = std::stol(v);
    } else {
      throw std::invalid_argument("unknown option " + k);
    }
  }
  if (a.dev.empty()) throw std::invalid_argument("--dev is required");
  if (a.seconds <= 0) throw std::invalid_argument("--seconds must be positive");
  return a;
}

// Detaches the program from the device when the measurement ends, however it ends.
class XdpAttachment {
 public:
  XdpAttachment(int ifindex, int prog_fd) : ifindex_(ifindex) {
    if (int err = bpf_xdp_attach(ifindex, prog_fd, XDP_FLAGS_DRV_MODE, nullptr); err)
      throw std::runtime_error("native XDP attach to ifindex " + std::to_string(ifindex) + ": " +
                               std::strerror(-err));
  }
  ~XdpAttachment() { bpf_xdp_detach(ifindex_, XDP_FLAGS_DRV_MODE, nullptr); }
  XdpAttachment(const XdpAttachment&) = delete;
  XdpAttachment& operator=(const XdpAttachment&) = delete;

 private:
  int ifindex_;
};

struct Counts {
  uint64_t slot[3] = {0, 0, 0};
};

Counts read_counts(int map_fd) {
  int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) throw std::runtime_error("libbpf_num_possible_cpus failed");
  std::vector<uint64_t> values(static_cast<size_t>(ncpu));
  Counts c;
  for (uint32_t k = 0; k < 3; ++k) {
    if (bpf_map_lookup_elem(map_fd, &k, values.data()) != 0)
      throw std::runtime_error(std::string("reading bench_counts: ") + std::strerror(errno));
    for (uint64_t v : values) c.slot[k] += v;
  }
  return c;
}

// IpForwDatagrams of the network namespace of `pid`, found by its column name in the Ip: header.
uint64_t ip_forwarded(long pid) {
  std::string path = "/proc/" + std::to_string(pid) + "/net/snmp";
  std::ifstream in(path);
  std::string header, values;
  while (std::getline(in, header)) {
    if (!header.starts_with("Ip: ")) continue;
    if (!std::getline(in, values)) break;
    std::istringstream names(header), nums(values);
    std::string name, num;
    while (names >> name && nums >> num)
      if (name == "ForwDatagrams") return std::stoull(num);
  }
  throw std::runtime_error("no Ip ForwDatagrams in " + path);
}

int run(const Args& a) {
  const int ifindex = kohaku::bench::device_ifindex(a.dev);
  auto skel =
      kohaku::bench::open_skeleton(bench_xdp_count__open, bench_xdp_count__destroy, "XDP counter");
  skel->rodata->udp_port = a.udp_port;
  skel->rodata->want_saddr = a.saddr;
  kohaku::bench::load_skeleton(skel, bench_xdp_count__load, "XDP counter");
  int map_fd = bpf_map__fd(skel->maps.bench_counts);
  XdpAttachment attached(ifindex, bpf_program__fd(skel->progs.bench_xdp_count));

  using clock = std::chrono::steady_clock;
  std::this_thread::sleep_for(std::chrono::duration<double>(a.warmup));
  uint64_t fwd_before = a.snmp_pid ? ip_forwarded(a.snmp_pid) : 0;
  Counts before = read_counts(map_fd);
  auto t0 = clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(a.seconds));
  Counts after = read_counts(map_fd);
  uint64_t fwd_after = a.snmp_pid ? ip_forwarded(a.snmp_pid) : 0;
  double window = std::chrono::duration<double>(clock::now() - t0).count();

  uint64_t matched = after.slot[0] - before.slot[0];
  std::printf("matched_pps=%.0f matched=%llu other_saddr=%llu passed=%llu window_s=%.3f",
              static_cast<double>(matched) / window, static_cast<unsigned long long>(matched),
              static_cast<unsigned long long>(after.slot[1] - before.slot[1]),
              static_cast<unsigned long long>(after.slot[2] - before.slot[2]), window);
  if (a.snmp_pid)
    std::printf(" ip_forwarded=%llu", static_cast<unsigned long long>(fwd_after - fwd_before));
  std::printf("\n");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kohaku::bench::report_failures("bench_xdp_count", [&] { return run(parse(argc, argv)); });
}
