#include "common/bpf/tc_filter.h"

#include <bpf/libbpf.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <netlink/route/tc.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
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

using NlSockPtr = std::unique_ptr<nl_sock, void (*)(nl_sock*)>;

NlSockPtr connect_route() {
  NlSockPtr sock(nl_socket_alloc(), nl_socket_free);
  if (!sock || nl_connect(sock.get(), NETLINK_ROUTE) < 0) return NlSockPtr(nullptr, nl_socket_free);
  return sock;
}

// NL_CB_VALID callback: the kind of the qdisc in an RTM_NEWQDISC answer.
int read_qdisc_kind(nl_msg* msg, void* arg) {
  nlmsghdr* h = nlmsg_hdr(msg);
  if (h->nlmsg_type != RTM_NEWQDISC) return NL_SKIP;
  nlattr* tb[TCA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(tcmsg), tb, TCA_MAX, nullptr) < 0 || !tb[TCA_KIND]) return NL_SKIP;
  *static_cast<std::string*>(arg) = nla_get_string(tb[TCA_KIND]);
  return NL_OK;
}

// Whether the device has a clsact qdisc. Asked first because bpf_tc_hook_create() on an existing
// hook, and detach/query on a device without one, make libbpf print the kernel's complaint
// (e.g. on every device when switching datapaths). Unknown (netlink trouble) counts as missing:
// the libbpf call decides. One RTM_GETQDISC request for this device's ingress-side qdisc, not a
// dump: a dump lists every qdisc of the namespace, which made every attach and every reconcile
// tick cost O(devices) per device. The kernel sends the answer only with NLM_F_ECHO (it is
// built as a notification); it answers ENOENT when the device never had an ingress-side qdisc,
// and nothing (or EINVAL on older kernels) for the built-in noop one (clsact deleted).
bool has_clsact(int ifindex) {
  NlSockPtr sock = connect_route();
  if (!sock) return false;
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex;
  t.tcm_parent = TC_H_CLSACT;
  std::unique_ptr<nl_msg, void (*)(nl_msg*)> msg(nlmsg_alloc_simple(RTM_GETQDISC, NLM_F_ECHO),
                                                 nlmsg_free);
  if (!msg || nlmsg_append(msg.get(), &t, sizeof(t), NLMSG_ALIGNTO) < 0) return false;
  std::string kind;
  if (nl_socket_modify_cb(sock.get(), NL_CB_VALID, NL_CB_CUSTOM, read_qdisc_kind, &kind) < 0)
    return false;
  if (nl_send_sync(sock.get(), msg.release()) < 0) return false;  // takes the message
  return kind == "clsact";
}

// Filter `id` on the device's hook as one dump of that hook reports it.
struct FoundFilter {
  bool known = false;  // false: netlink trouble, nothing learned
  bool present = false;
  std::optional<uint32_t> prog_id;  // TCA_BPF_ID of a BPF filter
};

struct FilterQuery {
  TcFilterId id;
  FoundFilter* found;
};

// NL_CB_VALID callback over the dump: the entry with our priority and handle.
int read_filter(nl_msg* msg, void* arg) {
  auto* q = static_cast<FilterQuery*>(arg);
  nlmsghdr* h = nlmsg_hdr(msg);
  if (h->nlmsg_type != RTM_NEWTFILTER) return NL_SKIP;
  const auto* t = static_cast<const tcmsg*>(nlmsg_data(h));
  if ((TC_H_MAJ(t->tcm_info) >> 16) != q->id.priority || t->tcm_handle != q->id.handle)
    return NL_SKIP;
  q->found->present = true;
  nlattr* tb[TCA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(tcmsg), tb, TCA_MAX, nullptr) < 0 || !tb[TCA_OPTIONS]) return NL_OK;
  nlattr* opt[TCA_BPF_MAX + 1] = {};
  if (nla_parse_nested(opt, TCA_BPF_MAX, tb[TCA_OPTIONS], nullptr) == 0 && opt[TCA_BPF_ID])
    q->found->prog_id = nla_get_u32(opt[TCA_BPF_ID]);
  return NL_OK;
}

// One RTM_GETTFILTER dump of the device's hook. It also carries the BPF program id, so a query
// needs no second request; on a device without clsact the dump is empty (not an error), so
// nothing needs asking first either.
FoundFilter find_filter(int ifindex, TcDirection direction, TcFilterId id) {
  FoundFilter found;
  NlSockPtr sock = connect_route();
  if (!sock) return found;
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex;
  t.tcm_parent = TC_H_MAKE(TC_H_CLSACT,
                           direction == TcDirection::kIngress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
  std::unique_ptr<nl_msg, void (*)(nl_msg*)> msg(nlmsg_alloc_simple(RTM_GETTFILTER, NLM_F_DUMP),
                                                 nlmsg_free);
  if (!msg || nlmsg_append(msg.get(), &t, sizeof(t), NLMSG_ALIGNTO) < 0) return found;
  FoundFilter seen;
  FilterQuery q{id, &seen};
  if (nl_socket_modify_cb(sock.get(), NL_CB_VALID, NL_CB_CUSTOM, read_filter, &q) < 0 ||
      nl_send_auto(sock.get(), msg.get()) < 0 || nl_recvmsgs_default(sock.get()) < 0)
    return found;
  seen.known = true;
  return seen;
}

// Whether filter `id` sits on the device's hook. Unknown (netlink trouble) counts as present.
bool has_filter(int ifindex, TcDirection direction, TcFilterId id) {
  FoundFilter f = find_filter(ifindex, direction, id);
  return !f.known || f.present;
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
  FoundFilter f = find_filter(ifindex, direction, id);
  if (f.known && !f.present) return std::nullopt;
  if (f.prog_id) return f.prog_id;
  bpf_tc_hook hook = make_hook(ifindex, direction);
  bpf_tc_opts opts = make_opts(id);
  if (bpf_tc_query(&hook, &opts) != 0) return std::nullopt;
  return opts.prog_id;
}

}  // namespace kohaku
