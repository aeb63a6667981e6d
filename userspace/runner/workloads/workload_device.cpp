#include "runner/workloads/workload_device.h"

#include <cerrno>

#include "common/api_error.h"
#include "common/domain_error.h"
#include "common/netlink/address.h"
#include "common/netlink/bridge_link.h"
#include "common/netlink/link.h"
#include "common/netlink/route.h"
#include "common/netlink/veth_link.h"

namespace kohaku::runner {

namespace nl = kohaku::netlink;

bool check_namespace_is_ours(const nl::Netns& ns, const std::set<std::string>& ours) {
  std::string foreign;
  bool has_default = false;
  try {
    nl::run_in_netns(ns, [&] {
      for (const auto& link : nl::list_links())
        if (link.name != "lo" && !ours.contains(link.name) && foreign.empty())
          foreign = "interface '" + link.name + "'";
      for (const auto& route : nl::list_routes()) {
        if (route.dst.prefix == 0) has_default = true;
        if (!ours.contains(route.dev) && foreign.empty())
          foreign = "route " + nl::to_string(nl::RouteSpec{.dst = route.dst,
                                                           .gateway = route.gateway,
                                                           .dev = route.dev,
                                                           .metric = route.metric});
      }
    });
  } catch (const std::exception& e) {
    throw DomainError(ErrorKind::kInvalid,
                      std::string("cannot inspect the namespace: ") + e.what());
  }
  if (!foreign.empty()) {
    throw DomainError(ErrorKind::kConflict,
                      "the namespace already has " + foreign +
                          ", which this runner did not create; it only attaches namespaces it "
                          "may own (nothing but lo, or only its own workloads' interfaces)");
  }
  return has_default;
}

void set_up_workload_device(const nl::Netns& ns, const Workload& w, const std::string& bridge,
                            bool has_default, Rollback& undo) {
  try {
    nl::create_veth(nl::VethSpec{.name = w.host_veth,
                                 .peer_name = w.interface,
                                 .peer_netns_fd = ns.fd(),
                                 .mtu = w.mtu,
                                 .up = true});
  } catch (const std::exception& e) {
    const bool exists = dynamic_cast<const nl::NetlinkError*>(&e) &&
                        static_cast<const nl::NetlinkError&>(e).sys_errno() == EEXIST;
    throw DomainError(exists ? ErrorKind::kConflict : ErrorKind::kInternal,
                      std::string("cannot create the veth pair: ") + e.what() +
                          (exists ? " (is '" + w.interface + "' taken in the namespace?)" : ""));
  }
  // Deleting our end destroys the peer inside the namespace too.
  undo.add([veth = w.host_veth] { nl::delete_link_if_exists(veth); });
  try {
    nl::run_in_netns(ns, [&] {
      nl::set_link_up("lo");
      nl::add_address(w.interface, nl::IfAddr{w.ip, w.prefix});
      nl::set_link_up(w.interface);
      if (!has_default) {
        nl::add_route(nl::RouteSpec{.dst = Ipv4Cidr{}, .gateway = w.gateway, .dev = w.interface});
      }
    });
    nl::ensure_bridge_port(bridge, w.host_veth);
    nl::set_link_up(w.host_veth);
  } catch (const std::exception& e) {
    throw DomainError(ErrorKind::kInternal,
                      std::string("cannot configure the workload: ") + e.what());
  }
}

}  // namespace kohaku::runner
