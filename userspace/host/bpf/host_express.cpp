#include "host/bpf/host_express.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <linux/if_link.h>

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstring>
#include <set>
#include <stdexcept>
#include <system_error>

#include "common/bpf/attach_points.h"
#include "common/bpf/counter_fields.h"
#include "common/bpf/map_io.h"
#include "common/bpf/pinned_skeleton.h"
#include "common/enum_names.h"
#include "common/unique_fd.h"
#include "host/bpf/host_datapath.h"
#include "host_express.skel.h"

namespace kohaku::bpf {
namespace {

constexpr const char* kTcPin = "host_express_tc";
constexpr const char* kXdpPin = "host_express_xdp";
// The kernel keeps 15 characters of a program's name: enough to tell ours from another tool's.
constexpr std::string_view kProgNamePrefix = "host_express_";
constexpr TcFilterId kFilter = kHostExpressTcFilter;
// Maps the program shares with the TC fast path: taken from the HostDatapath, never created here.
constexpr const char* kSharedMaps[] = {"host_routes", "host_ingress", "host_addrs", "host_stats"};

#define KH_COUNTER(field)                  \
  CounterName {                            \
#field, offsetof(express_stats, field) \
  }
constexpr CounterName kCounterNames[] = {
    KH_COUNTER(fwd_packets),         KH_COUNTER(fwd_bytes),
    KH_COUNTER(fwd_nh_lookups),      KH_COUNTER(fwd_gso),
    KH_COUNTER(fwd_gso_segs),        KH_COUNTER(pass_bytes),
    KH_COUNTER(pass_not_configured), KH_COUNTER(pass_non_vxlan),
    KH_COUNTER(pass_unknown_vni),    KH_COUNTER(pass_gso),
    KH_COUNTER(pass_fragment),       KH_COUNTER(pass_ip_options),
    KH_COUNTER(pass_malformed),      KH_COUNTER(pass_inner_non_ipv4),
    KH_COUNTER(pass_l2_not_host),    KH_COUNTER(pass_to_host),
    KH_COUNTER(pass_no_route),       KH_COUNTER(pass_ttl),
    KH_COUNTER(pass_oversize),       KH_COUNTER(pass_no_neigh),
    KH_COUNTER(pass_outer_no_neigh), KH_COUNTER(pass_fib),
    KH_COUNTER(pass_no_target),      KH_COUNTER(pass_egress),
    KH_COUNTER(drop_bytes),          KH_COUNTER(drop_spoofed_outer),
    KH_COUNTER(drop_spoofed_inner),
};
#undef KH_COUNTER
static_assert(std::size(kCounterNames) == sizeof(express_stats) / sizeof(uint64_t),
              "every express_stats field needs a name");

void put_addr(uint8_t out[4], Ipv4Addr a) {
  uint32_t be = a.network_order();
  std::memcpy(out, &be, 4);
}

Ipv4Addr get_addr(const uint8_t in[4]) {
  uint32_t be;
  std::memcpy(&be, in, 4);
  return Ipv4Addr::from_network_order(be);
}

express_runner to_value(const ExpressRunner& r) {
  express_runner v{};
  v.vni = r.vni;
  put_addr(v.physical_ip, r.physical_ip);
  v.tunnel_ifindex = r.tunnel_ifindex;
  std::memcpy(v.tunnel_mac, r.tunnel_mac.data(), 6);
  put_addr(v.subnet, r.subnet.addr);
  v.prefixlen = r.subnet.prefix;
  return v;
}

ExpressRunner from_value(uint32_t id, const express_runner& v) {
  ExpressRunner r;
  r.runner_id = id;
  r.vni = v.vni;
  r.physical_ip = get_addr(v.physical_ip);
  r.tunnel_ifindex = v.tunnel_ifindex;
  std::memcpy(r.tunnel_mac.data(), v.tunnel_mac, 6);
  r.subnet = Ipv4Cidr{get_addr(v.subnet), static_cast<uint8_t>(v.prefixlen)};
  return r;
}

void validate(const ExpressRunner& r) {
  std::string who = "express runner " + std::to_string(r.runner_id);
  if (r.runner_id == 0) throw std::invalid_argument("runner id 0 is reserved");
  if (r.tunnel_ifindex == 0) throw std::invalid_argument(who + ": tunnel ifindex 0");
  if (r.physical_ip.is_unspecified()) throw std::invalid_argument(who + ": physical IP 0.0.0.0");
  if (r.subnet.prefix > 32 || (r.subnet.addr.value & ~r.subnet.mask()) != 0)
    throw std::invalid_argument(who + ": bad subnet " + r.subnet.to_string());
}

// The XDP program attached to the device (any mode), with its name; nullopt when none.
struct XdpAttachment {
  uint32_t prog_id = 0;
  ExpressHook hook = ExpressHook::kXdpNative;
  std::string name;
};

std::optional<XdpAttachment> xdp_attachment(uint32_t ifindex) {
  bpf_xdp_query_opts q{};
  q.sz = sizeof(q);
  if (int err = bpf_xdp_query(static_cast<int>(ifindex), 0, &q); err) {
    if (err == -ENODEV) return std::nullopt;
    fail(err, "query XDP of ifindex", std::to_string(ifindex));
  }
  XdpAttachment a;
  if (q.drv_prog_id) {
    a.prog_id = q.drv_prog_id;
  } else if (q.skb_prog_id) {
    a.prog_id = q.skb_prog_id;
    a.hook = ExpressHook::kXdpGeneric;
  } else {
    return std::nullopt;
  }
  UniqueFd fd(bpf_prog_get_fd_by_id(a.prog_id));
  if (fd) {
    bpf_prog_info info{};
    uint32_t len = sizeof(info);
    if (bpf_obj_get_info_by_fd(fd.get(), &info, &len) == 0) a.name = info.name;
  }
  return a;
}

bool is_ours(const XdpAttachment& a) {
  return std::string_view(a.name).starts_with(kProgNamePrefix);
}

uint32_t xdp_flags(ExpressHook hook) {
  return hook == ExpressHook::kXdpGeneric ? XDP_FLAGS_SKB_MODE : XDP_FLAGS_DRV_MODE;
}

bool detach_xdp_if_ours(uint32_t ifindex) {
  auto a = xdp_attachment(ifindex);
  if (!a || !is_ours(*a)) return false;
  if (int err = bpf_xdp_detach(static_cast<int>(ifindex), xdp_flags(a->hook), nullptr); err)
    fail(err, "detach XDP program from ifindex", std::to_string(ifindex));
  return true;
}

}  // namespace

std::string_view express_hook_name(ExpressHook hook) {
  static constexpr EnumName<ExpressHook> kNames[] = {{ExpressHook::kTc, "tc"},
                                                     {ExpressHook::kXdpNative, "xdp-native"},
                                                     {ExpressHook::kXdpGeneric, "xdp-generic"}};
  return enum_name(kNames, hook);
}

uint64_t ExpressCounters::pass_packets() const {
  return sum_counters(&sum.pass_not_configured, EXPRESS_PASS_MAX);
}

uint64_t ExpressCounters::drop_packets() const {
  return sum_counters(&sum.drop_spoofed_outer, EXPRESS_DROP_MAX);
}

std::vector<std::pair<std::string_view, uint64_t>> ExpressCounters::named() const {
  return named_counters(sum, kCounterNames);
}

HostExpress::HostExpress(const Options& options, const HostDatapath& base) {
  load(options, base);
}

HostExpress::~HostExpress() = default;

void HostExpress::load(const Options& options, const HostDatapath& base) {
  PinPlan plan{options.pin ? pin_dir_below(options.pin_root, pin_dirs::kHost) : "", "bpf-express"};
  for (const char* name : kSharedMaps) plan.shared.emplace_back(name, base.map_fd(name));
  skel_ = std::make_unique<Skeleton>(KOHAKU_SKELETON(host_express), plan);
  pin_dir_ = plan.pin_dir;
  migrated_ = skel_->report().migrated_names();
  skel_->pin_program((*skel_)->progs.host_express_tc, kTcPin);
  skel_->pin_program((*skel_)->progs.host_express_xdp, kXdpPin);

  express_stats_key zero_key{0};
  percpu_ensure_zero<express_stats>(bpf_map__fd((*skel_)->maps.express_stats), &zero_key,
                                    "express counters of runner 0");
  // The mirror starts as what the (possibly adopted) map holds.
  for (const auto& [k, v] :
       map_entries<express_runner_key, express_runner>(bpf_map__fd((*skel_)->maps.express_runners)))
    mirror_.emplace(k.runner_id, from_value(k.runner_id, v));
}

int HostExpress::tc_program_fd() const {
  return bpf_program__fd((*skel_)->progs.host_express_tc);
}

int HostExpress::xdp_program_fd() const {
  return bpf_program__fd((*skel_)->progs.host_express_xdp);
}

uint32_t HostExpress::program_id(ExpressHook hook) const {
  return hook == ExpressHook::kTc ? bpf::program_id(tc_program_fd(), "host_express_tc")
                                  : bpf::program_id(xdp_program_fd(), "host_express_xdp");
}

int HostExpress::map_fd(std::string_view name) const {
  return bpf::map_fd(skel_->obj(), name);
}

void HostExpress::configure(const ExpressConfig& c) {
  std::lock_guard lock(write_mu_);
  express_config v{};
  v.enabled = 1;
  v.uplink_ifindex = c.uplink_ifindex;
  put_addr(v.host_ip, c.host_ip);
  std::memcpy(v.uplink_mac, c.uplink_mac.data(), 6);
  v.vxlan_port = htons(c.vxlan_port);
  v.vni_base = c.vni_base;
  v.tx_devmap = c.tx_devmap ? 1 : 0;
  uint32_t key = 0;
  if (c.uplink_ifindex) {
    uint32_t dev = c.uplink_ifindex;
    map_update(bpf_map__fd((*skel_)->maps.express_tx), &dev, &dev, "express_tx");
  }
  map_update(bpf_map__fd((*skel_)->maps.express_config), &key, &v, "express_config");
}

void HostExpress::disable() {
  std::lock_guard lock(write_mu_);
  uint32_t key = 0;
  express_config v{};
  if (bpf_map_lookup_elem(bpf_map__fd((*skel_)->maps.express_config), &key, &v) != 0)
    fail(errno, "read BPF map", "express_config");
  v.enabled = 0;
  map_update(bpf_map__fd((*skel_)->maps.express_config), &key, &v, "express_config");
}

void HostExpress::write_runner(const ExpressRunner& r) {
  auto it = mirror_.find(r.runner_id);
  if (it != mirror_.end() && it->second == r) return;
  express_runner_key k{r.runner_id};
  express_runner v = to_value(r);
  express_stats_key sk{r.runner_id};
  percpu_ensure_zero<express_stats>(bpf_map__fd((*skel_)->maps.express_stats), &sk,
                                    "express counters of runner " + std::to_string(r.runner_id));
  map_update(bpf_map__fd((*skel_)->maps.express_runners), &k, &v, "express_runners");
  // A moved runner must not keep the next hop resolved for its old address: the program
  // re-resolves on the next frame.
  if (it != mirror_.end() && it->second.physical_ip != r.physical_ip) {
    express_nexthop_key nk{r.runner_id};
    map_erase(bpf_map__fd((*skel_)->maps.express_nexthops), &nk, "express_nexthops");
  }
  mirror_[r.runner_id] = r;
}

void HostExpress::erase_runner(uint32_t id) {
  express_runner_key k{id};
  express_nexthop_key nk{id};
  express_stats_key sk{id};
  map_erase(bpf_map__fd((*skel_)->maps.express_runners), &k, "express_runners");
  map_erase(bpf_map__fd((*skel_)->maps.express_nexthops), &nk, "express_nexthops");
  map_erase(bpf_map__fd((*skel_)->maps.express_stats), &sk, "express_stats");
  mirror_.erase(id);
}

void HostExpress::upsert_runner(const ExpressRunner& r) {
  validate(r);
  std::lock_guard lock(write_mu_);
  write_runner(r);
}

bool HostExpress::remove_runner(uint32_t id) {
  std::lock_guard lock(write_mu_);
  if (id == 0 || !mirror_.count(id)) return false;
  erase_runner(id);
  return true;
}

void HostExpress::reconcile(const std::vector<ExpressRunner>& want) {
  std::set<uint32_t> ids;
  for (const ExpressRunner& r : want) {
    validate(r);
    if (!ids.insert(r.runner_id).second)
      throw std::invalid_argument("express runner " + std::to_string(r.runner_id) +
                                  " listed twice");
  }
  std::lock_guard lock(write_mu_);
  for (const ExpressRunner& r : want) write_runner(r);
  std::vector<uint32_t> stale;
  for (const auto& [id, r] : mirror_)
    if (!ids.count(id)) stale.push_back(id);
  for (uint32_t id : stale) erase_runner(id);
}

std::vector<ExpressRunner> HostExpress::runners() const {
  std::vector<ExpressRunner> out;
  for (const auto& [k, v] :
       map_entries<express_runner_key, express_runner>(bpf_map__fd((*skel_)->maps.express_runners)))
    out.push_back(from_value(k.runner_id, v));
  std::sort(out.begin(), out.end(), [](const ExpressRunner& a, const ExpressRunner& b) {
    return a.runner_id < b.runner_id;
  });
  return out;
}

void HostExpress::attach(uint32_t ifindex, ExpressHook hook) {
  std::string dev = "ifindex " + std::to_string(ifindex);
  if (hook == ExpressHook::kTc) {
    tc_attach(static_cast<int>(ifindex), TcDirection::kIngress, kFilter, tc_program_fd());
    // Only one stage of ours at a time: a previous XDP attachment goes once TC runs.
    detach_xdp_if_ours(ifindex);
    return;
  }
  auto current = xdp_attachment(ifindex);
  if (current && !is_ours(*current))
    throw std::system_error(EBUSY, std::generic_category(),
                            "cannot attach XDP to " + dev + ": program " +
                                std::to_string(current->prog_id) + " (" + current->name +
                                ") of another tool is attached");
  // The kernel refuses to switch modes in place: the other mode's program goes first.
  if (current && current->hook != hook) detach_xdp_if_ours(ifindex);
  if (int err =
          bpf_xdp_attach(static_cast<int>(ifindex), xdp_program_fd(), xdp_flags(hook), nullptr);
      err)
    fail(err, "attach XDP (" + std::string(express_hook_name(hook)) + ") to", dev);
  tc_detach(static_cast<int>(ifindex), TcDirection::kIngress, kFilter);
}

bool HostExpress::detach(uint32_t ifindex) {
  return detach_host_express(ifindex);
}

bool detach_host_express(uint32_t ifindex) {
  bool tc = tc_detach(static_cast<int>(ifindex), TcDirection::kIngress, kFilter);
  bool xdp = detach_xdp_if_ours(ifindex);
  return tc || xdp;
}

std::optional<ExpressHook> HostExpress::attached(uint32_t ifindex) const {
  if (auto a = xdp_attachment(ifindex); a && is_ours(*a)) return a->hook;
  if (tc_attached_program(static_cast<int>(ifindex), TcDirection::kIngress, kFilter))
    return ExpressHook::kTc;
  return std::nullopt;
}

std::optional<ExpressCounters> HostExpress::counters(uint32_t runner_id) const {
  express_stats_key key{runner_id};
  auto sum = percpu_sum<express_stats>(bpf_map__fd((*skel_)->maps.express_stats), &key,
                                       "express counters of runner " + std::to_string(runner_id));
  if (!sum) return std::nullopt;
  return ExpressCounters{*sum};
}

std::map<uint32_t, ExpressCounters> HostExpress::all_counters() const {
  std::map<uint32_t, ExpressCounters> out;
  for (const auto& k : map_keys<express_stats_key>(bpf_map__fd((*skel_)->maps.express_stats)))
    if (auto c = counters(k.runner_id)) out.emplace(k.runner_id, *c);
  return out;
}

}  // namespace kohaku::bpf
