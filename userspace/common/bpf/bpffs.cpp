#include "common/bpf/bpffs.h"

#include <linux/magic.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>

#include <cerrno>
#include <filesystem>
#include <system_error>

namespace kohaku::bpf {
namespace {

constexpr const char* kDefaultBpffs = "/sys/fs/bpf";

bool below(const std::filesystem::path& path, const std::filesystem::path& root) {
  auto rel = path.lexically_normal().lexically_relative(root);
  return !rel.empty() && *rel.begin() != "..";
}

void make_dirs(const std::filesystem::path& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::system_error(ec, "cannot create bpffs directory " + dir.string());
}

void mount_bpffs(const std::filesystem::path& where) {
  make_dirs(where);
  if (::mount("bpf", where.c_str(), "bpf", 0, "mode=0700") != 0)
    throw std::system_error(errno, std::generic_category(),
                            "cannot mount bpffs at " + where.string());
}

}  // namespace

bool is_on_bpffs(const std::string& path) {
  struct statfs st {};
  return ::statfs(path.c_str(), &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

void ensure_bpffs_dir(const std::string& dir) {
  std::filesystem::path target = std::filesystem::path(dir).lexically_normal();
  if (!target.is_absolute())
    throw std::system_error(EINVAL, std::generic_category(),
                            "BPF pin directory must be absolute: " + dir);
  std::filesystem::path existing = target;
  while (!std::filesystem::exists(existing) && existing.has_parent_path() &&
         existing != existing.parent_path())
    existing = existing.parent_path();
  if (!is_on_bpffs(existing)) {
    std::filesystem::path root = kDefaultBpffs;
    if (target == root || below(target, root)) {
      if (!is_on_bpffs(root)) mount_bpffs(root);
    } else {
      mount_bpffs(target);
    }
  }
  make_dirs(target);
  if (!is_on_bpffs(target))
    throw std::system_error(ENOTSUP, std::generic_category(),
                            "BPF pin directory " + dir + " is not on a bpffs");
}

}  // namespace kohaku::bpf
