#include "runner/overlay/overlay_setup.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include <netlink/route/neighbour.h>

#include "common/log.h"
#include "common/netlink/bridge_link.h"
#include "common/netlink/nl_objects.h"
#include "common/netlink/nl_socket.h"
#include "common/netlink/sysctl.h"

namespace kohaku::runner {

using nlohmann::json;
namespace nl = kohaku::netlink;

namespace {

constexpr std::string_view kLog = "overlay";

std::string opt_addr(const std::optional<Ipv4Addr>& a) {
  return a ? a->to_string() : std::string("none");
}

void note(ApplyResult& result, nl::EnsureAction action, const std::string& what) {
  if (action == nl::EnsureAction::kKept) return;
  result.changed = true;
  result.repairs.push_back(what + " " + std::string(nl::to_string(action)));
}

// Keeps the bridge's MAC at `mac` (see bridge_mac_for).
nl::EnsureAction ensure_link_mac(const std::string& name, const std::array<uint8_t, 6>& mac) {
  nl::NlSocket sock;
  nl::LinkPtr link = nl::fetch_link(sock, name);
  if (!link) throw std::runtime_error("set MAC of " + name + ": no such device");
  nl_addr* have = rtnl_link_get_addr(link.get());
  if (have && nl_addr_get_len(have) == mac.size() &&
      std::equal(mac.begin(), mac.end(),
                 static_cast<const uint8_t*>(nl_addr_get_binary_addr(have)))) {
    return nl::EnsureAction::kKept;
  }
  nl::AddrPtr want(nl_addr_build(AF_LLC, mac.data(), mac.size()));
  if (!want) throw std::runtime_error("set MAC of " + name + ": out of memory");
  nl::LinkPtr change = nl::alloc_link();
  rtnl_link_set_addr(change.get(), want.get());
  nl::change_link(sock, link.get(), change.get(), "set MAC " + mac_to_string(mac) + " on " + name);
  return nl::EnsureAction::kRepaired;
}

// Forwarding on; ICMP redirects off. Traffic between two subnets leaves through the bridge it
// came in on (workload -> gateway -> host's .254), so the kernel would tell workloads to talk to
// the host directly, and a workload that obeys bypasses this runner's forward filter and NAT.
// The kernel sends redirects when either "all" or the device asks for them, hence both.
void ensure_forwarding(ApplyResult& result, const std::string& bridge) {
  const std::pair<std::string, std::string> settings[] = {
      {"net.ipv4.ip_forward", "1"},
      {nl::ipv4_conf_key("all", "send_redirects"), "0"},
      {nl::ipv4_conf_key(bridge, "send_redirects"), "0"},
  };
  for (const auto& [key, value] : settings) {
    if (nl::ensure_sysctl(key, value)) {
      result.changed = true;
      result.repairs.push_back(key + " set to " + value);
    }
  }
}

// Drops the ARP entry for `ip` on `dev` so the next packet resolves it afresh. Needed when the
// tunnel was rebuilt: the host's end may be a new device with a new MAC, and a cached entry
// would keep sending to the old one until it ages out (tens of seconds of lost traffic).
void forget_neighbor(const std::string& dev, Ipv4Addr ip) {
  const auto link = nl::find_link(dev);
  if (!link) return;
  nl::NlSocket sock;
  std::unique_ptr<rtnl_neigh, decltype(&rtnl_neigh_put)> neigh(rtnl_neigh_alloc(), &rtnl_neigh_put);
  if (!neigh) throw std::runtime_error("forget neighbor " + ip.to_string() + ": out of memory");
  nl::AddrPtr dst = nl::make_nl_addr(ip);
  rtnl_neigh_set_family(neigh.get(), AF_INET);
  rtnl_neigh_set_ifindex(neigh.get(), link->ifindex);
  rtnl_neigh_set_dst(neigh.get(), dst.get());
  const int rc = rtnl_neigh_delete(sock.get(), neigh.get(), 0);
  // No entry to forget is the common case, not an error.
  if (rc < 0 && rc != -NLE_OBJ_NOTFOUND && sock.last_errno() != ENOENT) {
    sock.fail(rc, "forget neighbor " + ip.to_string() + " on " + dev);
  }
}

json link_json(const std::optional<nl::LinkInfo>& link) {
  if (!link) return json{{"exists", false}};
  return json{{"exists", true},       {"kind", link->kind},
              {"up", link->admin_up}, {"carrier", link->lower_up},
              {"mtu", link->mtu},     {"ifindex", link->ifindex}};
}

}  // namespace

std::array<uint8_t, 6> bridge_mac_for(Ipv4Addr gateway) {
  const uint32_t v = gateway.value;
  return {0x02,
          0x6b,
          static_cast<uint8_t>(v >> 24),
          static_cast<uint8_t>(v >> 16),
          static_cast<uint8_t>(v >> 8),
          static_cast<uint8_t>(v)};
}

std::string mac_to_string(const std::array<uint8_t, 6>& mac) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3],
                mac[4], mac[5]);
  return buf;
}

