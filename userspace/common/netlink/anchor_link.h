#pragma once
// An "anchor": a link whose only job is to hold a local address (the host's overlay IP), like a
// `dummy` device. Kernels built without the dummy driver get the next kind in the list.
#include <array>
#include <span>
#include <string>
#include <string_view>

#include "common/netlink/address.h"
#include "common/netlink/ensure.h"

namespace kohaku::netlink {

// Tried in order. dummy first: it is what the kernel offers for exactly this. Then ifb, which
// behaves like dummy where it matters: one device, carrier on once up (routes through it are not
// "linkdown"), and it drops whatever is routed to it when no tc redirect feeds it. Then a bridge
// without ports: the address is still local and answers, but the link never has carrier and
// traffic routed to it waits on ARP instead of being dropped. A veth with the peer kept down was
// rejected: it leaves a second device that anyone could bring up, move or enslave.
// (Where dummy or ifb is a loadable module, its first use loads it, and the module creates its
// default dummy0 / ifb0-1 devices in the initial namespace; they stay down and unused.)
inline constexpr std::array<std::string_view, 3> kAnchorKinds = {"dummy", "ifb", "bridge"};

struct AnchorResult {
  EnsureAction action = EnsureAction::kKept;  // of the link itself
  EnsureAction address = EnsureAction::kKept;
  std::string kind;  // kind of the anchor link now in place
};

// Makes `name` an up anchor link of one of `kinds` holding exactly `addr`. An existing link of
// an accepted kind is kept; another kind is recreated. Falling back from the first kind (its
// driver missing: EOPNOTSUPP) is logged when the link is created.
AnchorResult ensure_anchor(std::string_view name, const IfAddr& addr,
                           std::span<const std::string_view> kinds = kAnchorKinds);

}  // namespace kohaku::netlink
