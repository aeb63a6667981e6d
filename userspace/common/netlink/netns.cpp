#include "common/netlink/netns.h"

#include <fcntl.h>
#include <linux/nsfs.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <thread>

#include "common/netlink/nl_socket.h"

namespace kohaku::netlink {

Netns Netns::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw_errno("open network namespace " + path, errno);
  Netns ns(fd, path);
  // Any file opens; only an nsfs file of type CLONE_NEWNET is a network namespace. Checked here
  // so "/etc/hostname" is refused as such, not later as a failed setns().
  int type = ::ioctl(fd, NS_GET_NSTYPE);
  if (type != CLONE_NEWNET)
    throw_errno(path + " is not a network namespace", type < 0 ? errno : EINVAL);
  return ns;
}

Netns Netns::of_pid(pid_t pid) {
  if (pid <= 0) throw_errno("open network namespace of pid " + std::to_string(pid), ESRCH);
  return open("/proc/" + std::to_string(pid) + "/ns/net");
}

Netns Netns::current() {
  // thread-self, not self: helper threads may sit in another namespace than the main thread.
  Netns ns = open("/proc/thread-self/ns/net");
  ns.description_ = "current network namespace";
  return ns;
}

Netns Netns::create() {
  int fd = -1;
  int err = 0;
  // unshare on a throwaway thread so the calling thread keeps its namespace.
  std::thread t([&] {
    if (::unshare(CLONE_NEWNET) != 0) {
      err = errno;
      return;
    }
    fd = ::open("/proc/thread-self/ns/net", O_RDONLY | O_CLOEXEC);
    if (fd < 0) err = errno;
  });
  t.join();
  if (fd < 0) throw_errno("create network namespace", err);
  return Netns(fd, "anonymous network namespace");
}

Netns::Netns(Netns&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)), description_(std::move(other.description_)) {}

Netns& Netns::operator=(Netns&& other) noexcept {
  if (this != &other) {
    if (fd_ >= 0) ::close(fd_);
    fd_ = std::exchange(other.fd_, -1);
    description_ = std::move(other.description_);
  }
  return *this;
}

Netns::~Netns() {
  if (fd_ >= 0) ::close(fd_);
}

unsigned long Netns::inode() const {
  struct stat st {};
  if (::fstat(fd_, &st) != 0) throw_errno("stat " + description_, errno);
  return st.st_ino;
}

void run_in_netns_impl(const Netns& ns, const std::function<void()>& fn) {
  std::exception_ptr failure;
  std::thread t([&] {
    try {
      if (::setns(ns.fd(), CLONE_NEWNET) != 0) throw_errno("enter " + ns.description(), errno);
      fn();
    } catch (...) {
      failure = std::current_exception();
    }
  });
  t.join();
  if (failure) std::rethrow_exception(failure);
}

}  // namespace kohaku::netlink