OverlayPlan make_overlay_plan(const OverlayAssignment& a, Ipv4Addr local_ip, uint32_t vni_base,
                              uint16_t port, unsigned mtu, const std::string& bridge) {
  OverlayPlan plan;
  plan.bridge = bridge;
  plan.bridge_address = nl::IfAddr{a.gateway, a.subnet.prefix};
  plan.bridge_mac = bridge_mac_for(a.gateway);
  plan.mtu = mtu;
  plan.vxlan.name = kOverlayVxlan;
  plan.vxlan.vni = vni_base + a.runner_id;
  plan.vxlan.local = local_ip;
  plan.vxlan.remote = a.host_physical_ip;
  plan.vxlan.port = port;
  plan.vxlan.mtu = mtu;
  plan.vxlan.learning = false;
  plan.route.dst = a.network;
  plan.route.gateway = a.host_on_subnet;
  plan.route.dev = plan.bridge;
  return plan;
}

std::vector<std::string> vxlan_drift(const nl::VxlanSpec& want,
                                     const std::optional<nl::VxlanInfo>& have) {
  if (!have) return {"missing"};
  std::vector<std::string> out;
  if (have->vni != want.vni) {
    out.push_back("VNI " + std::to_string(have->vni) + ", want " + std::to_string(want.vni));
  }
  if (have->remote != std::optional(want.remote)) {
    out.push_back("remote " + opt_addr(have->remote) + ", want " + want.remote.to_string());
  }
  if (want.local && have->local != want.local) {
    out.push_back("local " + opt_addr(have->local) + ", want " + want.local->to_string());
  }
  if (have->port != want.port) {
    out.push_back("port " + std::to_string(have->port) + ", want " + std::to_string(want.port));
  }
  if (have->link.mtu != want.mtu) {
    out.push_back("MTU " + std::to_string(have->link.mtu) + ", want " + std::to_string(want.mtu));
  }
  if (have->learning != want.learning) {
    out.push_back(std::string("learning ") + (have->learning ? "on" : "off") + ", want " +
                  (want.learning ? "on" : "off"));
  }
  if (want.up && !have->link.admin_up) out.push_back("down, want up");
  return out;
}

std::vector<std::string> bridge_drift(const OverlayPlan& plan,
                                      const std::optional<nl::LinkInfo>& have,
                                      const std::vector<nl::IfAddr>& addresses) {
  if (!have) return {"missing"};
  std::vector<std::string> out;
  if (have->kind != "bridge") out.push_back("kind '" + have->kind + "', want bridge");
  if (have->mtu != plan.mtu) {
    out.push_back("MTU " + std::to_string(have->mtu) + ", want " + std::to_string(plan.mtu));
  }
  if (!have->admin_up) out.push_back("down, want up");
  if (std::find(addresses.begin(), addresses.end(), plan.bridge_address) == addresses.end()) {
    out.push_back("address " + plan.bridge_address.to_string() + " missing");
  }
  return out;
}

