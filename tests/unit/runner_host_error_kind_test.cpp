// The runner's one reading of a host failure as a domain error kind (runner/overlay/host_api.h):
// which HTTP status the runner answers its own client with when the host fails a call.
#include <gtest/gtest.h>

#include "runner/overlay/host_api.h"

namespace kohaku::runner {
namespace {

ErrorKind kind_of(int status, ErrorKind refused) {
  return host_error_kind(HostApiError(status, "x"), refused);
}

TEST(HostErrorKind, OneKindForEachHostFailureWhateverTheCall) {
  for (ErrorKind refused :
       {ErrorKind::kInvalid, ErrorKind::kConflict, ErrorKind::kUpstreamFailed}) {
    EXPECT_EQ(kind_of(0, refused), ErrorKind::kUnavailable) << "no answer";
    EXPECT_EQ(kind_of(409, refused), ErrorKind::kConflict);
    EXPECT_EQ(kind_of(500, refused), ErrorKind::kUpstreamFailed);
    EXPECT_EQ(kind_of(503, refused), ErrorKind::kUpstreamFailed);
    EXPECT_EQ(kind_of(200, refused), ErrorKind::kUpstreamFailed) << "an answer not understood";
  }
}

TEST(HostErrorKind, OtherRefusalsMeanWhatTheCallerSays) {
  for (int status : {400, 403, 404, 422}) {
    EXPECT_EQ(kind_of(status, ErrorKind::kInvalid), ErrorKind::kInvalid) << status;
    EXPECT_EQ(kind_of(status, ErrorKind::kUpstreamFailed), ErrorKind::kUpstreamFailed) << status;
  }
}

}  // namespace
}  // namespace kohaku::runner
