#pragma once
// A BPF program as a TC (clsact) filter on one device and direction, identified by a fixed
// handle and priority so a restarted daemon replaces its own filter atomically and never
// touches another tool's. The clsact qdisc is created when missing and never destroyed:
// destroying it would remove every other filter on the device too.
//
// Devices that all run the same program (the host's thousands of vxkr tunnels) can share TC
// blocks: their clsact qdiscs are created bound to one ingress and one egress block, and the one
// filter on the block serves every device bound to it. Besides attaching once instead of per
// device, this keeps clsact creation O(1): the kernel keeps every private block of a device
// without hardware offload in one global list that each new block walks (flow_indr_dev_setup_
// offload), which made the 4,000th tunnel's qdisc cost 4,000 steps. The kernel refuses filter
// changes through a device on a shared block ("This filter block is shared"), so attach and
// detach address the block itself; queries by device see the block's filters as before, and so
// does `tc filter show dev vxkr1 ingress`.
#include <cstdint>
#include <optional>
#include <string>

namespace kohaku {

enum class TcDirection { kIngress, kEgress };

struct TcFilterId {
  uint32_t handle;
  uint32_t priority;
};

// The TC blocks a clsact qdisc is created bound to; 0: a private block for that direction.
struct TcBlocks {
  uint32_t ingress = 0;
  uint32_t egress = 0;
};

// Attaches (or atomically replaces) the filter. A device without clsact gets one bound to
// `create_with` (private blocks by default); a device that has one keeps its blocks, so devices
// set up before blocks were shared go on working. On a shared block the filter is the block's,
// serving every device bound to it. Throws netlink::NetlinkError naming the device (and the
// kernel's extack message).
void tc_attach(int ifindex, TcDirection direction, TcFilterId id, int prog_fd,
               TcBlocks create_with = {});
// Attaches unless the filter already runs this very program; true when it attached. A re-attach
// every reconcile pass would be harmless but noisy in `tc monitor`.
bool tc_ensure_attached(int ifindex, TcDirection direction, TcFilterId id, int prog_fd,
                        TcBlocks create_with = {});
// Removes the filter (on a shared block: from the block, so from every device bound to it);
// false when it was not there (or the device is gone). Throws on other errors.
bool tc_detach(int ifindex, TcDirection direction, TcFilterId id);
// The id of the program currently attached as this filter, if any.
std::optional<uint32_t> tc_attached_program(int ifindex, TcDirection direction, TcFilterId id);
// The block the device's clsact hook for `direction` is bound to when it is a shared one.
std::optional<uint32_t> tc_shared_block(int ifindex, TcDirection direction);

std::string to_string(TcDirection direction);

}  // namespace kohaku
