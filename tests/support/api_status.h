#pragma once
// What an API-facing call refused with: the status of the ApiError it threw (200 when it
// returned), for tests of the domain logic behind the routes, which throws rather than answers.
#include <functional>
#include <string>

#include "common/api_error.h"

namespace kohaku::test_support {

// The status an ApiError carries, 200 when f returns; its message into *message.
inline int status_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const ApiError& e) {
    if (message) *message = e.what();
    return e.status();
  }
  return 200;
}

// The message of the ApiError f throws, "" when it returns.
inline std::string message_of(const std::function<void()>& f) {
  std::string message;
  status_of(f, &message);
  return message;
}

}  // namespace kohaku::test_support
