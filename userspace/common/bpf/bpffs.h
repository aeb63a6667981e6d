#pragma once
// The BPF filesystem that pins live in.
#include <string>

namespace kohaku::bpf {

// True when `path` exists and lies on a bpffs.
bool is_on_bpffs(const std::string& path);

// Makes `dir` a directory on a bpffs, creating parents. When the nearest existing ancestor is not
// on a bpffs, mounts one: at /sys/fs/bpf for paths below it (the conventional place, visible to
// bpftool and to every later process), else at `dir` itself. Throws std::system_error naming the
// path on failure.
void ensure_bpffs_dir(const std::string& dir);

}  // namespace kohaku::bpf
