#pragma once
// What an API-facing call refused with: the status its route answers for the ApiError or
// DomainError it threw (200 when it returned), for tests of the logic behind the routes, which
// throws rather than answers.
#include <functional>
#include <string>

#include "common/api_error.h"
#include "common/domain_error.h"
#include "common/http_router.h"

namespace kohaku::test_support {

// The status of the error f throws, 200 when it returns; its message into *message.
inline int status_of(const std::function<void()>& f, std::string* message = nullptr) {
  try {
    f();
  } catch (const ApiError& e) {
    if (message) *message = e.what();
    return e.status();
  } catch (const DomainError& e) {
    if (message) *message = e.what();
    return http::status_for(e.kind());
  }
  return 200;
}

// The message of the error f throws, "" when it returns.
inline std::string message_of(const std::function<void()>& f) {
  std::string message;
  status_of(f, &message);
  return message;
}

}  // namespace kohaku::test_support
