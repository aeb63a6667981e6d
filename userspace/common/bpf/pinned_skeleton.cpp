#include "common/bpf/pinned_skeleton.h"

#include <algorithm>

#include "common/bpf/bpffs.h"
#include "common/bpf/map_io.h"

namespace kohaku::bpf {

bool LoadReport::adopted_or_carried(std::string_view map) const {
  if (std::find(adopted.begin(), adopted.end(), map) != adopted.end()) return true;
  return std::any_of(migrated.begin(), migrated.end(),
                     [&](const PinnedMaps::Migrated& m) { return m.name == map && m.carried > 0; });
}

std::vector<std::string> LoadReport::migrated_names() const {
  std::vector<std::string> out;
  for (const auto& m : migrated) out.push_back(m.name);
  return out;
}

LoadReport load_with_pins(bpf_object* obj, const char* name, const PinPlan& plan,
                          const std::function<int()>& load) {
  bool pinned = !plan.pin_dir.empty();
  // Without a pin folder libbpf would pin LIBBPF_PIN_BY_NAME maps at its default root.
  if (!pinned) {
    bpf_map* map;
    bpf_object__for_each_map(map, obj) bpf_map__set_pin_path(map, nullptr);
  }
  for (const auto& [map_name, fd] : plan.shared) {
    bpf_map* map = find_map(obj, map_name);
    bpf_map__set_pin_path(map, nullptr);
    if (int err = bpf_map__reuse_fd(map, fd); err)
      fail(err, "share BPF map " + map_name + " with", name);
  }
  if (plan.configure) plan.configure(obj);
  if (pinned) ensure_bpffs_dir(plan.pin_dir);

  PinnedMaps pins(obj, plan.pin_dir, plan.log_tag);
  if (int err = load(); err) {
    int saved = errno;
    pins.restore();
    fail(err ? err : saved, "load BPF object",
         std::string(name) + (pinned ? " with maps pinned in " + plan.pin_dir : ""));
  }
  LoadReport report;
  report.adopted = pins.adopted();
  report.migrated = pins.finish(obj);
  return report;
}

}  // namespace kohaku::bpf
