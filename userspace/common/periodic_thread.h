#pragma once
// A thread that runs one pass, waits for as long as that pass asked (or until stop()), and runs
// the next: the runner's control loop and its L2 poll. stop() wakes the wait at once, so a
// daemon shuts down within one pass, not one interval.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <mutex>
#include <stop_token>
#include <thread>

namespace kohaku {

class PeriodicThread {
 public:
  // Returns how long to wait before the next pass. Must not throw (catch inside: the thread
  // would end the process).
  using Pass = std::function<std::chrono::milliseconds()>;

  PeriodicThread() = default;
  ~PeriodicThread() { stop(); }
  PeriodicThread(const PeriodicThread&) = delete;
  PeriodicThread& operator=(const PeriodicThread&) = delete;

  // Runs `pass` at once, then again after each wait it returns. Call at most once.
  void start(Pass pass) {
    thread_ = std::jthread([this, pass = std::move(pass)](std::stop_token stop) {
      for (;;) {
        const std::chrono::milliseconds wait = pass();
        std::unique_lock lock(mu_);
        cv_.wait_for(lock, stop, wait, [] { return false; });  // woken early only by stop()
        if (stop.stop_requested()) return;
      }
    });
  }

  // Ends the loop after the current pass (if any) and joins. Idempotent.
  void stop() {
    if (!thread_.joinable()) return;
    thread_.request_stop();
    thread_.join();
  }

 private:
  std::mutex mu_;
  std::condition_variable_any cv_;
  std::jthread thread_;
};

}  // namespace kohaku
