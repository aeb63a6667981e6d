#pragma once
// What bench_ctl_load gathers from its clients: the latency of every successful request, the
// failures (counted, never hidden) and the first failure's message.
#include <algorithm>
#include <mutex>
#include <string>
#include <vector>

namespace kohaku::bench {

struct Tally {
  std::mutex mu;
  std::vector<double> ms;
  long failures = 0;
  std::string first_error;

  void add(const std::vector<double>& local, long fails, const std::string& err) {
    std::lock_guard lock(mu);
    ms.insert(ms.end(), local.begin(), local.end());
    failures += fails;
    if (first_error.empty()) first_error = err;
  }
  double percentile(double p) {
    if (ms.empty()) return 0;
    std::sort(ms.begin(), ms.end());
    size_t i = std::min(ms.size() - 1, static_cast<size_t>(p * static_cast<double>(ms.size())));
    return ms[i];
  }
};

}  // namespace kohaku::bench
