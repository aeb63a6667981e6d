#pragma once
// What went wrong with a request, in the domain's terms: the services (overlay, named networks,
// workloads, stores) throw DomainError with a kind, and only the HTTP layer decides which status
// code a kind is answered with (http_status() in common/http_router.h). So the rules know nothing
// of HTTP, and a status convention (FastAPI's 422 for malformed input, which KohakuRiver's clients
// see) lives in one table.
#include <stdexcept>
#include <string>

namespace kohaku {

enum class ErrorKind {
  kMalformed,           // the request's shape: a field missing, of the wrong type, unparsable
  kInvalid,             // well-formed, but the rules refuse it (a value, a combination)
  kForbidden,           // a credential is missing or does not match the object
  kNotFound,            // the object the request names does not exist
  kConflict,            // the object exists, or the state does not allow it now
  kPreconditionFailed,  // an expectation the caller stated (a revision) does not hold
  kUnavailable,         // a dependency is not there yet or not reachable (retry later)
  kUpstreamFailed,      // a peer (host, runner, Docker) answered, with an error or nonsense
  kInternal,            // our fault or the machine's (a write that failed)
};

class DomainError : public std::runtime_error {
 public:
  DomainError(ErrorKind kind, const std::string& message)
      : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }

 private:
  ErrorKind kind_;
};

}  // namespace kohaku
