#pragma once
// Typed wrappers over the libbpf map calls every loader makes: errors are bpf::fail() naming the
// map, iteration reads keys first so a concurrent delete cannot derail it, and per-CPU values are
// summed field by field.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "common/bpf/error.h"

namespace kohaku::bpf {

// The map `name` of a (possibly not yet loaded) object; std::invalid_argument when it has none.
inline bpf_map* find_map(const bpf_object* obj, std::string_view name) {
  bpf_map* m = bpf_object__find_map_by_name(obj, std::string(name).c_str());
  if (!m) throw std::invalid_argument("no BPF map named " + std::string(name));
  return m;
}

inline int map_fd(const bpf_object* obj, std::string_view name) {
  return bpf_map__fd(find_map(obj, name));
}

// The kernel's id of a loaded program (what `bpftool prog` and TC/XDP queries show).
inline uint32_t program_id(int prog_fd, std::string_view name) {
  bpf_prog_info info{};
  uint32_t len = sizeof(info);
  if (int err = bpf_obj_get_info_by_fd(prog_fd, &info, &len); err)
    fail(err, "read the info of BPF program", name);
  return info.id;
}

// Every key, at most `limit` of them.
template <typename Key>
std::vector<Key> map_keys(int fd, size_t limit = SIZE_MAX) {
  std::vector<Key> keys;
  Key key{}, next{};
  const Key* prev = nullptr;
  while (keys.size() < limit && bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  return keys;
}

template <typename Key, typename Value>
std::vector<std::pair<Key, Value>> map_entries(int fd, size_t limit = SIZE_MAX) {
  std::vector<std::pair<Key, Value>> out;
  for (const Key& k : map_keys<Key>(fd, limit)) {
    Value v{};
    if (bpf_map_lookup_elem(fd, &k, &v) == 0) out.emplace_back(k, v);
  }
  return out;
}

inline void map_update(int fd, const void* key, const void* value, std::string_view map,
                       uint64_t flags = BPF_ANY) {
  if (bpf_map_update_elem(fd, key, value, flags) != 0) fail(errno, "update BPF map", map);
}

template <typename Value>
Value map_lookup(int fd, const void* key, std::string_view map) {
  Value v{};
  if (bpf_map_lookup_elem(fd, key, &v) != 0) fail(errno, "read BPF map", map);
  return v;
}

// false when the key was not there.
inline bool map_erase(int fd, const void* key, std::string_view map) {
  if (bpf_map_delete_elem(fd, key) == 0) return true;
  if (errno == ENOENT) return false;
  fail(errno, "delete from BPF map", map);
}

inline size_t possible_cpus() {
  int n = libbpf_num_possible_cpus();
  if (n <= 0) fail(n, "count possible CPUs", "");
  return static_cast<size_t>(n);
}

// Creates a zeroed per-CPU entry unless one exists (counters survive re-registration).
template <typename Value>
void percpu_ensure_zero(int fd, const void* key, const std::string& what) {
  std::vector<Value> zero(possible_cpus());
  if (bpf_map_update_elem(fd, key, zero.data(), BPF_NOEXIST) != 0 && errno != EEXIST)
    fail(errno, "create", what);
}

// The per-CPU values of `key` summed; Value must consist of uint64_t fields only.
template <typename Value>
std::optional<Value> percpu_sum(int fd, const void* key, const std::string& what) {
  static_assert(sizeof(Value) % sizeof(uint64_t) == 0, "counters must be all __u64");
  std::vector<Value> per_cpu(possible_cpus());
  if (bpf_map_lookup_elem(fd, key, per_cpu.data()) != 0) {
    if (errno == ENOENT) return std::nullopt;
    fail(errno, "read", what);
  }
  Value total{};
  uint64_t sum[sizeof(Value) / sizeof(uint64_t)] = {};
  for (const Value& v : per_cpu) {
    uint64_t f[sizeof(Value) / sizeof(uint64_t)];
    std::memcpy(f, &v, sizeof(v));
    for (size_t i = 0; i < std::size(f); ++i) sum[i] += f[i];
  }
  std::memcpy(&total, sum, sizeof(total));
  return total;
}

// The counters of a one-entry per-CPU array (key 0), summed; the entry always exists.
template <typename Value>
Value percpu_sum_single(int fd, std::string_view map) {
  uint32_t zero = 0;
  auto sum = percpu_sum<Value>(fd, &zero, "BPF map " + std::string(map));
  if (!sum) fail(ENOENT, "read BPF map", map);
  return *sum;
}

}  // namespace kohaku::bpf
