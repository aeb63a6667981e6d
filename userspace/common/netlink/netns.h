#pragma once
// Network namespaces as owned file descriptors, and running code inside one.
//
// A netlink socket belongs to the namespace of the thread that creates it, so every operation of
// this layer can target another namespace by running inside run_in_netns(): the callable runs on
// a short-lived helper thread that has entered the namespace, and the caller's thread (and the
// rest of the process) never changes namespace.
#include <sys/types.h>

#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>

namespace kohaku::netlink {

class Netns {
 public:
  // A namespace file: /var/run/netns/NAME, /proc/PID/ns/net, ...
  static Netns open(const std::string& path);
  static Netns of_pid(pid_t pid);
  static Netns current();  // the calling thread's namespace
  // A fresh namespace referenced only by this object (and what is later moved into it): it
  // disappears with the last reference, so nothing is left behind even after a crash.
  static Netns create();

  Netns(Netns&& other) noexcept;
  Netns& operator=(Netns&& other) noexcept;
  Netns(const Netns&) = delete;
  Netns& operator=(const Netns&) = delete;
  ~Netns();

  int fd() const { return fd_; }
  const std::string& description() const { return description_; }
  // Inode number: equal for two handles on the same namespace.
  unsigned long inode() const;

 private:
  Netns(int fd, std::string description) : fd_(fd), description_(std::move(description)) {}
  int fd_ = -1;
  std::string description_;
};

// Runs fn on a helper thread that entered `ns`; waits, then returns its result or rethrows.
void run_in_netns_impl(const Netns& ns, const std::function<void()>& fn);

template <class F>
auto run_in_netns(const Netns& ns, F&& fn) -> std::invoke_result_t<F&> {
  using R = std::invoke_result_t<F&>;
  if constexpr (std::is_void_v<R>) {
    run_in_netns_impl(ns, [&fn] { fn(); });
  } else {
    std::optional<R> result;
    run_in_netns_impl(ns, [&fn, &result] { result.emplace(fn()); });
    return std::move(*result);
  }
}

}  // namespace kohaku::netlink
