#pragma once
// Pinned maps across restarts and builds, for every loader (used through pinned_skeleton.h): a
// pinned map whose layout matches this build's is reused as it is (entries and counters kept); one
// whose layout differs is moved aside before the object loads and its entries are carried into the
// new map by field name afterwards (map_layout.h). Use around bpf_object__load():
//
//   PinnedMaps pins(obj, pin_dir, "bpf-host");   // before load: moves mismatching pins aside
//   if (load fails) { pins.restore(); throw ...; }
//   for (auto& name : pins.finish(obj)) ...      // after load: carries entries, drops the old
#include <bpf/libbpf.h>

#include <string>
#include <string_view>
#include <vector>

#include "common/unique_fd.h"

namespace kohaku::bpf {

class PinnedMaps {
 public:
  // Looks at every map of `obj` that has a pin path under pin_dir. Throws std::system_error /
  // std::runtime_error naming the pin when one cannot be opened or read.
  PinnedMaps(bpf_object* obj, std::string pin_dir, std::string_view log_tag);
  ~PinnedMaps();
  PinnedMaps(const PinnedMaps&) = delete;
  PinnedMaps& operator=(const PinnedMaps&) = delete;

  struct Migrated {
    std::string name;
    size_t carried = 0;  // entries carried over by field name
  };
  // After a successful load: copies the displaced maps' entries and removes them.
  std::vector<Migrated> finish(const bpf_object* obj);
  // After a failed load: puts the displaced pins back where they were.
  void restore();
  // The maps whose pins had this build's layout: libbpf reuses them as they are.
  const std::vector<std::string>& adopted() const { return adopted_; }

 private:
  struct Displaced {
    std::string name;
    std::string pin;    // where the map was pinned
    std::string aside;  // where it is pinned during the migration
    UniqueFd fd;
  };

  std::string pin_dir_;
  std::string log_tag_;
  std::vector<Displaced> displaced_;
  std::vector<std::string> adopted_;
};

}  // namespace kohaku::bpf

namespace kohaku::bpf {

// Pins `prog` at `path`, replacing a previous pin atomically (pinned under a temporary name, then
// renamed over the old one): the path always names a program. Throws bpf::fail().
void pin_program_replacing(bpf_program* prog, const std::string& path);

}  // namespace kohaku::bpf
