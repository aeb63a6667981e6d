#pragma once
// Small typed wrappers over the libbpf map calls the host's loaders make: errors become
// std::system_error naming the map, iteration reads keys first so a concurrent delete cannot
// derail it, and per-CPU values are summed field by field.
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

namespace kohaku::bpf {

[[noreturn]] inline void fail_errno(int err, const std::string& what) {
  throw std::system_error(err < 0 ? -err : err, std::generic_category(), what);
}

template <typename Key>
std::vector<Key> map_keys(int fd) {
  std::vector<Key> keys;
  Key key{}, next{};
  const Key* prev = nullptr;
  while (bpf_map_get_next_key(fd, prev, &next) == 0) {
    keys.push_back(next);
    key = next;
    prev = &key;
  }
  return keys;
}

template <typename Key, typename Value>
std::vector<std::pair<Key, Value>> map_entries(int fd) {
  std::vector<std::pair<Key, Value>> out;
  for (const Key& k : map_keys<Key>(fd)) {
    Value v{};
    if (bpf_map_lookup_elem(fd, &k, &v) == 0) out.emplace_back(k, v);
  }
  return out;
}

inline void map_update(int fd, const void* key, const void* value, const char* map,
                       uint64_t flags = BPF_ANY) {
  if (bpf_map_update_elem(fd, key, value, flags) != 0)
    fail_errno(errno, std::string("cannot update BPF map ") + map);
}

// false when the key was not there.
inline bool map_erase(int fd, const void* key, const char* map) {
  if (bpf_map_delete_elem(fd, key) == 0) return true;
  if (errno == ENOENT) return false;
  fail_errno(errno, std::string("cannot delete from BPF map ") + map);
}

inline size_t possible_cpus() {
  int n = libbpf_num_possible_cpus();
  if (n <= 0) fail_errno(n, "cannot count possible CPUs");
  return static_cast<size_t>(n);
}

// Creates a zeroed per-CPU entry unless one exists (counters survive re-registration).
template <typename Value>
void percpu_ensure_zero(int fd, const void* key, const std::string& what) {
  std::vector<Value> zero(possible_cpus());
  if (bpf_map_update_elem(fd, key, zero.data(), BPF_NOEXIST) != 0 && errno != EEXIST)
    fail_errno(errno, "cannot create " + what);
}

// The per-CPU values of `key` summed; Value must consist of uint64_t fields only.
template <typename Value>
std::optional<Value> percpu_sum(int fd, const void* key, const std::string& what) {
  static_assert(sizeof(Value) % sizeof(uint64_t) == 0, "counters must be all __u64");
  std::vector<Value> per_cpu(possible_cpus());
  if (bpf_map_lookup_elem(fd, key, per_cpu.data()) != 0) {
    if (errno == ENOENT) return std::nullopt;
    fail_errno(errno, "cannot read " + what);
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

}  // namespace kohaku::bpf
