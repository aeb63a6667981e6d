#pragma once
// BPF_PROG_TEST_RUN for the BPF tests, the fuzz targets and tools/benchmarks' bench_prog_cost: one
// frame through a program with the context it reads (an __sk_buff or an xdp_md), and the verdict
// and bytes that came out.
#include <bpf/bpf.h>
#include <linux/bpf.h>

#include <cerrno>
#include <cstdint>
#include <optional>
#include <system_error>

#include "packet.h"

namespace kohaku::test {

struct RunResult {
  uint32_t retval = 0;
  pkt::Bytes out;
  uint32_t ns = 0;  // mean duration of one repetition, as the kernel reports it
};

// One BPF_PROG_TEST_RUN of `frame` with the given context (an __sk_buff or an xdp_md), room for
// the program to grow the frame, and the verdict and bytes that came out (of the last of
// `repeat` runs: the benchmark times many).
template <typename Ctx>
RunResult prog_test_run(int prog_fd, const pkt::Bytes& frame, Ctx& ctx, uint32_t repeat = 1) {
  RunResult r;
  r.out.resize(frame.size() + 256);
  bpf_test_run_opts opts{};
  opts.sz = sizeof(opts);
  opts.data_in = frame.data();
  opts.data_size_in = static_cast<uint32_t>(frame.size());
  opts.data_out = r.out.data();
  opts.data_size_out = static_cast<uint32_t>(r.out.size());
  opts.ctx_in = &ctx;
  opts.ctx_size_in = sizeof(ctx);
  opts.repeat = repeat;
  if (bpf_prog_test_run_opts(prog_fd, &opts) != 0)
    throw std::system_error(errno, std::generic_category(), "BPF_PROG_TEST_RUN");
  r.retval = opts.retval;
  r.out.resize(opts.data_size_out);
  r.ns = opts.duration;
  return r;
}

// A TC program as if `frame` arrived on device `ifindex`, which must exist in the thread's
// namespace. `ingress_ifindex` overrides the ingress index the program sees (then the skb is on
// loopback), for tests that need no devices.
inline RunResult test_run(int prog_fd, const pkt::Bytes& frame, uint32_t ifindex,
                          std::optional<uint32_t> ingress_ifindex = std::nullopt) {
  __sk_buff ctx{};
  ctx.ifindex = ingress_ifindex ? 1 : ifindex;
  ctx.ingress_ifindex = ingress_ifindex.value_or(ifindex);
  return prog_test_run(prog_fd, frame, ctx);
}

// An XDP program as if `frame` arrived on device `ifindex` (its receive queue 0).
inline RunResult test_run_xdp(int prog_fd, const pkt::Bytes& frame, uint32_t ifindex) {
  xdp_md ctx{};
  ctx.data_end = static_cast<uint32_t>(frame.size());
  ctx.ingress_ifindex = ifindex;
  return prog_test_run(prog_fd, frame, ctx);
}

}  // namespace kohaku::test
