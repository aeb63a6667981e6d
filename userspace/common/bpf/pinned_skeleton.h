#pragma once
// The one way a daemon loads a BPF object: open -> share maps with an already loaded object ->
// adopt the pins whose layout matches, move aside the others -> load -> carry the moved maps'
// entries over by field name -> pin the programs. Every loader (host_forward, host_express, the
// runner's three programs, the L2 gateway guard) is a PinnedSkeleton; which maps are pinned is
// declared in the BPF source (`__uint(pinning, LIBBPF_PIN_BY_NAME)`), not in the loader.
//
//   PinnedSkeleton<host_forward> skel(KOHAKU_SKELETON(host_forward), {pin_dir, "bpf-host"});
//   skel.pin_program(skel->progs.host_forward, "host_forward");
#include <bpf/libbpf.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/bpf/error.h"
#include "common/bpf/pinned_maps.h"

namespace kohaku::bpf {

// The generated functions of one skeleton (bpftool gen skeleton).
template <class Skel>
struct SkeletonOps {
  const char* name;
  Skel* (*open)(const bpf_object_open_opts*);
  int (*load)(Skel*);
  void (*destroy)(Skel*);
};
#define KOHAKU_SKELETON(name)                               \
  ::kohaku::bpf::SkeletonOps<name> {                        \
#name, name##__open_opts, name##__load, name##__destroy \
  }

struct PinPlan {
  std::string pin_dir;  // "": nothing pinned, nothing adopted (tests of a program itself)
  std::string log_tag;  // prefix of the migration log lines
  // Maps taken from an object loaded before (by name): reused by fd, never pinned by this one.
  std::vector<std::pair<std::string, int>> shared;
  // Runs on the opened object before the layouts are compared (e.g. to size a map).
  std::function<void(bpf_object*)> configure;
};

struct LoadReport {
  std::vector<std::string> adopted;            // pinned maps reused as they were
  std::vector<PinnedMaps::Migrated> migrated;  // pinned maps of another layout, carried over
  bool adopted_or_carried(std::string_view map) const;
  std::vector<std::string> migrated_names() const;
};

// Loads an opened object as described at the top. Throws bpf::fail() naming the object (and the
// pin folder); on failure the pins are as they were.
LoadReport load_with_pins(bpf_object* obj, const char* name, const PinPlan& plan,
                          const std::function<int()>& load);

template <class Skel>
class PinnedSkeleton {
 public:
  PinnedSkeleton(SkeletonOps<Skel> ops, const PinPlan& plan)
      : skel_(open(ops, plan.pin_dir), ops.destroy), pin_dir_(plan.pin_dir) {
    report_ = load_with_pins(skel_->obj, ops.name, plan, [&] { return ops.load(skel_.get()); });
  }

  Skel* operator->() const { return skel_.get(); }
  Skel* get() const { return skel_.get(); }
  bpf_object* obj() const { return skel_->obj; }
  const LoadReport& report() const { return report_; }

  // Pins `prog` as pin_dir/<pin_name>, replacing an older pin atomically; no-op when unpinned.
  void pin_program(bpf_program* prog, const char* pin_name) const {
    if (!pin_dir_.empty()) pin_program_replacing(prog, pin_dir_ + "/" + pin_name);
  }

 private:
  static Skel* open(const SkeletonOps<Skel>& ops, const std::string& pin_dir) {
    bpf_object_open_opts opts{};
    opts.sz = sizeof(opts);
    opts.pin_root_path = pin_dir.empty() ? nullptr : pin_dir.c_str();
    Skel* s = ops.open(&opts);
    if (!s) fail(errno, "open BPF object", ops.name);
    return s;
  }

  std::unique_ptr<Skel, void (*)(Skel*)> skel_;
  std::string pin_dir_;
  LoadReport report_;
};

}  // namespace kohaku::bpf
