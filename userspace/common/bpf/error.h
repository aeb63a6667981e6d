#pragma once
// The one error of the BPF plumbing: a std::system_error whose text says what was attempted, on
// which object (map, program, pin, device) and the kernel's errno text, e.g.
//   "cannot update BPF map host_routes: No space left on device".
// libbpf returns negative errnos and sets errno; both forms are accepted.
#include <cerrno>
#include <string>
#include <string_view>
#include <system_error>

namespace kohaku::bpf {

[[noreturn]] inline void fail(int err, std::string_view action, std::string_view object) {
  if (err == 0) err = errno;
  std::string what = "cannot ";
  what.append(action);
  if (!object.empty()) what.append(" ").append(object);
  throw std::system_error(err < 0 ? -err : err, std::generic_category(), what);
}

}  // namespace kohaku::bpf
