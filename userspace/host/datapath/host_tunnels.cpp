#include "host/datapath/host_tunnels.h"

#include <map>
#include <set>
#include <string>

#include "common/log.h"
#include "common/netlink/address.h"
#include "common/netlink/anchor_link.h"
#include "common/netlink/link.h"
#include "common/netlink/sysctl.h"
#include "common/netlink/vxlan_link.h"
#include "common/subnet_scheme.h"

namespace kohaku {
namespace {

constexpr const char* kLog = "tunnels";

// The vxkr devices by name, from one link dump.
std::map<std::string, netlink::VxlanInfo> list_tunnels() {
  std::map<std::string, netlink::VxlanInfo> out;
  for (auto& dev : netlink::list_vxlans("vxkr")) out.emplace(dev.link.name, std::move(dev));
  return out;
}

}  // namespace

HostTunnels::HostTunnels(const HostConfig& config, HostDatapathMode* datapath)
    : config_(config), datapath_(datapath) {}

AnchorAddress HostTunnels::anchor_address() const {
  auto link = netlink::find_link(kHostAnchorName);
  return AnchorAddress{config_.host_anchor_ip(), link ? static_cast<uint32_t>(link->ifindex) : 0u};
}

TunnelDevice HostTunnels::ensure_tunnel(const RunnerAllocation& a, const netlink::VxlanInfo* seen) {
  const auto& scheme = config_.overlay_subnet;
  netlink::VxlanSpec spec;
  spec.name = host_vxlan_device_name(a.id);
  spec.vni = config_.overlay_vxlan_id + a.id;
  spec.local = config_.host_reachable_address;
  spec.remote = a.physical_ip;
  spec.port = config_.overlay_vxlan_port;
  spec.mtu = config_.overlay_mtu;
  spec.learning = false;
  // The overlay is IPv4: no neighbour discovery or MLD towards runners, and no IPv6 routes per
  // tunnel for the kernel to walk whenever another tunnel comes up.
  spec.ipv6 = false;
  // Runners cache this device's MAC for <subnet>+254, their route to the rest of the overlay.
  spec.mac = netlink::MacAddr::stable_for(scheme.host_ip_on_runner_subnet(a.id));
  auto device = seen ? netlink::ensure_vxlan(spec, *seen) : netlink::ensure_vxlan(spec);
  // A device kept as listed is the listed one; any other was just (re)made or changed.
  int ifindex = seen && device == netlink::EnsureAction::kKept
                    ? seen->link.ifindex
                    : netlink::get_link(spec.name).ifindex;
  auto address = netlink::ensure_address(
      spec.name, ifindex,
      netlink::IfAddr{scheme.host_ip_on_runner_subnet(a.id), scheme.runner_prefix()});
  if (device != netlink::EnsureAction::kKept || address != netlink::EnsureAction::kKept) {
    log::info(kLog, spec.name + " for " + a.hostname + " (VNI " + std::to_string(spec.vni) +
                        ", remote " + a.physical_ip.to_string() + "): device " +
                        std::string(netlink::to_string(device)) + ", address " +
                        std::string(netlink::to_string(address)));
  }
  // Created or recovered: in firewalld's trusted zone (when it runs), as KohakuRiver does.
  // Cached, so the drift-repair pass asks firewalld nothing new.
  firewall_.trust(spec.name);
  return tunnel_device(a, static_cast<uint32_t>(ifindex));
}

TunnelDevice HostTunnels::tunnel_device(const RunnerAllocation& a, uint32_t ifindex) const {
  Ipv4Addr host_ip = config_.overlay_subnet.host_ip_on_runner_subnet(a.id);
  TunnelDevice t{a.id, a.hostname, host_vxlan_device_name(a.id), ifindex, a.subnet, host_ip};
  t.physical_ip = a.physical_ip;
  t.vni = config_.overlay_vxlan_id + a.id;
  // The MAC ensure_tunnel() gives the device.
  t.mac = netlink::MacAddr::stable_for(host_ip).bytes;
  return t;
}

void HostTunnels::delete_tunnel(const std::string& name) {
  netlink::delete_link_if_exists(name);
  firewall_.forget(name);
}

void HostTunnels::start(OverlayService& service) {
  std::lock_guard lock(mutex_);
  const auto& scheme = config_.overlay_subnet;
  // OVERLAY_HOST_IP / OVERLAY_HOST_PREFIX, by default the scheme's BASE + 1 / TOTAL_PREFIX.
  const netlink::IfAddr anchor_addr{config_.host_anchor_ip(), config_.host_anchor_prefix()};
  auto anchor = netlink::ensure_anchor(kHostAnchorName, anchor_addr);
  log::info(kLog, std::string(kHostAnchorName) + " (" + anchor.kind + ") holds " +
                      anchor_addr.to_string() + ": " +
                      std::string(netlink::to_string(anchor.action)));
  // Without a datapath to decide (tests of the devices alone) the kernel routes between them.
  if (!datapath_) netlink::ensure_sysctl("net.ipv4.ip_forward", "1");
  // Runners send VXLAN to this port; firewalld's default zone would refuse it.
  firewall_.open_udp_port(config_.overlay_vxlan_port);

  std::set<uint32_t> known;
  for (const auto& a : service.allocations()) known.insert(a.id);
  for (const auto& dev : netlink::list_vxlans("vxkr")) {
    uint32_t id = runner_id_from_device_name(dev.link.name);
    if (id == 0) continue;  // not ours (e.g. "vxkrfoo" made by hand beyond base 36 rules)
    if (!scheme.valid_runner_id(id) || dev.vni != config_.overlay_vxlan_id + id) {
      log::warn(kLog, "removing " + dev.link.name + ": VNI " + std::to_string(dev.vni) +
                          " does not match runner id " + std::to_string(id) + " (expected " +
                          std::to_string(config_.overlay_vxlan_id + id) + ")");
      delete_tunnel(dev.link.name);
      continue;
    }
    if (known.count(id) == 0) {
      if (dev.remote && service.adopt_placeholder(id, *dev.remote)) {
        log::info(kLog, "recovered " + dev.link.name + " as placeholder runner_" +
                            std::to_string(id) + " (remote " + dev.remote->to_string() + ")");
        known.insert(id);
      } else {
        log::warn(kLog, "removing " + dev.link.name + ": no allocation and cannot adopt it");
        delete_tunnel(dev.link.name);
      }
    }
  }
  std::vector<TunnelDevice> devices;
  auto present = list_tunnels();
  for (const auto& a : service.allocations()) {
    try {
      auto it = present.find(host_vxlan_device_name(a.id));
      devices.push_back(ensure_tunnel(a, it == present.end() ? nullptr : &it->second));
    } catch (const std::exception& e) {
      log::error(kLog, "runner " + a.hostname + ": " + e.what());
    }
  }
  if (datapath_) datapath_->start(anchor_address(), devices);
}

void HostTunnels::reconcile(const std::vector<RunnerAllocation>& allocations) {
  std::lock_guard lock(mutex_);
  std::set<std::string> wanted;
  std::vector<TunnelDevice> devices;
  // One listing for the whole pass: a tunnel that matches it costs no lookup of its own.
  auto present = list_tunnels();
  for (const auto& a : allocations) {
    wanted.insert(host_vxlan_device_name(a.id));
    try {
      auto it = present.find(host_vxlan_device_name(a.id));
      devices.push_back(ensure_tunnel(a, it == present.end() ? nullptr : &it->second));
    } catch (const std::exception& e) {
      log::error(kLog, "runner " + a.hostname + ": " + e.what());
      // A repair that failed must not also cut the runner off the fast path: the device as it
      // is stays in the maps until the next tick retries.
      if (auto link = netlink::find_link(host_vxlan_device_name(a.id)))
        devices.push_back(tunnel_device(a, static_cast<uint32_t>(link->ifindex)));
    }
  }
  // Maps first: nothing may point at a device that is about to be deleted.
  if (datapath_) datapath_->reconcile(anchor_address(), devices);
  // Devices made since the listing are wanted ones (the lock keeps registrations out).
  for (const auto& [name, dev] : present) {
    if (runner_id_from_device_name(name) != 0 && wanted.count(name) == 0) {
      log::info(kLog, "removing " + name + ": no runner holds it any more");
      delete_tunnel(name);
    }
  }
}

void HostTunnels::on_allocated(const RunnerAllocation& allocation) {
  std::lock_guard lock(mutex_);
  try {
    auto device = ensure_tunnel(allocation);
    if (datapath_) datapath_->tunnel_up(device);
  } catch (const std::exception& e) {
    log::error(kLog, "runner " + allocation.hostname + ": " + e.what());
  }
}

void HostTunnels::on_released(const RunnerAllocation& allocation) {
  std::lock_guard lock(mutex_);
  auto name = host_vxlan_device_name(allocation.id);
  // Out of the maps before the device goes, so nothing is redirected into a vanishing device.
  if (datapath_)
    datapath_->tunnel_down(allocation.id,
                           config_.overlay_subnet.host_ip_on_runner_subnet(allocation.id));
  try {
    if (netlink::delete_link_if_exists(name))
      log::info(kLog, "removed " + name + " of " + allocation.hostname);
    firewall_.forget(name);
  } catch (const std::exception& e) {
    log::error(kLog, "removing " + name + ": " + e.what());
  }
}

}  // namespace kohaku
