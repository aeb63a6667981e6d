#include "host/overlay/runner_calls.h"

#include "common/domain_error.h"

namespace kohaku {

nlohmann::json RunnerCalls::call(const std::string& runner,
                                 const std::function<nlohmann::json()>& fetch) {
  std::shared_future<nlohmann::json> answer;
  std::promise<nlohmann::json> mine;
  bool lead = false;
  {
    std::lock_guard lock(mu_);
    if (waiting_ >= max_waiting_)
      throw DomainError(ErrorKind::kUnavailable,
                        std::to_string(waiting_) +
                            " requests are already waiting for runners to answer; try again "
                            "shortly");
    auto it = in_flight_.find(runner);
    if (it != in_flight_.end()) {
      answer = it->second;
    } else {
      answer = mine.get_future().share();
      in_flight_.emplace(runner, answer);
      lead = true;
    }
    ++waiting_;
  }
  struct Done {
    RunnerCalls& calls;
    ~Done() {
      std::lock_guard lock(calls.mu_);
      --calls.waiting_;
    }
  } done{*this};
  if (lead) {
    try {
      mine.set_value(fetch());
    } catch (...) {
      mine.set_exception(std::current_exception());
    }
    std::lock_guard lock(mu_);
    in_flight_.erase(runner);
  }
  return answer.get();
}

}  // namespace kohaku
