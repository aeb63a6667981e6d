#pragma once
// The command line of the bench tools: `--option value` pairs, every option with a value, and a
// main that turns an exception into one line "<tool>: <what>" on stderr and a failure status.
#include <cstdio>
#include <exception>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace kohaku::bench {

// The `--option value` pairs of argv[first..argc); std::invalid_argument for an option left
// without its value. Which options exist is the tool's to check.
inline std::vector<std::pair<std::string, std::string>> option_pairs(int argc, char** argv,
                                                                     int first = 1) {
  std::vector<std::pair<std::string, std::string>> out;
  for (int i = first; i < argc; ++i) {
    std::string k = argv[i];
    if (i + 1 >= argc) throw std::invalid_argument("missing value after " + k);
    out.emplace_back(std::move(k), argv[++i]);
  }
  return out;
}

// run()'s exit status; when it throws, the reason on stderr and `failure` (the status the tool's
// callers take for "did not run").
template <typename Run>
int report_failures(const char* tool, Run&& run, int failure = 1) {
  try {
    return run();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", tool, e.what());
    return failure;
  }
}

}  // namespace kohaku::bench
