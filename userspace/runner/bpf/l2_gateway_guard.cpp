#include "runner/bpf/l2_gateway_guard.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "common/bpf/map_io.h"
#include "common/bpf/pinned_skeleton.h"
#include "l2_gateway_guard.skel.h"

namespace kohaku::runner {
namespace {

constexpr const char* kProgramPin = "gateway_guard";

}  // namespace

L2GatewayGuard::L2GatewayGuard() = default;
L2GatewayGuard::~L2GatewayGuard() = default;

std::unique_ptr<L2GatewayGuard> L2GatewayGuard::open(const std::string& pin_root) {
  std::unique_ptr<L2GatewayGuard> g(new L2GatewayGuard());
  if (!pin_root.empty()) g->pin_dir_ = pin_dir_below(pin_root, pin_dirs::kL2);
  // Its maps are derived state: entries of a map with another layout come back with the next
  // sync where they cannot be carried over.
  g->skel_ = std::make_unique<Skeleton>(KOHAKU_SKELETON(l2_gateway_guard),
                                        bpf::PinPlan{g->pin_dir_, "bpf-l2-guard"});
  g->program_id_ = bpf::program_id(g->program_fd(), "l2_gateway_guard");
  g->skel_->pin_program((*g->skel_)->progs.l2_gateway_guard, kProgramPin);
  return g;
}

int L2GatewayGuard::program_fd() const {
  return bpf_program__fd((*skel_)->progs.l2_gateway_guard);
}

int L2GatewayGuard::map_fd(const char* name) const {
  return bpf::map_fd(skel_->obj(), name);
}

void L2GatewayGuard::sync(const std::map<int, L2Gateway>& by_ifindex) {
  const int fd = map_fd("l2_gateways");
  for (const auto& [ifindex, _] : entries()) {
    if (by_ifindex.count(ifindex)) continue;
    l2_gateway_key key{static_cast<uint32_t>(ifindex)};
    bpf::map_erase(fd, &key, "l2_gateways");
  }
  for (const auto& [ifindex, gw] : by_ifindex) {
    l2_gateway_key key{static_cast<uint32_t>(ifindex)};
    l2_gateway value{};
    const uint32_t addr = gw.address.value;  // host order
    for (int i = 0; i < 4; ++i) value.addr[i] = static_cast<uint8_t>(addr >> (24 - 8 * i));
    std::memcpy(value.mac, gw.mac.bytes.data(), 6);
    bpf::map_update(fd, &key, &value, "l2_gateways");
    // Entry first, then the filter: a guard without its entry would pass everything anyway.
    // Called on every heartbeat: replace the filter only when it is not ours already.
    if (tc_attached_program(ifindex, TcDirection::kEgress, kL2GuardTcFilter) != program_id_)
      tc_attach(ifindex, TcDirection::kEgress, kL2GuardTcFilter, program_fd());
  }
}

std::map<int, L2Gateway> L2GatewayGuard::entries() const {
  std::map<int, L2Gateway> out;
  for (const auto& [key, value] :
       bpf::map_entries<l2_gateway_key, l2_gateway>(map_fd("l2_gateways"))) {
    L2Gateway gw;
    gw.address = Ipv4Addr{static_cast<uint32_t>(value.addr[0]) << 24 |
                          static_cast<uint32_t>(value.addr[1]) << 16 |
                          static_cast<uint32_t>(value.addr[2]) << 8 | value.addr[3]};
    std::memcpy(gw.mac.bytes.data(), value.mac, 6);
    out[static_cast<int>(key.ifindex)] = gw;
  }
  return out;
}

l2_guard_stats L2GatewayGuard::counters() const {
  return bpf::percpu_sum_single<l2_guard_stats>(map_fd("l2_guard_stats"), "l2_guard_stats");
}

}  // namespace kohaku::runner
