#include "common/netlink/nl_socket.h"

#include <linux/netlink.h>
#include <netlink/attr.h>
#include <netlink/msg.h>
#include <netlink/netlink.h>
#include <sys/socket.h>

#include <cstring>

namespace kohaku::netlink {
namespace {

std::string compose(std::string_view operation, std::string_view reason) {
  std::string s(operation);
  s.append(": ").append(reason);
  return s;
}

// Records the kernel's errno and extended-ack message, then lets libnl report the error as usual.
int on_error(sockaddr_nl*, nlmsgerr* err, void* arg) {
  auto* state = static_cast<NlSocket::ErrState*>(arg);
  state->last_errno = -err->error;
  state->ext_msg.clear();
  // The error header is followed by the request (or only its header when capped), then TLVs.
  auto* outer = reinterpret_cast<nlmsghdr*>(reinterpret_cast<char*>(err) - NLMSG_HDRLEN);
  if ((outer->nlmsg_flags & NLM_F_ACK_TLVS) != 0) {
    size_t consumed = sizeof(nlmsgerr);
    if ((outer->nlmsg_flags & NLM_F_CAPPED) == 0) {
      consumed += NLMSG_ALIGN(err->msg.nlmsg_len) - sizeof(nlmsghdr);
    }
    size_t total = outer->nlmsg_len - NLMSG_HDRLEN;
    if (consumed < total) {
      nlattr* tb[NLMSGERR_ATTR_MAX + 1] = {};
      auto* head = reinterpret_cast<nlattr*>(reinterpret_cast<char*>(err) + consumed);
      if (nla_parse(tb, NLMSGERR_ATTR_MAX, head, static_cast<int>(total - consumed), nullptr) ==
              0 &&
          tb[NLMSGERR_ATTR_MSG] != nullptr) {
        state->ext_msg = nla_get_string(tb[NLMSGERR_ATTR_MSG]);
      }
    }
  }
  return NL_STOP;
}

}  // namespace

NetlinkError::NetlinkError(std::string operation, std::string reason, int nl_error, int sys_errno)
    : std::runtime_error(compose(operation, reason)),
      operation_(std::move(operation)),
      reason_(std::move(reason)),
      nl_error_(nl_error),
      sys_errno_(sys_errno) {}

NlSocket::NlSocket() : sock_(nl_socket_alloc()), state_(std::make_unique<ErrState>()) {
  if (!sock_) throw NetlinkError("allocate netlink socket", "out of memory", NLE_NOMEM, ENOMEM);
  int rc = nl_connect(sock_.get(), NETLINK_ROUTE);
  if (rc < 0) {
    throw NetlinkError("connect route netlink socket", nl_geterror(rc), -rc, 0);
  }
  int one = 1;
  // Best effort: without extended ACK the errno text alone is still reported.
  (void)setsockopt(nl_socket_get_fd(sock_.get()), SOL_NETLINK, NETLINK_EXT_ACK, &one, sizeof one);
  nl_socket_modify_err_cb(sock_.get(), NL_CB_CUSTOM, on_error, state_.get());
}

int NlSocket::check(int rc, std::string_view operation) const {
  if (rc < 0) fail(rc, operation);
  clear_error();
  return rc;
}

void NlSocket::clear_error() const {
  state_->last_errno = 0;
  state_->ext_msg.clear();
}

void NlSocket::fail(int rc, std::string_view operation) const {
  int nl_code = rc < 0 ? -rc : rc;
  std::string reason;
  int sys = state_->last_errno;
  // Only trust the recorded errno when it is the one libnl turned into this code.
  if (sys > 0 && nl_syserr2nlerr(sys) != nl_code) sys = 0;
  if (sys > 0) {
    reason = std::strerror(sys);
    if (!state_->ext_msg.empty()) reason.append(" (").append(state_->ext_msg).append(")");
  } else {
    reason = nl_geterror(nl_code);
  }
  clear_error();
  throw NetlinkError(std::string(operation), std::move(reason), nl_code, sys);
}

void throw_errno(std::string_view operation, int err) {
  throw NetlinkError(std::string(operation), std::strerror(err), 0, err);
}

}  // namespace kohaku::netlink