ApplyResult apply_overlay(const OverlayPlan& plan, bool log_drift) {
  ApplyResult result;

  // Say what drifted before the ensure_* calls repair it, so the log reads as a diagnosis.
  const auto bridge = nl::find_link(plan.bridge);
  const auto bdrift = bridge_drift(
      plan, bridge, bridge ? nl::list_addresses(plan.bridge) : std::vector<nl::IfAddr>{});
  if (log_drift && bridge && !bdrift.empty()) {
    std::string text;
    for (const auto& d : bdrift) text += (text.empty() ? "" : "; ") + d;
    log::warn(kLog, "bridge " + plan.bridge + " drifted: " + text + "; repairing");
  }
  const auto vx = nl::find_vxlan(plan.vxlan.name);
  const auto vdrift = vxlan_drift(plan.vxlan, vx);
  if (log_drift && !vdrift.empty() && (vx || nl::link_exists(plan.vxlan.name) || bridge)) {
    std::string text;
    for (const auto& d : vdrift) text += (text.empty() ? "" : "; ") + d;
    log::warn(kLog, plan.vxlan.name + " drifted: " + text + "; repairing");
  }

  note(result, nl::ensure_bridge(plan.bridge, plan.mtu, true), "bridge " + plan.bridge);
  note(result, ensure_link_mac(plan.bridge, plan.bridge_mac),
       "MAC " + mac_to_string(plan.bridge_mac) + " of " + plan.bridge);
  // Other addresses on the bridge (e.g. from an old subnet after the host re-assigned us) would
  // keep stale connected routes, so the bridge holds exactly the gateway address.
  note(result, nl::ensure_address(plan.bridge, plan.bridge_address),
       "address " + plan.bridge_address.to_string() + " on " + plan.bridge);
  const nl::EnsureAction tunnel = nl::ensure_vxlan(plan.vxlan);
  note(result, tunnel, plan.vxlan.name);
  if (tunnel == nl::EnsureAction::kCreated || tunnel == nl::EnsureAction::kRecreated) {
    forget_neighbor(plan.bridge, *plan.route.gateway);
  }
  note(result, nl::ensure_bridge_port(plan.bridge, plan.vxlan.name),
       plan.vxlan.name + " as port of " + plan.bridge);
  note(result, nl::ensure_route(plan.route), "route " + nl::to_string(plan.route));
  ensure_forwarding(result, plan.bridge);
  return result;
}

json observe_overlay(const std::optional<OverlayPlan>& plan, const std::string& bridge) {
  json out = json::object();
  const std::string bridge_name = plan ? plan->bridge : bridge;
  try {
    const auto bridge = nl::find_link(bridge_name);
    json b = link_json(bridge);
    b["name"] = bridge_name;
    if (bridge) {
      json addrs = json::array();
      for (const auto& a : nl::list_addresses(bridge_name)) addrs.push_back(a.to_string());
      b["addresses"] = addrs;
      b["ports"] = nl::bridge_ports(bridge_name);
    }
    if (plan) {
      const auto addrs = bridge ? nl::list_addresses(bridge_name) : std::vector<nl::IfAddr>{};
      b["drift"] = bridge_drift(*plan, bridge, addrs);
    }
    out["bridge"] = b;

    const auto vx = nl::find_vxlan(kOverlayVxlan);
    json v = vx ? link_json(vx->link) : link_json(std::nullopt);
    v["name"] = kOverlayVxlan;
    if (vx) {
      v["vni"] = vx->vni;
      v["local"] = opt_addr(vx->local);
      v["remote"] = opt_addr(vx->remote);
      v["port"] = vx->port;
      v["learning"] = vx->learning;
      v["enslaved"] = bridge && vx->link.master_ifindex == bridge->ifindex;
    }
    if (plan) v["drift"] = vxlan_drift(plan->vxlan, vx);
    out["vxlan"] = v;

    if (plan) {
      const auto route = nl::find_route(plan->route.dst);
      json r = {{"dst", plan->route.dst.to_string()},
                {"want_via", plan->route.gateway ? plan->route.gateway->to_string() : ""}};
      r["present"] = route.has_value();
      if (route) {
        r["via"] = opt_addr(route->gateway);
        r["dev"] = route->dev;
      }
      out["route"] = r;
    }
    out["ip_forward"] = nl::read_sysctl("net.ipv4.ip_forward") == "1";
  } catch (const std::exception& e) {
    out["error"] = e.what();
  }
  return out;
}

DefaultNetworkPlan make_default_plan(const std::string& network_name, Ipv4Cidr subnet,
                                     Ipv4Addr gateway) {
  DefaultNetworkPlan plan;
  // Interface names stop at 15 bytes; "kohakuriver-net" fits exactly.
  plan.bridge = network_name.size() <= 15 ? network_name : network_name.substr(0, 15);
  plan.gateway_address = nl::IfAddr{gateway, subnet.prefix};
  plan.bridge_mac = bridge_mac_for(gateway);
  return plan;
}

ApplyResult apply_default_network(const DefaultNetworkPlan& plan) {
  ApplyResult result;
  note(result, nl::ensure_bridge(plan.bridge, plan.mtu, true), "bridge " + plan.bridge);
  note(result, ensure_link_mac(plan.bridge, plan.bridge_mac),
       "MAC " + mac_to_string(plan.bridge_mac) + " of " + plan.bridge);
  note(result, nl::ensure_address(plan.bridge, plan.gateway_address),
       "address " + plan.gateway_address.to_string() + " on " + plan.bridge);
  ensure_forwarding(result, plan.bridge);
  return result;
}

}  // namespace kohaku::runner
