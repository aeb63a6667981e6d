#include "common/netlink/address.h"

#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <netlink/msg.h>
#include <netlink/route/addr.h>
#include <sys/socket.h>

#include <algorithm>
#include <charconv>
#include <memory>
#include <new>
#include <stdexcept>

#include "common/log.h"
#include "common/netlink/link.h"

namespace kohaku::netlink {
namespace {

constexpr std::string_view kLog = "netlink";

int require_ifindex(const NlSocket& sock, std::string_view dev, const std::string& what) {
  LinkPtr link = fetch_link(sock, dev);
  if (!link) throw NetlinkError(what, "No such device", NLE_OBJ_NOTFOUND, ENODEV);
  return rtnl_link_get_ifindex(link.get());
}

RtAddrPtr build(int ifindex, const IfAddr& a) {
  RtAddrPtr obj(rtnl_addr_alloc());
  if (!obj) throw std::bad_alloc();
  rtnl_addr_set_ifindex(obj.get(), ifindex);
  rtnl_addr_set_family(obj.get(), AF_INET);
  AddrPtr local = make_nl_addr(a.addr, a.prefix);
  rtnl_addr_set_local(obj.get(), local.get());
  rtnl_addr_set_prefixlen(obj.get(), a.prefix);
  return obj;
}

struct ListState {
  int ifindex;
  std::vector<IfAddr> out;
};

// nl_msg_parse() callback: one address object libnl built from an RTM_NEWADDR message.
void take_address(nl_object* o, void* arg) {
  auto* state = static_cast<ListState*>(arg);
  auto* a = reinterpret_cast<rtnl_addr*>(o);
  if (rtnl_addr_get_ifindex(a) != state->ifindex || rtnl_addr_get_family(a) != AF_INET) return;
  auto ip = to_ipv4(rtnl_addr_get_local(a));
  if (!ip) return;
  state->out.push_back(IfAddr{*ip, static_cast<uint8_t>(rtnl_addr_get_prefixlen(a))});
}

int parse_address(nl_msg* msg, void* arg) {
  nl_msg_parse(msg, take_address, arg);
  return NL_OK;
}

// The IPv4 addresses of one device. The dump asks the kernel for this device only (strict
// checking, Linux 4.20+): an unfiltered dump lists every address of the namespace, which made
// ensuring one tunnel's address cost O(devices) and a reconcile pass O(devices^2). Without
// strict checking the kernel ignores the filter and the callback still keeps only this device.
std::vector<IfAddr> list_on(const NlSocket& sock, int ifindex, const std::string& what) {
  int one = 1;
  setsockopt(nl_socket_get_fd(sock.get()), SOL_NETLINK, NETLINK_GET_STRICT_CHK, &one, sizeof(one));
  ifaddrmsg req{};
  req.ifa_family = AF_INET;
  req.ifa_index = static_cast<uint32_t>(ifindex);
  std::unique_ptr<nl_msg, void (*)(nl_msg*)> msg(nlmsg_alloc_simple(RTM_GETADDR, NLM_F_DUMP),
                                                 nlmsg_free);
  if (!msg) throw std::bad_alloc();
  sock.check(nlmsg_append(msg.get(), &req, sizeof(req), NLMSG_ALIGNTO), what);
  sock.check(nl_send_auto(sock.get(), msg.get()), what);
  ListState state{ifindex, {}};
  // The socket's callbacks (error capture) plus ours, without changing the socket's own set.
  std::unique_ptr<nl_cb, void (*)(nl_cb*)> base(nl_socket_get_cb(sock.get()), nl_cb_put);
  std::unique_ptr<nl_cb, void (*)(nl_cb*)> cb(base ? nl_cb_clone(base.get()) : nullptr, nl_cb_put);
  if (!cb) throw std::bad_alloc();
  nl_cb_set(cb.get(), NL_CB_VALID, NL_CB_CUSTOM, parse_address, &state);
  sock.check(nl_recvmsgs(sock.get(), cb.get()), what);
  return state.out;
}

std::optional<int> owner_of(const NlSocket& sock, Ipv4Addr addr, const std::string& what) {
  nl_cache* raw = nullptr;
  sock.check(rtnl_addr_alloc_cache(sock.get(), &raw), what);
  CachePtr cache(raw);
  for (rtnl_addr* a : objects_of<rtnl_addr>(cache.get())) {
    if (rtnl_addr_get_family(a) != AF_INET) continue;
    if (auto ip = to_ipv4(rtnl_addr_get_local(a)); ip && *ip == addr)
      return rtnl_addr_get_ifindex(a);
  }
  return std::nullopt;
}

std::string on(std::string_view verb, const IfAddr& a, std::string_view dev) {
  return std::string(verb) + " address " + a.to_string() + " on " + std::string(dev);
}

}  // namespace

std::optional<IfAddr> IfAddr::try_parse(std::string_view text) {
  auto slash = text.find('/');
  if (slash == std::string_view::npos) return std::nullopt;
  auto ip = Ipv4Addr::try_parse(text.substr(0, slash));
  std::string_view p = text.substr(slash + 1);
  unsigned prefix = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), prefix);
  if (!ip || p.empty() || ec != std::errc() || end != p.data() + p.size() || prefix > 32 ||
      (p.size() > 1 && p[0] == '0')) {
    return std::nullopt;
  }
  return IfAddr{*ip, static_cast<uint8_t>(prefix)};
}

