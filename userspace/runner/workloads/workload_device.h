#pragma once
// The netlink side of attaching a workload: checking that a namespace is one the runner may
// own, and the veth pair, address and default route that put it on a bridge.
#include <set>
#include <string>

#include "common/netlink/netns.h"
#include "common/rollback.h"
#include "runner/workloads/workload_store.h"

namespace kohaku::runner {

// Only a namespace this runner may own: nothing in it but lo and `ours` (interfaces of
// workloads we attached there ourselves), and no route through anything else. Anything more
// belongs to someone (a host namespace, another tool's container) whose routes we must never
// rewire. Returns whether it has a default route already (a second interface, for a named
// network, keeps the first's). Throws DomainError (kInvalid unreadable, kConflict foreign).
bool check_namespace_is_ours(const netlink::Netns& ns, const std::set<std::string>& ours);

// Creates w.host_veth with w.interface inside `ns`, gives that w.ip/w.prefix (and a default
// route via w.gateway unless `has_default`), and puts the host end on `bridge`, up. Adds the
// veth's removal to `undo` once it exists. Throws DomainError (kConflict: the name is taken in the
// namespace, 500 anything else).
void set_up_workload_device(const netlink::Netns& ns, const Workload& w, const std::string& bridge,
                            bool has_default, Rollback& undo);

}  // namespace kohaku::runner
