#pragma once
// An error the HTTP layer turns into `{"error": message}` with the given status code.
#include <stdexcept>
#include <string>

namespace kohaku {

class ApiError : public std::runtime_error {
 public:
  ApiError(int status, const std::string& message) : std::runtime_error(message), status_(status) {}
  int status() const { return status_; }

 private:
  int status_;
};

}  // namespace kohaku
