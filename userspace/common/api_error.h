#pragma once
// An error the HTTP layer turns into `{"detail": message, "error": message}` with the given
// status code (`detail` as FastAPI, which KohakuRiver's clients read; `error` as before).
#include <stdexcept>
#include <string>

namespace kohaku {

// A request whose content fails validation: a missing or malformed field or query parameter, a
// value of the wrong type or out of range, a body that is not JSON. 422, as FastAPI answers
// (KohakuRiver's host), so its clients and ours see the same status.
inline constexpr int kInvalidRequest = 422;

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

}  // namespace kohaku
