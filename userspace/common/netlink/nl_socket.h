#pragma once
// A route-netlink socket (libnl3) owned by one object or one operation, and the error type every
// netlink call in this layer throws.
//
// Threading: an NlSocket is never shared across threads. Every public operation of this layer
// opens its own socket, so the free functions may be called from any thread at once. A socket
// belongs to the network namespace its creating thread was in (see netns.h).
#include <netlink/errno.h>
#include <netlink/socket.h>

#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>

namespace kohaku::netlink {

// what() reads "<operation>: <reason>", e.g.
// "create vxlan vxkr3 (VNI 103, remote 192.168.1.5): File exists".
class NetlinkError : public std::runtime_error {
 public:
  NetlinkError(std::string operation, std::string reason, int nl_error, int sys_errno);

  const std::string& operation() const { return operation_; }
  const std::string& reason() const { return reason_; }
  int nl_error() const { return nl_error_; }    // libnl code (positive, NLE_*), 0 when not libnl
  int sys_errno() const { return sys_errno_; }  // kernel errno when known, else 0

 private:
  std::string operation_;
  std::string reason_;
  int nl_error_;
  int sys_errno_;
};

class NlSocket {
 public:
  // Connected NETLINK_ROUTE socket in the calling thread's network namespace, with extended ACK
  // enabled so kernel error strings ("Unknown device type") reach the exception text.
  NlSocket();
  NlSocket(const NlSocket&) = delete;
  NlSocket& operator=(const NlSocket&) = delete;

  nl_sock* get() const { return sock_.get(); }

  // Throws NetlinkError for a negative libnl return code; returns rc otherwise.
  int check(int rc, std::string_view operation) const;
  [[noreturn]] void fail(int rc, std::string_view operation) const;

  // Kernel errno of the last NLMSG_ERROR seen on this socket (0 if none); libnl folds errnos into
  // coarser NLE_* codes, so the raw value is kept to report "File exists" rather than "Object
  // exists" and to tell ENODEV from other "not found" cases.
  int last_errno() const { return state_->last_errno; }
  // Forget a recorded error that the caller handled (e.g. "no such device" on a lookup).
  void clear_error() const;

  struct ErrState {
    int last_errno = 0;
    std::string ext_msg;
  };

 private:
  struct Deleter {
    void operator()(nl_sock* s) const { nl_socket_free(s); }
  };
  std::unique_ptr<nl_sock, Deleter> sock_;
  // Heap-allocated so the error callback's pointer stays valid however the NlSocket is held.
  std::unique_ptr<ErrState> state_;
};

// Throws a NetlinkError for an operation that failed outside netlink (a syscall), with strerror.
[[noreturn]] void throw_errno(std::string_view operation, int err);

}  // namespace kohaku::netlink
