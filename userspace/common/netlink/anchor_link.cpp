#include "common/netlink/anchor_link.h"

#include <net/if.h>

#include <algorithm>
#include <stdexcept>

#include "common/log.h"
#include "common/netlink/link.h"

namespace kohaku::netlink {
namespace {

constexpr std::string_view kLog = "netlink";

// Creates the anchor with the first kind the kernel supports; returns that kind.
std::string create_anchor(const NlSocket& sock, std::string_view name,
                          std::span<const std::string_view> kinds) {
  std::string skipped;
  for (size_t i = 0; i < kinds.size(); ++i) {
    std::string k(kinds[i]);
    std::string what = "create anchor link " + std::string(name) + " (type " + k + ")";
    LinkPtr link = alloc_link();
    rtnl_link_set_name(link.get(), std::string(name).c_str());
    sock.check(rtnl_link_set_type(link.get(), k.c_str()), what);
    rtnl_link_set_flags(link.get(), IFF_UP);
    int rc = rtnl_link_add(sock.get(), link.get(), NLM_F_CREATE | NLM_F_EXCL);
    if (rc == -NLE_OPNOTSUPP && i + 1 < kinds.size()) {
      // No driver for this kind in this kernel: try the next one.
      sock.clear_error();
      skipped += (skipped.empty() ? "" : ", ") + k;
      continue;
    }
    sock.check(rc, what);
    if (!skipped.empty()) {
      log::warn(kLog, "link type " + skipped + " not supported by this kernel; anchor " +
                          std::string(name) + " is of kind " + k + " instead");
    }
    return k;
  }
  throw std::invalid_argument("anchor " + std::string(name) + ": no link kind to try");
}

}  // namespace

AnchorResult ensure_anchor(std::string_view name, const IfAddr& addr,
                           std::span<const std::string_view> kinds) {
  validate_link_name(name);
  if (kinds.empty()) throw std::invalid_argument("anchor " + std::string(name) + ": no link kind");
  AnchorResult result;
  NlSocket sock;
  LinkPtr link = fetch_link(sock, name);
  if (link) {
    LinkInfo have = describe_link(link.get());
    bool accepted = std::find(kinds.begin(), kinds.end(), have.kind) != kinds.end();
    if (!accepted) {
      log::warn(kLog, "recreating anchor " + std::string(name) + ": kind " +
                          (have.kind.empty() ? "none" : have.kind) + " is not an anchor kind");
      delete_link(name);
      result.kind = create_anchor(sock, name, kinds);
      result.action = EnsureAction::kRecreated;
    } else {
      result.kind = have.kind;
      if (!have.admin_up) {
        set_link_up(name, true);
        log::warn(kLog, "repaired anchor " + std::string(name) + ": down -> up");
        result.action = EnsureAction::kRepaired;
      }
    }
  } else {
    result.kind = create_anchor(sock, name, kinds);
    result.action = EnsureAction::kCreated;
  }
  result.address = ensure_address(name, addr);
  return result;
}

}  // namespace kohaku::netlink
