#pragma once
// Test scaffolding of the host fast path tests: a private network namespace for the calling
// thread (the root namespace is never touched), shell commands run inside it, and the hub's
// devices; BPF_PROG_TEST_RUN itself is in prog_run.h. Free of gtest, so the fuzz targets and
// tools/benchmarks' bench_prog_cost build the same devices.
#include <bpf/bpf.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <net/if.h>
#include <sched.h>
#include <sys/mount.h>
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

#include "common/bpf/bpffs.h"
#include "packet.h"
#include "prog_run.h"

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

// A bpffs of its own on a fresh temporary directory (not below /sys/fs/bpf, so mounted right
// there), for tests of pinning and adoption; unmounted and removed on destruction.
class ScopedBpffs {
 public:
  explicit ScopedBpffs(const std::string& prefix = "kohaku-bpffs") {
    std::string tmpl = "/tmp/" + prefix + "-XXXXXX";
    if (::mkdtemp(tmpl.data()) == nullptr)
      throw std::system_error(errno, std::generic_category(), "mkdtemp " + tmpl);
    path_ = tmpl;
    if (bpf::is_on_bpffs(path_)) throw std::runtime_error(path_ + " is on a bpffs already");
    bpf::ensure_bpffs_dir(path_);
  }
  ~ScopedBpffs() {
    ::umount2(path_.c_str(), MNT_DETACH);
    ::rmdir(path_.c_str());
  }
  ScopedBpffs(const ScopedBpffs&) = delete;
  ScopedBpffs& operator=(const ScopedBpffs&) = delete;

  const std::string& path() const { return path_; }

 private:
  std::string path_;
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

// Two runner tunnels as the host fast path sees them, in the calling thread's namespace: veths
// vxa and vxb (host sides 02:..:0N:fe, runner sides 02:..:0N:01, MTU 1450) holding 10.N.0.254/16,
// lo up, neighbour 10.2.0.5 (02:..:02:05) behind vxb, and forwarding on.
struct TwoTunnels {
  uint32_t vxa = 0, vxb = 0;
};

inline TwoTunnels make_two_tunnels() {
  sh("ip link set lo up");
  sh("ip link add vxa address 02:00:00:00:01:fe mtu 1450 type veth peer name vxa-peer "
     "address 02:00:00:00:01:01 mtu 1450");
  sh("ip link add vxb address 02:00:00:00:02:fe mtu 1450 type veth peer name vxb-peer "
     "address 02:00:00:00:02:01 mtu 1450");
  for (const char* dev : {"vxa", "vxa-peer", "vxb", "vxb-peer"})
    sh(std::string("ip link set ") + dev + " up");
  sh("ip addr add 10.1.0.254/16 dev vxa");
  sh("ip addr add 10.2.0.254/16 dev vxb");
  sh("ip neigh replace 10.2.0.5 lladdr 02:00:00:00:02:05 dev vxb nud permanent");
  sh("echo 1 > /proc/sys/net/ipv4/conf/all/forwarding");
  return {ifindex_of("vxa"), ifindex_of("vxb")};
}

// The hub's uplink up0 (02:..:aa:01, 198.18.0.1/24) in the calling thread's namespace, with
// permanent neighbours for runners 1 and 2 (198.18.0.11/.12); returns its ifindex.
inline uint32_t make_hub_uplink() {
  sh("ip link set lo up");
  sh("ip link add up0 address 02:00:00:00:aa:01 type veth peer name up0-peer");
  sh("ip link set up0 up && ip link set up0-peer up && ip addr add 198.18.0.1/24 dev up0");
  sh("ip neigh replace 198.18.0.11 lladdr 02:00:00:00:aa:11 dev up0 nud permanent");
  sh("ip neigh replace 198.18.0.12 lladdr 02:00:00:00:aa:12 dev up0 nud permanent");
  return ifindex_of("up0");
}

// The hub of the express tests, in the calling thread's namespace: the uplink above (runner 3's
// .13 stays unresolved), and tunnels vx1..vx3 (veths, 02:..:0N:fe, 10.N.0.254/16, forwarding
// on as hostd sets it) with neighbours 10.2.0.5 and 10.3.0.5 behind vx2 and vx3.
struct HubDevices {
  uint32_t uplink = 0;
  uint32_t tunnel[4] = {};  // by runner id 1..3
};

inline HubDevices make_hub_devices() {
  HubDevices d;
  d.uplink = make_hub_uplink();
  for (int i = 1; i <= 3; ++i) {
    const std::string n = std::to_string(i);
    sh("ip link add vx" + n + " address 02:00:00:00:0" + n + ":fe mtu 1450 type veth peer name vx" +
       n + "-peer mtu 1450");
    sh("ip link set vx" + n + " up && ip link set vx" + n + "-peer up");
    sh("ip addr add 10." + n + ".0.254/16 dev vx" + n);
    // The kernel path needs forwarding on the tunnels (hostd enables it per device); the
    // uplink keeps it off, as on a real host.
    sh("echo 1 > /proc/sys/net/ipv4/conf/vx" + n + "/forwarding");
    d.tunnel[i] = ifindex_of("vx" + n);
  }
  sh("ip neigh replace 10.2.0.5 lladdr 02:00:00:00:02:05 dev vx2 nud permanent");
  sh("ip neigh replace 10.3.0.5 lladdr 02:00:00:00:03:05 dev vx3 nud permanent");
  return d;
}

}  // namespace kohaku::test
