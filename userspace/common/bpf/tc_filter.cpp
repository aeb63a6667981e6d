#include "common/bpf/tc_filter.h"

#include <arpa/inet.h>
#include <bpf/bpf.h>
#include <linux/if_ether.h>
#include <linux/pkt_cls.h>
#include <linux/pkt_sched.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>

#include <cerrno>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "common/netlink/nl_socket.h"

namespace kohaku {
namespace {

using netlink::NlSocket;
using NlMsgPtr = std::unique_ptr<nl_msg, void (*)(nl_msg*)>;

std::string device_name(int ifindex) {
  char name[IF_NAMESIZE] = {};
  return if_indextoname(static_cast<unsigned>(ifindex), name)
             ? std::string(name)
             : "ifindex " + std::to_string(ifindex);
}

std::string where(int ifindex, TcDirection direction) {
  return "TC " + to_string(direction) + " of " + device_name(ifindex);
}

NlMsgPtr new_request(int type, int flags, const tcmsg& t, std::string_view operation,
                     const NlSocket& sock) {
  NlMsgPtr msg(nlmsg_alloc_simple(type, flags), nlmsg_free);
  if (!msg) sock.fail(-NLE_NOMEM, operation);
  tcmsg copy = t;
  if (nlmsg_append(msg.get(), &copy, sizeof(copy), NLMSG_ALIGNTO) < 0)
    sock.fail(-NLE_NOMEM, operation);
  return msg;
}

// The device's clsact qdisc as the kernel reports it.
struct Clsact {
  bool known = false;  // false: netlink trouble, nothing learned
  bool present = false;
  TcBlocks shared;  // the shared block per direction, 0 for a private one
};

// NL_CB_VALID callback: an RTM_NEWQDISC answer for the device's ingress-side qdisc.
int read_qdisc(nl_msg* msg, void* arg) {
  auto* c = static_cast<Clsact*>(arg);
  nlmsghdr* h = nlmsg_hdr(msg);
  if (h->nlmsg_type != RTM_NEWQDISC) return NL_SKIP;
  nlattr* tb[TCA_MAX + 1] = {};
  if (nlmsg_parse(h, sizeof(tcmsg), tb, TCA_MAX, nullptr) < 0 || !tb[TCA_KIND]) return NL_SKIP;
  if (std::string_view(nla_get_string(tb[TCA_KIND])) != "clsact") return NL_SKIP;
  c->present = true;
  if (tb[TCA_INGRESS_BLOCK]) c->shared.ingress = nla_get_u32(tb[TCA_INGRESS_BLOCK]);
  if (tb[TCA_EGRESS_BLOCK]) c->shared.egress = nla_get_u32(tb[TCA_EGRESS_BLOCK]);
  return NL_OK;
}

// One RTM_GETQDISC request for this device's ingress-side qdisc, not a dump: a dump lists every
// qdisc of the namespace, which made every attach and every reconcile tick cost O(devices) per
// device. The kernel sends the answer only with NLM_F_ECHO (it is built as a notification); it
// answers ENOENT when the device never had an ingress-side qdisc, and nothing (or EINVAL on older
// kernels) for the built-in noop one (clsact deleted): both mean no clsact.
Clsact query_clsact(int ifindex) {
  Clsact c;
  try {
    NlSocket sock;
    tcmsg t{};
    t.tcm_family = AF_UNSPEC;
    t.tcm_ifindex = ifindex;
    t.tcm_parent = TC_H_CLSACT;
    NlMsgPtr msg = new_request(RTM_GETQDISC, NLM_F_ECHO, t, "query clsact", sock);
    if (nl_socket_modify_cb(sock.get(), NL_CB_VALID, NL_CB_CUSTOM, read_qdisc, &c) < 0) return c;
    int rc = nl_send_sync(sock.get(), msg.release());  // takes the message
    int err = sock.last_errno();
    if (rc < 0 && err != ENOENT && err != EINVAL) return c;
    c.known = true;
  } catch (const netlink::NetlinkError&) {
  }
  return c;
}

void create_clsact(int ifindex, TcBlocks blocks, TcDirection direction) {
  const std::string operation = "creating clsact for " + where(ifindex, direction);
  NlSocket sock;
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  t.tcm_ifindex = ifindex;
  t.tcm_handle = TC_H_MAKE(TC_H_CLSACT, 0);
  t.tcm_parent = TC_H_CLSACT;
  NlMsgPtr msg = new_request(RTM_NEWQDISC, NLM_F_CREATE | NLM_F_EXCL, t, operation, sock);
  if (nla_put_string(msg.get(), TCA_KIND, "clsact") < 0 ||
      (blocks.ingress && nla_put_u32(msg.get(), TCA_INGRESS_BLOCK, blocks.ingress) < 0) ||
      (blocks.egress && nla_put_u32(msg.get(), TCA_EGRESS_BLOCK, blocks.egress) < 0))
    sock.fail(-NLE_NOMEM, operation);
  int rc = nl_send_sync(sock.get(), msg.release());
  if (rc < 0 && sock.last_errno() == EEXIST) return;  // another process was faster: use it
  sock.check(rc, operation);
}

// Where a filter request goes: the device's own hook, or the shared block it is bound to.
tcmsg filter_target(int ifindex, TcDirection direction, uint32_t block, TcFilterId id) {
  tcmsg t{};
  t.tcm_family = AF_UNSPEC;
  if (block != 0) {
    t.tcm_ifindex = TCM_IFINDEX_MAGIC_BLOCK;
    t.tcm_block_index = block;
  } else {
    t.tcm_ifindex = ifindex;
    t.tcm_parent = TC_H_MAKE(
        TC_H_CLSACT, direction == TcDirection::kIngress ? TC_H_MIN_INGRESS : TC_H_MIN_EGRESS);
  }
  t.tcm_handle = id.handle;
  t.tcm_info = TC_H_MAKE(id.priority << 16, htons(ETH_P_ALL));
  return t;
}

uint32_t block_of(const Clsact& c, TcDirection direction) {
  return direction == TcDirection::kIngress ? c.shared.ingress : c.shared.egress;
}

std::string target_text(int ifindex, TcDirection direction, uint32_t block) {
  std::string text = where(ifindex, direction);
  if (block != 0) text += " (shared TC block " + std::to_string(block) + ")";
  return text;
}

// "name:[id]", the filter name tc(8) and libbpf give a BPF filter.
std::string filter_name(int prog_fd) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) != 0) return "fd:" + std::to_string(prog_fd);
  return std::string(info.name) + ":[" + std::to_string(info.id) + "]";
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
// nothing needs asking first either. Asked by device, the kernel lists a shared block's filters.
FoundFilter find_filter(int ifindex, TcDirection direction, TcFilterId id) {
  FoundFilter found;
  try {
    NlSocket sock;
    tcmsg t = filter_target(ifindex, direction, 0, id);
    t.tcm_handle = 0;
    t.tcm_info = 0;
    NlMsgPtr msg = new_request(RTM_GETTFILTER, NLM_F_DUMP, t, "list TC filters", sock);
    FoundFilter seen;
    FilterQuery q{id, &seen};
    if (nl_socket_modify_cb(sock.get(), NL_CB_VALID, NL_CB_CUSTOM, read_filter, &q) < 0 ||
        nl_send_auto(sock.get(), msg.get()) < 0 || nl_recvmsgs_default(sock.get()) < 0)
      return found;
    seen.known = true;
    return seen;
  } catch (const netlink::NetlinkError&) {
    return found;
  }
}

}  // namespace

