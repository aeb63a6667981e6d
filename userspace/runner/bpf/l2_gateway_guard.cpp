#include "runner/bpf/l2_gateway_guard.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "common/bpf/bpffs.h"
#include "l2_gateway_guard.skel.h"

namespace kohaku::runner {
namespace {

constexpr const char* kMaps[] = {"l2_gateways", "l2_guard_stats"};
constexpr const char* kProgramPin = "gateway_guard";

[[noreturn]] void fail(const std::string& what, int err) {
  throw std::runtime_error(what + ": " + std::strerror(err < 0 ? -err : err));
}

bpf_map* find_map(bpf_object* obj, const char* name) {
  bpf_map* m = bpf_object__find_map_by_name(obj, name);
  if (!m) throw std::runtime_error(std::string("BPF object lacks map ") + name);
  return m;
}

// A pinned map libbpf cannot reuse (another layout from an older build) is unpinned, so the
// load creates a fresh one; its entries are derived state and come back with the next sync.
void unpin_if_other_shape(const std::string& path, const bpf_map* want) {
  int fd = bpf_obj_get(path.c_str());
  if (fd < 0) {
    if (errno == ENOENT) return;
    fail("opening pinned map " + path, errno);
  }
  bpf_map_info info{};
  uint32_t len = sizeof(info);
  int err = bpf_obj_get_info_by_fd(fd, &info, &len) ? errno : 0;
  ::close(fd);
  if (err) fail("inspecting pinned map " + path, err);
  bool same =
      info.type == static_cast<uint32_t>(bpf_map__type(want)) &&
      info.key_size == bpf_map__key_size(want) && info.value_size == bpf_map__value_size(want) &&
      info.max_entries == bpf_map__max_entries(want) && info.map_flags == bpf_map__map_flags(want);
  if (!same && ::unlink(path.c_str()) != 0) fail("unpinning outdated map " + path, errno);
}

}  // namespace

void L2GatewayGuard::Deleter::operator()(l2_gateway_guard* s) const {
  l2_gateway_guard__destroy(s);
}

L2GatewayGuard::~L2GatewayGuard() = default;

std::unique_ptr<L2GatewayGuard> L2GatewayGuard::open(const std::string& pin_root) {
  std::unique_ptr<L2GatewayGuard> g(new L2GatewayGuard());
  g->skel_.reset(l2_gateway_guard__open());
  if (!g->skel_) fail("opening BPF object l2_gateway_guard", errno);
  if (!pin_root.empty()) {
    g->pin_dir_ = pin_root + "/l2";
    bpf::ensure_bpffs_dir(g->pin_dir_);  // a runner-only machine may have no bpffs mounted yet
    for (const char* name : kMaps) {
      const std::string path = g->pin_dir_ + "/" + name;
      bpf_map* m = find_map(g->skel_->obj, name);
      unpin_if_other_shape(path, m);
      if (int err = bpf_map__set_pin_path(m, path.c_str())) fail("setting pin path " + path, err);
    }
  }
  if (int err = l2_gateway_guard__load(g->skel_.get()))
    fail("loading BPF object l2_gateway_guard", err);
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(g->program_fd(), &info, &len) != 0)
    fail("inspecting program l2_gateway_guard", errno);
  g->program_id_ = info.id;
  if (!g->pin_dir_.empty()) {
    const std::string path = g->pin_dir_ + "/" + kProgramPin;
    ::unlink(path.c_str());
    if (int err = bpf_program__pin(g->skel_->progs.l2_gateway_guard, path.c_str()))
      fail("pinning program at " + path, err);
  }
  return g;
}

int L2GatewayGuard::program_fd() const {
  return bpf_program__fd(skel_->progs.l2_gateway_guard);
}

int L2GatewayGuard::map_fd(const char* name) const {
  return bpf_map__fd(find_map(skel_->obj, name));
}

void L2GatewayGuard::sync(const std::map<int, L2Gateway>& by_ifindex) {
  const int fd = map_fd("l2_gateways");
  for (const auto& [ifindex, _] : entries()) {
    if (by_ifindex.count(ifindex)) continue;
    l2_gateway_key key{static_cast<uint32_t>(ifindex)};
    if (bpf_map_delete_elem(fd, &key) != 0 && errno != ENOENT)
      fail("removing ifindex " + std::to_string(ifindex) + " from l2_gateways", errno);
  }
  for (const auto& [ifindex, gw] : by_ifindex) {
    l2_gateway_key key{static_cast<uint32_t>(ifindex)};
    l2_gateway value{};
    const uint32_t addr = gw.address.value;  // host order
    for (int i = 0; i < 4; ++i) value.addr[i] = static_cast<uint8_t>(addr >> (24 - 8 * i));
    std::memcpy(value.mac, gw.mac.bytes.data(), 6);
    if (bpf_map_update_elem(fd, &key, &value, BPF_ANY) != 0)
      fail("writing the gateway of ifindex " + std::to_string(ifindex) + " to l2_gateways", errno);
    // Entry first, then the filter: a guard without its entry would pass everything anyway.
    // Called on every heartbeat: replace the filter only when it is not ours already.
    if (tc_attached_program(ifindex, TcDirection::kEgress, kL2GuardTcFilter) != program_id_)
      tc_attach(ifindex, TcDirection::kEgress, kL2GuardTcFilter, program_fd());
  }
}

std::map<int, L2Gateway> L2GatewayGuard::entries() const {
  std::map<int, L2Gateway> out;
  const int fd = map_fd("l2_gateways");
  l2_gateway_key key{}, next{};
  const void* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    l2_gateway value{};
    if (bpf_map_lookup_elem(fd, &next, &value) == 0) {
      L2Gateway gw;
      gw.address = Ipv4Addr{static_cast<uint32_t>(value.addr[0]) << 24 |
                            static_cast<uint32_t>(value.addr[1]) << 16 |
                            static_cast<uint32_t>(value.addr[2]) << 8 | value.addr[3]};
      std::memcpy(gw.mac.bytes.data(), value.mac, 6);
      out[static_cast<int>(next.ifindex)] = gw;
    }
    key = next;
    prev = &key;
  }
  return out;
}

l2_guard_stats L2GatewayGuard::counters() const {
  const int ncpu = libbpf_num_possible_cpus();
  if (ncpu <= 0) fail("counting possible CPUs", ncpu);
  std::vector<l2_guard_stats> per_cpu(static_cast<size_t>(ncpu));
  uint32_t zero = 0;
  if (bpf_map_lookup_elem(map_fd("l2_guard_stats"), &zero, per_cpu.data()) != 0)
    fail("reading l2_guard_stats", errno);
  l2_guard_stats sum{};
  for (const auto& s : per_cpu) {
    sum.gateway_arp_kept_local += s.gateway_arp_kept_local;
    sum.gateway_floods_kept_local += s.gateway_floods_kept_local;
    sum.passed += s.passed;
  }
  return sum;
}

}  // namespace kohaku::runner
