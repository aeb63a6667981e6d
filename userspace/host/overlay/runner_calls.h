#pragma once
// Calls the host's API makes to runners on a client's behalf (GET /api/nodes/{h}/overlay),
// bounded so that no runner, dead or slow, can take the API's handler threads:
//   - one call per runner at a time: concurrent requests for the same runner share the call in
//     flight and its answer (single flight), so a client looping on a dead runner costs one
//     connection attempt per timeout, not one per request;
//   - at most `max_waiting` requests wait for runners at once, across all runners; the next
//     one is answered 503 at once instead of queueing behind them.
// The handler threads are not the I/O threads (common/http_server.h), so what waits here never
// delays reading or answering other requests.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <functional>
#include <future>
#include <map>
#include <mutex>
#include <string>

namespace kohaku {

class RunnerCalls {
 public:
  explicit RunnerCalls(size_t max_waiting = 8) : max_waiting_(max_waiting) {}

  // fetch()'s result for `runner`, or what it threw (DomainError...). When a call for `runner`
  // is in flight, waits for that one instead of starting another.
  nlohmann::json call(const std::string& runner, const std::function<nlohmann::json()>& fetch);

 private:
  size_t max_waiting_;
  std::mutex mu_;
  size_t waiting_ = 0;
  std::map<std::string, std::shared_future<nlohmann::json>> in_flight_;
};

}  // namespace kohaku
