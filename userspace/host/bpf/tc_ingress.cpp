#include "host/bpf/tc_ingress.h"

#include <bpf/libbpf.h>
#include <linux/pkt_sched.h>
#include <net/if.h>
#include <netlink/netlink.h>
#include <netlink/route/classifier.h>
#include <netlink/route/qdisc.h>
#include <netlink/route/tc.h>

#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace kohaku::bpf {
namespace {

std::string device(int ifindex) {
  char name[IF_NAMESIZE] = {};
  std::string text = "ifindex " + std::to_string(ifindex);
  if (if_indextoname(static_cast<unsigned>(ifindex), name)) text += " (" + std::string(name) + ")";
  return text;
}

bpf_tc_hook ingress_hook(int ifindex) {
  bpf_tc_hook hook{};
  hook.sz = sizeof(hook);
  hook.ifindex = ifindex;
  hook.attach_point = BPF_TC_INGRESS;
  return hook;
}

bpf_tc_opts filter_opts(TcFilterId id) {
  bpf_tc_opts opts{};
  opts.sz = sizeof(opts);
  opts.handle = id.handle;
  opts.priority = id.priority;
  return opts;
}

// Whether the device already has a clsact qdisc. Asked first because bpf_tc_hook_create() on an
// existing hook makes libbpf log the kernel's "Exclusivity flag on" as a warning, once per device
// on every daemon restart. Unknown (netlink trouble) counts as missing: the create call decides.
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

// Whether filter `id` sits on the device's clsact ingress. Asked before querying or detaching,
// which on a device without it make libbpf print the kernel's "Parent Qdisc doesn't exists" or
// "Cannot find specified filter chain" (e.g. once per tunnel when switching datapaths).
// Unknown (netlink trouble listing the filters) counts as present: the libbpf call decides.
bool has_filter(int ifindex, TcFilterId id) {
  if (!has_clsact(ifindex)) return false;
  std::unique_ptr<nl_sock, void (*)(nl_sock*)> sock(nl_socket_alloc(), nl_socket_free);
  if (!sock || nl_connect(sock.get(), NETLINK_ROUTE) < 0) return true;
  nl_cache* raw = nullptr;
  if (rtnl_cls_alloc_cache(sock.get(), ifindex, TC_H_MAKE(TC_H_CLSACT, TC_H_MIN_INGRESS), &raw) < 0)
    return true;
  std::unique_ptr<nl_cache, void (*)(nl_cache*)> cache(raw, nl_cache_free);
  for (nl_object* o = nl_cache_get_first(cache.get()); o; o = nl_cache_get_next(o)) {
    auto* cls = reinterpret_cast<rtnl_cls*>(o);
    if (rtnl_cls_get_prio(cls) == id.priority && rtnl_tc_get_handle(TC_CAST(cls)) == id.handle)
      return true;
  }
  return false;
}

}  // namespace

void tc_ingress_attach(int ifindex, int prog_fd, TcFilterId id) {
  bpf_tc_hook hook = ingress_hook(ifindex);
  int err = has_clsact(ifindex) ? 0 : bpf_tc_hook_create(&hook);
  if (err && err != -EEXIST)
    throw std::system_error(-err, std::generic_category(),
                            "cannot create clsact hook on " + device(ifindex));
  bpf_tc_opts opts = filter_opts(id);
  opts.prog_fd = prog_fd;
  opts.flags = BPF_TC_F_REPLACE;
  err = bpf_tc_attach(&hook, &opts);
  if (err)
    throw std::system_error(-err, std::generic_category(),
                            "cannot attach TC ingress program to " + device(ifindex));
}

bool tc_ingress_detach(int ifindex, TcFilterId id) {
  if (!has_filter(ifindex, id)) return false;
  bpf_tc_hook hook = ingress_hook(ifindex);
  bpf_tc_opts opts = filter_opts(id);  // flags, prog_fd and prog_id must stay 0 for detach
  int err = bpf_tc_detach(&hook, &opts);
  if (err == -ENOENT || err == -ENODEV || err == -EINVAL) {
    // EINVAL: no clsact qdisc on the device at all, nothing of ours to remove.
    return false;
  }
  if (err)
    throw std::system_error(-err, std::generic_category(),
                            "cannot detach TC ingress program from " + device(ifindex));
  return true;
}

std::optional<uint32_t> tc_ingress_program_id(int ifindex, TcFilterId id) {
  if (!has_filter(ifindex, id)) return std::nullopt;
  bpf_tc_hook hook = ingress_hook(ifindex);
  bpf_tc_opts opts = filter_opts(id);
  int err = bpf_tc_query(&hook, &opts);
  if (err == -ENOENT || err == -ENODEV || err == -EINVAL) return std::nullopt;
  if (err)
    throw std::system_error(-err, std::generic_category(),
                            "cannot query TC ingress filter on " + device(ifindex));
  return opts.prog_id;
}

}  // namespace kohaku::bpf
