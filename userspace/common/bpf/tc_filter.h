#pragma once
// A BPF program as a TC (clsact) filter on one device and direction, identified by a fixed
// handle and priority so a restarted daemon replaces its own filter atomically and never
// touches another tool's. The clsact qdisc is created when missing and never destroyed:
// destroying it would remove every other filter on the device too.
#include <cstdint>
#include <optional>
#include <string>

namespace kohaku {

enum class TcDirection { kIngress, kEgress };

struct TcFilterId {
  uint32_t handle;
  uint32_t priority;
};

// Attaches (or atomically replaces) the filter. Throws std::system_error naming the device.
void tc_attach(int ifindex, TcDirection direction, TcFilterId id, int prog_fd);
// Removes the filter; false when it was not there (or the device is gone). Throws on other errors.
bool tc_detach(int ifindex, TcDirection direction, TcFilterId id);
// The id of the program currently attached as this filter, if any.
std::optional<uint32_t> tc_attached_program(int ifindex, TcDirection direction, TcFilterId id);

std::string to_string(TcDirection direction);

}  // namespace kohaku
