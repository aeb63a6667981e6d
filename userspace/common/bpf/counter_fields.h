#pragma once
// The hub's BPF counter structs (host_stats, express_stats) are runs of __u64 fields, one per
// reason, summed over CPUs by the loaders. What both loaders do with them: name each field,
// read one by offset, add up a run of reasons.
#include <linux/types.h>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>
#include <utility>
#include <vector>

namespace kohaku::bpf {

struct CounterName {
  std::string_view name;
  size_t offset;
};

template <class Stats>
uint64_t counter_at(const Stats& s, size_t offset) {
  uint64_t v;
  std::memcpy(&v, reinterpret_cast<const uint8_t*>(&s) + offset, sizeof(v));
  return v;
}

// The sum of `count` consecutive counters starting at `first` (one per enum reason).
inline uint64_t sum_counters(const __u64* first, int count) {
  uint64_t n = 0;
  for (int i = 0; i < count; ++i) n += first[i];
  return n;
}

template <class Stats, size_t N>
std::vector<std::pair<std::string_view, uint64_t>> named_counters(const Stats& s,
                                                                  const CounterName (&names)[N]) {
  std::vector<std::pair<std::string_view, uint64_t>> out;
  out.reserve(N);
  for (const auto& c : names) out.emplace_back(c.name, counter_at(s, c.offset));
  return out;
}

}  // namespace kohaku::bpf
