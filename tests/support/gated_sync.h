#pragma once
// A "disk" for group-commit tests: its flush (operator()) blocks until the test calls release(),
// then succeeds or throws like a failed fdatasync. Every wait is bounded, so a broken test fails
// instead of hanging the suite.
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <stdexcept>

namespace kohaku::test_support {

class GatedSync {
 public:
  static constexpr const char* kError = "cannot fdatasync journal.log: Input/output error";

  void operator()() {
    std::unique_lock lock(mu_);
    ++started_;
    cv_.notify_all();
    cv_.wait_for(lock, std::chrono::seconds(10), [this] { return open_; });
    if (fail_) throw std::runtime_error(kError);
  }
  // Lets every flush through from now on; failing: they throw kError.
  void release(bool failing = false) {
    {
      std::lock_guard lock(mu_);
      open_ = true;
      fail_ = failing;
    }
    cv_.notify_all();
  }
  // Whether n flushes have begun within 5 s.
  bool wait_started(int n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, std::chrono::seconds(5), [&] { return started_ >= n; });
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  int started_ = 0;
  bool open_ = false;
  bool fail_ = false;
};

}  // namespace kohaku::test_support
