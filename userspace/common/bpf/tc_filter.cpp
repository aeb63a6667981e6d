#include "common/bpf/tc_filter.h"

#include <bpf/libbpf.h>
#include <linux/pkt_sched.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/classifier.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>

#include <cerrno>
#include <memory>
#include <string_view>
#include <system_error>

namespace kohaku {
namespace {

bpf_tc_hook make_hook(int ifindex, TcDirection direction) {
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = direction == TcDirection::kIngress ? BPF_TC_INGRESS : BPF_TC_EGRESS;
  return hook;
}

bpf_tc_opts make_opts(TcFilterId id) {
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = id.handle;
  opts.priority = id.priority;
  return opts;
}

std::string where(int ifindex, TcDirection direction) {
  char name[IF_NAMESIZE] = {};
  std::string dev = if_indextoname(static_cast<unsigned>(ifindex), name)
                        ? std::string(name)
                        : "ifindex " + std::to_string(ifindex);
  return "TC " + to_string(direction) + " of " + dev;
}

// Whether the device has a clsact qdisc. Asked first because bpf_tc_hook_create() on an existing
// hook, and detach/query on a device without one, make libbpf print the kernel's complaint
// (e.g. on every device when switching datapaths). Unknown (netlink trouble) counts as missing:
// the libbpf call decides.
bool has_clsact(int ifindex) {
  std::unique_ptr<nl_sock, void (*)(nl_sock*)> sock(nl_socket_alloc(), nl_socket_free);
  if (!sock || nl_connect(sock.get(), NETLINK_ROUTE) < 0) return false;
  nl_cache* raw = nullptr;
  if (rtnl_qdisc_alloc_cache(sock.get(), &raw) < 0) return false;
  std::unique_ptr<nl_cache, void (*)(nl_cache*)> cache(raw, nl_cache_free);
  rtnl_qdisc* q = rtnl_qdisc_get_by_parent(cache.get(), ifindex, TC_H_CLSACT);
  if (!q) return false;
  const char* kind = rtnl_tc_get_kind(TC_CAST(q));
  bool clsact = kind && std::string_view(kind) == "clsact";
  rtnl_qdisc_put(q);
  return clsact;
}

// Whether filter `id` sits on the device's hook. Unknown (netlink trouble) counts as present.
bool has_filter(int ifindex, TcDirection direction, TcFilterId id) {
  if (!has_clsact(ifindex)) return false;
  std::unique_ptr<nl_sock, void (*)(nl_sock*)> sock(nl_socket_alloc(), nl_socket_free);
  if (!sock || nl_connect(sock.get(), NETLINK_ROUTE) < 0) return true;
  nl_cache* raw = nullptr;
  uint32_t parent = TC_H_MAKE(
      TC_H_CLSACT, direction == TcDirection::kIngress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
  if (rtnl_cls_alloc_cache(sock.get(), ifindex, parent, &raw) < 0) return true;
  std::unique_ptr<nl_cache, void (*)(nl_cache*)> cache(raw, nl_cache_free);
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* cls = reinterpret_cast<rtnl_cls*>(o);
    if (rtnl_cls_get_prio(cls) == id.priority && rtnl_tc_get_handle(TC_CAST(cls)) == id.handle)
      return true;
  }
  return false;
}

}  // namespace

std::string to_string(TcDirection direction) {
  return direction == TcDirection::kIngress ? "ingress" : "egress";
}

void tc_attach(int ifindex, TcDirection direction, TcFilterId id, int prog_fd) {
  bpf_tc_hook hook = make_hook(ifindex, direction);
  int err = has_clsact(ifindex) ? 0 : bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST)
    throw std::system_error(-err, std::generic_category(),
                            "creating clsact for " + where(ifindex, direction));
  bpf_tc_opts opts = make_opts(id);
  opts.prog_fd = prog_fd;
  opts.flags = BPF_TC_F_REPLACE;
  err = bpf_tc_attach(&hook, &opts);
  if (err)
    throw std::system_error(-err, std::generic_category(),
                            "attaching BPF program to " + where(ifindex, direction));
}

bool tc_detach(int ifindex, TcDirection direction, TcFilterId id) {
  if (!has_filter(ifindex, direction, id)) return false;
  bpf_tc_hook hook = make_hook(ifindex, direction);
  bpf_tc_opts opts = make_opts(id);  // flags, prog_fd and prog_id must all be 0
  int err = bpf_tc_detach(&hook, &opts);
  if (err == -ENOENT || err == -ENODEV || err == -EINVAL) return false;
  if (err)
    throw std::system_error(-err, std::generic_category(),
                            "detaching BPF program from " + where(ifindex, direction));
  return true;
}

std::optional<uint32_t> tc_attached_program(int ifindex, TcDirection direction, TcFilterId id) {
  if (!has_filter(ifindex, direction, id)) return std::nullopt;
  bpf_tc_hook hook = make_hook(ifindex, direction);
  bpf_tc_opts opts = make_opts(id);
  if (bpf_tc_query(&hook, &opts) != 0) return std::nullopt;
  return opts.prog_id;
}

}  // namespace kohaku
