#pragma once
// The devices a named L2 network has on a runner, shared by the L2 agent that creates them,
// the Docker networks built on them and the datapath that filters them (docs/l2-networks.md).
// Outside runner/l2/ so that the datapath needs only the names, not the agent.
#include <cstdint>
#include <string>

namespace kohaku::runner {

// "kbr-<name>", or "kb-" + the first 8 hex digits of sha256(name) when that would exceed 15.
std::string l2_bridge_name(const std::string& network);
std::string l2_vxlan_name(uint32_t vni);  // "vxlan<VNI>"
// A bridge name l2_bridge_name could have produced (for removing stale devices).
bool is_l2_bridge_name(const std::string& name);

}  // namespace kohaku::runner
