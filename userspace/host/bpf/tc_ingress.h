#pragma once
// Our one filter on a device's clsact ingress hook, identified by a fixed handle and priority.
#include <cstdint>
#include <optional>

namespace kohaku::bpf {

struct TcFilterId {
  uint32_t handle;
  uint32_t priority;
};

// Creates the clsact hook when missing (an existing one, with other tools' filters, is kept) and
// attaches prog_fd as filter `id`, atomically replacing the program a previous attach left there.
// Throws std::system_error naming the device.
void tc_ingress_attach(int ifindex, int prog_fd, TcFilterId id);

// Removes filter `id` only; the clsact hook and other filters stay. False when it was not there
// (or the device is gone); throws on other errors.
bool tc_ingress_detach(int ifindex, TcFilterId id);

// Id of the program attached as filter `id`, or nullopt when none.
std::optional<uint32_t> tc_ingress_program_id(int ifindex, TcFilterId id);

}  // namespace kohaku::bpf