std::string to_string(TcDirection direction) {
  return direction == TcDirection::kIngress ? "ingress" : "egress";
}

void tc_attach(int ifindex, TcDirection direction, TcFilterId id, int prog_fd,
               TcBlocks create_with) {
  Clsact c = query_clsact(ifindex);
  if (!c.present) {
    create_clsact(ifindex, create_with, direction);
    c = query_clsact(ifindex);
    // Unknown (netlink trouble): what we asked for is the likeliest state; the kernel says
    // "shared" or "no such hook" below if not.
    if (!c.present) c.shared = create_with;
  }
  uint32_t block = block_of(c, direction);
  const std::string operation =
      "attaching BPF program to " + target_text(ifindex, direction, block);
  NlSocket sock;
  NlMsgPtr msg = new_request(RTM_NEWTFILTER, NLM_F_CREATE | NLM_F_REPLACE,
                             filter_target(ifindex, direction, block, id), operation, sock);
  nlattr* options = nullptr;
  if (nla_put_string(msg.get(), TCA_KIND, "bpf") < 0 ||
      !(options = nla_nest_start(msg.get(), TCA_OPTIONS)) ||
      nla_put_u32(msg.get(), TCA_BPF_FD, static_cast<uint32_t>(prog_fd)) < 0 ||
      nla_put_string(msg.get(), TCA_BPF_NAME, filter_name(prog_fd).c_str()) < 0 ||
      nla_put_u32(msg.get(), TCA_BPF_FLAGS, TCA_BPF_FLAG_ACT_DIRECT) < 0)
    sock.fail(-NLE_NOMEM, operation);
  nla_nest_end(msg.get(), options);
  sock.check(nl_send_sync(sock.get(), msg.release()), operation);
}

bool tc_ensure_attached(int ifindex, TcDirection direction, TcFilterId id, int prog_fd,
                        TcBlocks create_with) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (bpf_obj_get_info_by_fd(prog_fd, &info, &len) == 0 &&
      tc_attached_program(ifindex, direction, id) == info.id)
    return false;
  tc_attach(ifindex, direction, id, prog_fd, create_with);
  return true;
}

bool tc_detach(int ifindex, TcDirection direction, TcFilterId id) {
  Clsact c = query_clsact(ifindex);
  if (c.known && !c.present) return false;
  uint32_t block = block_of(c, direction);
  const std::string operation =
      "detaching BPF program from " + target_text(ifindex, direction, block);
  NlSocket sock;
  NlMsgPtr msg =
      new_request(RTM_DELTFILTER, 0, filter_target(ifindex, direction, block, id), operation, sock);
  if (nla_put_string(msg.get(), TCA_KIND, "bpf") < 0) sock.fail(-NLE_NOMEM, operation);
  int rc = nl_send_sync(sock.get(), msg.release());
  int err = sock.last_errno();
  if (rc < 0 && (err == ENOENT || err == ENODEV || err == EINVAL)) return false;
  sock.check(rc, operation);
  return true;
}

std::optional<uint32_t> tc_attached_program(int ifindex, TcDirection direction, TcFilterId id) {
  FoundFilter f = find_filter(ifindex, direction, id);
  if (!f.known || !f.present) return std::nullopt;
  return f.prog_id;
}

std::optional<uint32_t> tc_shared_block(int ifindex, TcDirection direction) {
  uint32_t block = block_of(query_clsact(ifindex), direction);
  if (block == 0) return std::nullopt;
  return block;
}

}  // namespace kohaku
