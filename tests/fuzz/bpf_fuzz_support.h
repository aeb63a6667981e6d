#pragma once
// What the BPF fuzz targets share: telling a refusal of BPF_PROG_TEST_RUN from a program's
// decision, reporting a broken invariant, the programs' own counters as coverage, and writing
// the seed frames.
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <system_error>
#include <utility>
#include <vector>

#include "bpf/packet.h"

namespace kohaku::fuzz {

using test::pkt::Bytes;

// The longest frame an input becomes: BPF_PROG_TEST_RUN refuses frames beyond a page anyway.
inline constexpr size_t kMaxFrame = 1514;

[[noreturn]] inline void violated(const char* what, const Bytes& in, const Bytes& out,
                                  int64_t verdict) {
  std::fprintf(stderr, "INVARIANT VIOLATED: %s (verdict %lld, %zu bytes in, %zu out)\n", what,
               static_cast<long long>(verdict), in.size(), out.size());
  std::abort();
}

// BPF_PROG_TEST_RUN itself refuses some frames (EINVAL, e.g. an IPv4 header cut short) before
// any program runs: nothing was decided, nothing to check (nullopt).
template <typename Run>
auto run_unless_refused(Run run) -> std::optional<decltype(run())> {
  try {
    return run();
  } catch (const std::system_error& e) {
    if (e.code().value() == EINVAL) return std::nullopt;
    throw;
  }
}

// Coverage of the BPF programs themselves, which clang cannot instrument: every counter of
// their stats maps (a named reason for each pass, drop and forward) that moved during a run is
// a feature, in libFuzzer's extra-counters section. `hook` keeps the programs' counters apart.
inline constexpr size_t kFeatureSlots = 4096;
__attribute__((
    used, section("__libfuzzer_extra_counters"))) inline uint8_t program_features[kFeatureSlots];

inline void note_moved_counters(const std::vector<uint64_t>& before,
                                const std::vector<uint64_t>& after, size_t hook) {
  for (size_t i = 0; i < after.size(); ++i)
    if (i >= before.size() || after[i] != before[i])
      ++program_features[(hook * 1024 + i) % kFeatureSlots];
}

// With KOHAKU_WRITE_SEEDS=DIR: writes every (name, frame) of make_seeds() to DIR/name and
// exits; how the seed corpora in tests/fuzz/corpus/bpf_* are made.
template <typename MakeSeeds>
void write_seeds_if_asked(MakeSeeds make_seeds) {
  const char* dir = std::getenv("KOHAKU_WRITE_SEEDS");
  if (dir == nullptr) return;
  std::filesystem::create_directories(dir);
  for (const auto& [name, bytes] : make_seeds()) {
    std::ofstream out(std::filesystem::path(dir) / name, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  std::exit(0);
}

}  // namespace kohaku::fuzz
