// bench_bounce: attaches tools/bench's bounce instrument (bench_bounce.bpf.c) to the hub's uplink
// for a fixed time, in native XDP (--hook xdp) or on the TC ingress (--hook tc), then detaches it.
// The harness counts what arrives at r2 meanwhile (bench_xdp_count): the testbed's forwarding
// limit at the hub through that hook. --hook route does the same for a runner: on the TC ingress
// of a workload's veth (--dev), out of the uplink (--out-dev) with the uplink's address.
//
//   bench_bounce --hook xdp|tc --dev eth0 --out-dmac MAC --out-smac MAC --inner-dmac MAC
//                --inner-smac MAC --src-ip A.B.C.D --dst-ip A.B.C.D --vni N --seconds S
//   bench_bounce --hook route --dev VETH --out-dev eth0 --out-dmac MAC --out-smac MAC
//                --src-ip A.B.C.D --seconds S
#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <thread>

#include "bench_bounce.skel.h"
#include "bench_cli.h"
#include "bench_skeleton.h"

namespace {

struct Args {
  std::string hook = "xdp";
  std::string dev;
  std::string out_dev;  // route
  uint8_t out_dmac[6] = {}, out_smac[6] = {}, inner_dmac[6] = {}, inner_smac[6] = {};
  uint32_t src_ip = 0, dst_ip = 0;  // network order
  uint32_t vni = 0;
  double seconds = 3;
};

void parse_mac(const std::string& text, uint8_t out[6]) {
  unsigned b[6];
  char tail;
  if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x%c", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5],
                  &tail) != 6)
    throw std::invalid_argument("not a MAC address: " + text);
  for (int i = 0; i < 6; ++i) out[i] = static_cast<uint8_t>(b[i]);
}

uint32_t parse_ip(const std::string& text) {
  in_addr in{};
  if (inet_pton(AF_INET, text.c_str(), &in) != 1)
    throw std::invalid_argument("not an IPv4 address: " + text);
  return in.s_addr;
}

Args parse(int argc, char** argv) {
  Args a;
  for (const auto& [k, v] : kohaku::bench::option_pairs(argc, argv)) {
    if (k == "--dev")
      a.dev = v;
    else if (k == "--hook")
      a.hook = v;
    else if (k == "--out-dev")
      a.out_dev = v;
    else if (k == "--out-dmac")
      parse_mac(v, a.out_dmac);
    else if (k == "--out-smac")
      parse_mac(v, a.out_smac);
    else if (k == "--inner-dmac")
      parse_mac(v, a.inner_dmac);
    else if (k == "--inner-smac")
      parse_mac(v, a.inner_smac);
    else if (k == "--src-ip")
      a.src_ip = parse_ip(v);
    else if (k == "--dst-ip")
      a.dst_ip = parse_ip(v);
    else if (k == "--vni")
      a.vni = static_cast<uint32_t>(std::stoul(v));
    else if (k == "--seconds")
      a.seconds = std::stod(v);
    else
      throw std::invalid_argument("unknown option " + k);
  }
  if (a.hook != "xdp" && a.hook != "tc" && a.hook != "route")
    throw std::invalid_argument("--hook is xdp, tc or route, not " + a.hook);
  if (a.hook == "route" && (a.dev.empty() || a.out_dev.empty() || !a.src_ip))
    throw std::invalid_argument("--hook route needs --dev, --out-dev and --src-ip");
  if (a.hook != "route" && (a.dev.empty() || !a.src_ip || !a.dst_ip || !a.vni))
    throw std::invalid_argument("--dev, --src-ip, --dst-ip and --vni are required");
  return a;
}

// One line on stdout once the bounce is in place: the harness starts the generator on it.
void attached() {
  std::puts("attached");
  std::fflush(stdout);
}

int run(const Args& a) {
  const int ifindex = kohaku::bench::device_ifindex(a.dev);
  auto skel = kohaku::bench::open_skeleton(bench_bounce__open, bench_bounce__destroy, "bounce");
  std::memcpy(const_cast<uint8_t*>(skel->rodata->out_dmac), a.out_dmac, 6);
  std::memcpy(const_cast<uint8_t*>(skel->rodata->out_smac), a.out_smac, 6);
  std::memcpy(const_cast<uint8_t*>(skel->rodata->inner_dmac), a.inner_dmac, 6);
  std::memcpy(const_cast<uint8_t*>(skel->rodata->inner_smac), a.inner_smac, 6);
  skel->rodata->src_ip = a.src_ip;
  skel->rodata->dst_ip = a.dst_ip;
  skel->rodata->vni_word = htonl(a.vni << 8);
  if (a.hook == "route") skel->rodata->out_ifindex = kohaku::bench::device_ifindex(a.out_dev);
  kohaku::bench::load_skeleton(skel, bench_bounce__load, "bounce");
  const auto hold = std::chrono::duration<double>(a.seconds);
  if (a.hook == "xdp") {
    if (int err = bpf_xdp_attach(ifindex, bpf_program__fd(skel->progs.bench_xdp_bounce),
                                 XDP_FLAGS_DRV_MODE, nullptr);
        err)
      throw std::runtime_error("native XDP attach to " + a.dev + ": " + std::strerror(-err));
    attached();
    std::this_thread::sleep_for(hold);
    bpf_xdp_detach(ifindex, XDP_FLAGS_DRV_MODE, nullptr);
    return 0;
  }
  // TC: the device may already carry a clsact qdisc and our filter (the hub's express stage on
  // its uplink, runner_workload on a workload's veth; priority 1); a filter added at the same
  // priority runs before the ones already there, and only the qdisc this tool created is removed
  // again.
  LIBBPF_OPTS(bpf_tc_hook, hook, .ifindex = ifindex, .attach_point = BPF_TC_INGRESS);
  // An existing clsact is fine (EEXIST); libbpf would print the kernel's "Exclusivity flag on"
  // for it, which reads like a failure in the bench's log.
  auto print = libbpf_set_print(nullptr);
  int err = bpf_tc_hook_create(&hook);
  libbpf_set_print(print);
  const bool created = err == 0;
  if (err && err != -EEXIST)
    throw std::runtime_error("clsact on " + a.dev + ": " + std::strerror(-err));
  const int prog =
      bpf_program__fd(a.hook == "route" ? skel->progs.bench_tc_route : skel->progs.bench_tc_bounce);
  LIBBPF_OPTS(bpf_tc_opts, opts, .prog_fd = prog, .handle = 0x4242, .priority = 1);
  if ((err = bpf_tc_attach(&hook, &opts)))
    throw std::runtime_error("TC ingress attach to " + a.dev + ": " + std::strerror(-err));
  attached();
  std::this_thread::sleep_for(hold);
  opts.prog_fd = 0;
  opts.prog_id = 0;
  opts.flags = 0;
  bpf_tc_detach(&hook, &opts);
  if (created) bpf_tc_hook_destroy(&hook);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kohaku::bench::report_failures("bench_bounce", [&] { return run(parse(argc, argv)); });
}
