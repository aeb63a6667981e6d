#include "common/completion.h"

#include <future>
#include <memory>

namespace kohaku {

nlohmann::json wait_for(const std::function<void(JsonCompletion done)>& start) {
  // Shared: done may be called after start() threw (it should not, but must not crash then).
  auto outcome = std::make_shared<std::promise<nlohmann::json>>();
  auto result = outcome->get_future();
  start([outcome](std::exception_ptr error, nlohmann::json value) {
    if (error)
      outcome->set_exception(std::move(error));
    else
      outcome->set_value(std::move(value));
  });
  return result.get();
}

}  // namespace kohaku