IfAddr IfAddr::parse(std::string_view text) {
  auto a = try_parse(text);
  if (!a) {
    throw std::invalid_argument("invalid interface address '" + std::string(text) +
                                "': want a.b.c.d/prefix");
  }
  return *a;
}

std::string IfAddr::to_string() const {
  return addr.to_string() + "/" + std::to_string(prefix);
}

std::vector<IfAddr> list_addresses(std::string_view dev) {
  std::string what = "list addresses on " + std::string(dev);
  NlSocket sock;
  return list_on(sock, require_ifindex(sock, dev, what), what);
}

std::optional<int> find_address_owner(Ipv4Addr addr) {
  NlSocket sock;
  return owner_of(sock, addr, "find the device holding " + addr.to_string());
}

void add_address(std::string_view dev, const IfAddr& a) {
  std::string what = on("add", a, dev);
  NlSocket sock;
  RtAddrPtr obj = build(require_ifindex(sock, dev, what), a);
  sock.check(rtnl_addr_add(sock.get(), obj.get(), NLM_F_EXCL), what);
}

void delete_address(std::string_view dev, const IfAddr& a) {
  std::string what = on("delete", a, dev);
  NlSocket sock;
  RtAddrPtr obj = build(require_ifindex(sock, dev, what), a);
  sock.check(rtnl_addr_delete(sock.get(), obj.get(), 0), what);
}

EnsureAction ensure_address(std::string_view dev, const IfAddr& a) {
  NlSocket sock;
  return ensure_address(dev, require_ifindex(sock, dev, on("ensure", a, dev)), a);
}

EnsureAction ensure_address(std::string_view dev, int ifindex, const IfAddr& a) {
  std::string what = on("ensure", a, dev);
  NlSocket sock;
  bool present = false;
  std::string removed;
  // Remove strays first: an old address in the same subnet would otherwise stay primary.
  for (const IfAddr& have : list_on(sock, ifindex, what)) {
    if (have == a) {
      present = true;
      continue;
    }
    RtAddrPtr obj = build(ifindex, have);
    sock.check(rtnl_addr_delete(sock.get(), obj.get(), 0), on("delete stray", have, dev));
    removed += (removed.empty() ? "" : ", ") + have.to_string();
  }
  if (present && !removed.empty()) {
    // Deleting a primary drops its secondaries unless promote_secondaries is set: look again.
    auto now = list_on(sock, ifindex, what);
    present = std::find(now.begin(), now.end(), a) != now.end();
  }
  bool added = !present;
  if (!present) {
    RtAddrPtr obj = build(ifindex, a);
    sock.check(rtnl_addr_add(sock.get(), obj.get(), NLM_F_EXCL), on("add", a, dev));
  }
  if (!removed.empty()) {
    log::warn(kLog, "address on " + std::string(dev) + " repaired: removed " + removed +
                        (added ? ", added " : ", kept ") + a.to_string());
    return EnsureAction::kRepaired;
  }
  if (added) {
    log::info(kLog, "added address " + a.to_string() + " on " + std::string(dev));
    return EnsureAction::kCreated;
  }
  return EnsureAction::kKept;
}

}  // namespace kohaku::netlink
