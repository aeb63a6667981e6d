#pragma once
// Test scaffolding of the host fast path tests: a private network namespace for the calling
// thread (the root namespace is never touched), shell commands run inside it, and the
// BPF_PROG_TEST_RUN call with the __sk_buff fields the program reads.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <string>
#include <system_error>

#include "packet.h"

namespace kohaku::test {

// Moves the calling thread into a fresh network namespace and back on destruction. Namespaces are
// per thread and inherited by children, so commands run from this thread see the new one; when
// the last reference goes the namespace and every device in it disappear.
class ScopedNetns {
 public:
  ScopedNetns() {
    saved_ = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (saved_ < 0) throw std::system_error(errno, std::generic_category(), "open own netns");
    if (::unshare(CLONE_NEWNET) != 0) {
      int err = errno;
      ::close(saved_);
      throw std::system_error(err, std::generic_category(), "unshare(CLONE_NEWNET)");
    }
  }
  ~ScopedNetns() {
    if (::setns(saved_, CLONE_NEWNET) != 0) std::perror("setns back to the original netns");
    ::close(saved_);
  }
  ScopedNetns(const ScopedNetns&) = delete;
  ScopedNetns& operator=(const ScopedNetns&) = delete;

 private:
  int saved_ = -1;
};

// Runs a shell command; returns its stdout, throws with the output when it exits non-zero.
inline std::string sh(const std::string& cmd) {
  std::string out;
  FILE* p = ::popen((cmd + " 2>&1").c_str(), "r");
  if (!p) throw std::system_error(errno, std::generic_category(), "popen " + cmd);
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  int status = ::pclose(p);
  if (status != 0)
    throw std::runtime_error("command failed (" + std::to_string(status) + "): " + cmd + "\n" +
                             out);
  return out;
}

// The calling thread's namespace's IpForwDatagrams: how many packets its kernel IP forwarding
// routed. A fast path test expects it to stay put while the BPF program carries the traffic.
inline uint64_t ip_forwarded_datagrams() {
  std::ifstream snmp("/proc/thread-self/net/snmp");
  std::string header, values;
  while (std::getline(snmp, header) && std::getline(snmp, values)) {
    if (header.rfind("Ip:", 0) != 0) continue;
    std::istringstream h(header), v(values);
    std::string name, value;
    while (h >> name && v >> value)
      if (name == "ForwDatagrams") return std::stoull(value);
  }
  throw std::runtime_error("no Ip ForwDatagrams in /proc/thread-self/net/snmp");
}

inline uint32_t ifindex_of(const std::string& name) {
  unsigned idx = if_nametoindex(name.c_str());
  if (idx == 0) throw std::system_error(errno, std::generic_category(), "if_nametoindex " + name);
  return idx;
}

struct RunResult {
  uint32_t retval = 0;
  pkt::Bytes out;
};

// One BPF_PROG_TEST_RUN of `frame` with the given context (an __sk_buff or an xdp_md), room for
// the program to grow the frame, and the verdict and bytes that came out.
template <typename Ctx>
RunResult prog_test_run(int prog_fd, const pkt::Bytes& frame, Ctx& ctx) {
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
  opts.repeat = 1;
  if (bpf_prog_test_run_opts(prog_fd, &opts) != 0)
    throw std::system_error(errno, std::generic_category(), "BPF_PROG_TEST_RUN");
  r.retval = opts.retval;
  r.out.resize(opts.data_size_out);
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
