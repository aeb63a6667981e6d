#pragma once
// What the bench tools that load their own BPF instrument (bench_bounce, bench_xdp_count) do
// before attaching it: find the device, open the skeleton, set its read-only data, load it. Each
// failure is one std::runtime_error naming the device or the instrument and the errno text.
#include <net/if.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>

namespace kohaku::bench {

// The ifindex of `dev`.
inline int device_ifindex(const std::string& dev) {
  const unsigned ifindex = if_nametoindex(dev.c_str());
  if (ifindex == 0) throw std::runtime_error("device " + dev + ": " + std::strerror(errno));
  return static_cast<int>(ifindex);
}

template <class Skel>
using SkeletonPtr = std::unique_ptr<Skel, void (*)(Skel*)>;

// The skeleton `open` opens (bpftool's NAME__open), destroyed with `destroy` when it goes.
template <class Skel>
SkeletonPtr<Skel> open_skeleton(Skel* (*open)(), void (*destroy)(Skel*), const std::string& what) {
  SkeletonPtr<Skel> skel(open(), destroy);
  if (!skel) throw std::runtime_error("open " + what + ": " + std::strerror(errno));
  return skel;
}

// NAME__load once its read-only data is set.
template <class Skel>
void load_skeleton(const SkeletonPtr<Skel>& skel, int (*load)(Skel*), const std::string& what) {
  if (int err = load(skel.get()); err)
    throw std::runtime_error("load " + what + ": " + std::strerror(-err));
}

}  // namespace kohaku::bench
