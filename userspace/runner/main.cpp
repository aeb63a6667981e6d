// kohaku-runnerd: the Runner's agent. Loads runner_config.py (+ --set), serves the runner API,
// registers with the host and keeps the overlay, the workloads and the Docker network in shape
// until SIGTERM/SIGINT. On exit every device stays in place so workloads keep talking while the
// daemon restarts. What runs and in which order: runner/runner_daemon.h.
#include <csignal>
#include <ctime>
#include <filesystem>
#include <iostream>
#include <optional>
#include <string>

#include "common/daemon_args.h"
#include "common/log.h"
#include "runner/runner_config.h"
#include "runner/runner_daemon.h"

namespace {

constexpr std::string_view kProgram = "kohaku-runnerd";

int run(const kohaku::DaemonArgs& args) {
  using namespace kohaku;
  RunnerConfig config;
  try {
    config = load_runner_config(args);
  } catch (const std::exception& e) {
    std::cerr << kProgram << ": " << e.what() << "\n";
    return 2;
  }
  try {
    std::filesystem::create_directories(config.state_dir);
  } catch (const std::exception& e) {
    log::error("runnerd", "cannot create STATE_DIR " + config.state_dir + ": " + e.what());
    return 1;
  }

  // Signals are taken synchronously by this thread; every thread started below inherits the
  // blocked mask, so none of them is interrupted by SIGTERM.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  std::optional<runner::RunnerDaemon> daemon;
  try {
    daemon.emplace(std::move(config));
  } catch (const std::exception& e) {
    log::error("runnerd", e.what());
    return 1;
  }
  try {
    const bool started = daemon->start([&signals](std::chrono::seconds wait) {
      timespec t{static_cast<time_t>(wait.count()), 0};
      return sigtimedwait(&signals, nullptr, &t) > 0;
    });
    if (!started) return 0;  // a signal while waiting for an address to serve on
  } catch (const std::exception& e) {
    log::error("runnerd", e.what());
    return 1;
  }

  int signo = 0;
  sigwait(&signals, &signo);
  log::info("runnerd", std::string("received ") + (signo == SIGTERM ? "SIGTERM" : "SIGINT") +
                           ", shutting down (overlay devices and workloads stay in place)");
  daemon->stop();
  log::info("runnerd", "stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  return kohaku::daemon_main(argc, argv, kProgram, "runner_config.py", run);
}
