#include "common/bpf/pinned_maps.h"

#include <bpf/bpf.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <stdexcept>
#include <system_error>

#include "common/bpf/error.h"
#include "common/bpf/map_layout.h"
#include "common/log.h"

namespace kohaku::bpf {

PinnedMaps::PinnedMaps(bpf_object* obj, std::string pin_dir, std::string_view log_tag)
    : pin_dir_(std::move(pin_dir)), log_tag_(log_tag) {
  bpf_map* map;
  bpf_object__for_each_map(map, obj) {
    const char* pin_path = bpf_map__pin_path(map);
    if (!pin_path) continue;
    std::string pin = pin_path;
    if (!std::filesystem::exists(pin)) continue;
    UniqueFd fd(bpf_obj_get(pin.c_str()));
    if (!fd) fail(errno, "open pinned BPF map", pin);
    MapLayout have;
    try {
      have = map_layout_of_fd(fd.get());
    } catch (const std::exception& e) {
      throw std::runtime_error("pinned " + pin + ": " + e.what());
    }
    MapLayout want = map_layout_of(obj, map);
    if (have == want) {
      adopted_.push_back(bpf_map__name(map));
      continue;
    }
    log::warn(log_tag_, "pinned map " + pin + " has another layout (" + have.describe() +
                            "; this build: " + want.describe() + "): migrating");
    // bpffs reserves dots in names, hence the prefix rather than a suffix.
    std::string aside = pin_dir_ + "/migrating_" + bpf_map__name(map);
    std::filesystem::remove(aside);
    if (std::rename(pin.c_str(), aside.c_str()) != 0) fail(errno, "move aside", pin);
    displaced_.push_back(Displaced{bpf_map__name(map), pin, aside, std::move(fd)});
  }
}

PinnedMaps::~PinnedMaps() = default;

std::vector<PinnedMaps::Migrated> PinnedMaps::finish(const bpf_object* obj) {
  std::vector<Migrated> migrated;
  for (Displaced& d : displaced_) {
    const bpf_map* m = bpf_object__find_map_by_name(obj, d.name.c_str());
    size_t carried = carry_entries_by_field_name(d.fd.get(), obj, m);
    log::info(log_tag_, "migrated map " + d.name + ": carried " + std::to_string(carried) +
                            " entries over by field name");
    std::filesystem::remove(d.aside);
    migrated.push_back(Migrated{d.name, carried});
  }
  displaced_.clear();
  return migrated;
}

void PinnedMaps::restore() {
  for (const Displaced& d : displaced_) std::rename(d.aside.c_str(), d.pin.c_str());
  displaced_.clear();
}

}  // namespace kohaku::bpf

namespace kohaku::bpf {

void pin_program_replacing(bpf_program* prog, const std::string& path) {
  std::filesystem::path p(path);
  std::string tmp = (p.parent_path() / ("new_" + p.filename().string())).string();
  std::filesystem::remove(tmp);
  if (int err = bpf_program__pin(prog, tmp.c_str()); err) fail(err, "pin BPF program at", tmp);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) fail(errno, "pin BPF program at", path);
}

}  // namespace kohaku::bpf
