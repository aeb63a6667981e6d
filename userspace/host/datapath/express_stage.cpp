#include "host/datapath/express_stage.h"

#include <net/if.h>

#include <linux/neighbour.h>

#include <functional>
#include <set>

#include "common/log.h"
#include "common/netlink/address.h"
#include "common/netlink/link.h"
#include "common/netlink/neighbour.h"
#include "common/spawn_program.h"
#include "host/api/counters_json.h"
#include "host/bpf/host_datapath.h"
#include "host/datapath/host_datapath_mode.h"

namespace kohaku {
namespace {

constexpr const char* kLog = "express";

bpf::ExpressRunner express_runner_of(const TunnelDevice& t) {
  return bpf::ExpressRunner{t.runner_id, t.vni, t.physical_ip, t.ifindex, t.mac, t.subnet};
}

std::vector<bpf::ExpressRunner> express_runners_of(const std::vector<TunnelDevice>& tunnels) {
  std::vector<bpf::ExpressRunner> out;
  for (const auto& t : tunnels)
    if (!t.physical_ip.is_unspecified()) out.push_back(express_runner_of(t));
  return out;
}

}  // namespace

ExpressStage::ExpressStage(const HostConfig& config) : config_(config) {}

ExpressStage::~ExpressStage() = default;

std::optional<ExpressStage::Uplink> ExpressStage::find_uplink(Ipv4Addr host_ip) {
  auto ifindex = netlink::find_address_owner(host_ip);
  if (!ifindex) return std::nullopt;
  char name[IF_NAMESIZE] = {};
  if (!if_indextoname(static_cast<unsigned>(*ifindex), name)) return std::nullopt;
  auto link = netlink::find_link(name);
  if (!link) return std::nullopt;
  return Uplink{static_cast<uint32_t>(link->ifindex), link->name, link->kind, link->mac.bytes};
}

void ExpressStage::remove_from_uplink(Ipv4Addr host_ip) {
  try {
    if (auto up = find_uplink(host_ip); up && bpf::detach_host_express(up->ifindex))
      log::info(kLog, "detached the express stage from " + up->name);
  } catch (const std::exception& e) {
    log::error(kLog, std::string("detaching the express stage: ") + e.what());
  }
}

void ExpressStage::set_off(const std::string& reason) {
  hook_.reset();
  if (why_ != reason) log::warn(kLog, "express stage off: " + reason);
  why_ = reason;
}

void ExpressStage::start(const bpf::HostDatapath& base, const std::vector<TunnelDevice>& tunnels) {
  std::lock_guard lock(mu_);
  if (config_.overlay_express == ExpressMode::kOff) {
    why_ = "OVERLAY_EXPRESS = off";
    if (auto up = find_uplink(config_.host_reachable_address)) {
      try {
        if (bpf::detach_host_express(up->ifindex))
          log::info(kLog, "OVERLAY_EXPRESS = off: detached the express stage from " + up->name);
      } catch (const std::exception& e) {
        log::error(kLog, std::string("detaching the express stage: ") + e.what());
      }
    }
    return;
  }
  try {
    express_ = std::make_unique<bpf::HostExpress>(
        bpf::HostExpress::Options{.pin_root = config_.bpf_pin_root}, base);
    for (const auto& name : express_->migrated_maps())
      log::info(kLog, "BPF map " + name + " migrated to this build's layout");
    express_->reconcile(express_runners_of(tunnels));
  } catch (const std::exception& e) {
    express_.reset();
    set_off(std::string("cannot load the express programs: ") + e.what() +
            "; runner-to-runner traffic takes the TC path on the tunnels");
    return;
  }
  follow_uplink();
}

void ExpressStage::ensure_gro(const Uplink& up) {
  // Wire-sized TCP keeps the kernel path's rate only when the uplink aggregates it (GRO): the
  // aggregates then take the kernel path whole (the program passes GSO frames), single frames
  // go express. Physical NICs have GRO on already; veth has it off by default.
  ProgramResult r = spawn_program({"ethtool", "-k", up.name});
  if (r.status != 0) {
    log::warn(kLog, "cannot read the offloads of " + up.name + " (ethtool -k: " +
                        trim_trailing(r.err.empty() ? r.out : r.err) + "): GRO left as it is");
    return;
  }
  if (r.out.find("generic-receive-offload: on") != std::string::npos) return;
  r = spawn_program({"ethtool", "-K", up.name, "gro", "on"});
  if (r.status == 0)
    log::info(kLog,
              "turned GRO on for " + up.name + " (TCP aggregates keep the kernel path's rate)");
  else
    log::warn(kLog, "cannot turn GRO on for " + up.name + ": " + trim_trailing(r.err));
}

void ExpressStage::attach_to(const Uplink& up) {
  bpf::ExpressConfig cfg{
      config_.host_reachable_address, up.ifindex,       up.mac, config_.overlay_vxlan_port,
      config_.overlay_vxlan_id,       up.kind == "veth"};
  express_->configure(cfg);

  bool physical = up.kind.empty() && up.name != "lo";
  bool want_xdp = config_.overlay_express == ExpressMode::kXdp ||
                  (config_.overlay_express == ExpressMode::kAuto && physical);
  std::string why;
  if (config_.overlay_express == ExpressMode::kTc)
    why = "OVERLAY_EXPRESS = tc";
  else if (config_.overlay_express == ExpressMode::kAuto && !physical)
    why = "auto: " + up.name + " is a " + (up.kind.empty() ? "software device" : up.kind) +
          ", where native XDP loses the skb's GSO and checksum state (TCP through it breaks or "
          "slows down); TC keeps them";
  if (want_xdp) {
    try {
      express_->attach(up.ifindex, bpf::ExpressHook::kXdpNative);
      hook_ = bpf::ExpressHook::kXdpNative;
      why_ = config_.overlay_express == ExpressMode::kXdp
                 ? "OVERLAY_EXPRESS = xdp"
                 : "auto: " + up.name + " is a physical NIC whose driver runs XDP natively";
      // veth delivers redirected frames only to a peer in NAPI mode (an XDP program or GRO on).
      if (up.kind == "veth")
        why_ +=
            "; on a veth the peer must run XDP or have GRO on to receive what is sent back, "
            "and TCP loses its checksum offload state";
      return;
    } catch (const std::exception& e) {
      why = std::string("native XDP on ") + up.name + " failed (" + e.what() + "): TC instead";
      if (!warned_) log::warn(kLog, why);
      warned_ = true;
    }
  }
  express_->attach(up.ifindex, bpf::ExpressHook::kTc);
  hook_ = bpf::ExpressHook::kTc;
  why_ = why;
  ensure_gro(up);
}

void ExpressStage::follow_uplink() {
  std::optional<Uplink> up;
  try {
    up = find_uplink(config_.host_reachable_address);
  } catch (const std::exception& e) {
    log::error(kLog, std::string("finding the uplink: ") + e.what());
    return;
  }
  if (!up) {
    if (uplink_) {
      try {
        bpf::detach_host_express(uplink_->ifindex);
      } catch (const std::exception&) {
        // The device is most likely gone with the address.
      }
    }
    uplink_.reset();
    if (express_) express_->disable();
    set_off("no device holds HOST_REACHABLE_ADDRESS " + config_.host_reachable_address.to_string() +
            "; waiting for it");
    return;
  }
  try {
    // Attached where it should be and by the kernel's word still there: nothing to do.
    if (uplink_ == up && hook_ && express_->attached(up->ifindex) == hook_) return;
    if (uplink_ && uplink_->ifindex != up->ifindex) {
      try {
        bpf::detach_host_express(uplink_->ifindex);
      } catch (const std::exception&) {
        // A recreated device: the old ifindex is gone.
      }
      log::info(kLog, "uplink " +
                          std::string(uplink_->name == up->name ? "recreated: " : "moved: ") +
                          uplink_->name + " (ifindex " + std::to_string(uplink_->ifindex) +
                          ") -> " + up->name + " (ifindex " + std::to_string(up->ifindex) + ")");
    }
    attach_to(*up);
    uplink_ = up;
    log::info(kLog, "express stage on " + up->name + " (" +
                        std::string(bpf::express_hook_name(*hook_)) + "): " + why_);
  } catch (const std::exception& e) {
    uplink_ = up;
    set_off("cannot attach the express stage to " + up->name + ": " + e.what());
  }
}

void ExpressStage::tunnel_up(const TunnelDevice& t) {
  if (!express_ || t.physical_ip.is_unspecified()) return;
  try {
    express_->upsert_runner(express_runner_of(t));
  } catch (const std::exception& e) {
    log::error(kLog, t.device + " (runner " + t.runner_name + "): " + e.what());
  }
}

void ExpressStage::tunnel_down(uint32_t runner_id) {
  if (!express_) return;
  try {
    express_->remove_runner(runner_id);
  } catch (const std::exception& e) {
    log::error(kLog, "removing runner " + std::to_string(runner_id) + ": " + e.what());
  }
}

void ExpressStage::revalidate_neighbours(const std::vector<TunnelDevice>& tunnels) {
  // The stage takes inner MACs from the kernel's neighbour entries on the tunnels but never sends
  // through the kernel, which therefore never revalidates them: a STALE entry would stay in use
  // for good, also after its workload changed MAC without a gratuitous ARP. Marking STALE
  // entries used makes the kernel probe them (DELAY, then a unicast probe): confirmed, or failed
  // and resolved afresh on the kernel path by the next packet.
  std::set<int> devices;
  for (const auto& t : tunnels) devices.insert(static_cast<int>(t.ifindex));
  try {
    for (const auto& n : netlink::list_neighbours())
      if ((n.state & NUD_STALE) && devices.count(n.ifindex))
        netlink::revalidate_neighbour(n.ifindex, n.addr);
  } catch (const std::exception& e) {
    log::warn(kLog, std::string("revalidating neighbour entries on the tunnels: ") + e.what());
  }
}

void ExpressStage::reconcile(const std::vector<TunnelDevice>& tunnels) {
  if (!express_) return;
  try {
    express_->reconcile(express_runners_of(tunnels));
  } catch (const std::exception& e) {
    log::error(kLog, std::string("reconciling express_runners: ") + e.what());
  }
  revalidate_neighbours(tunnels);
  std::lock_guard lock(mu_);
  follow_uplink();
}

nlohmann::json ExpressStage::status(
    const std::function<nlohmann::json(uint32_t)>& runner_name) const {
  nlohmann::json j;
  std::lock_guard lock(mu_);
  j["requested"] = express_mode_name(config_.overlay_express);
  j["active"] = hook_ ? nlohmann::json(bpf::express_hook_name(*hook_)) : nlohmann::json("off");
  if (!why_.empty()) j["reason"] = why_;
  j["device"] = uplink_ ? nlohmann::json(uplink_->name) : nullptr;
  nlohmann::json counters = nlohmann::json::array();
  if (express_) {
    try {
      j["program_id"] = express_->program_id(hook_.value_or(bpf::ExpressHook::kTc));
      for (const auto& [id, c] : express_->all_counters()) {
        nlohmann::json row = {{"runner_id", id}, {"runner_name", id ? runner_name(id) : nullptr}};
        row.update(counters_json(c.named(), c.pass_packets(), c.drop_packets()));
        counters.push_back(row);
      }
    } catch (const std::exception& e) {
      j["error"] = std::string("reading the express counters: ") + e.what();
    }
  }
  j["counters"] = counters;
  return j;
}

}  // namespace kohaku
