// kohakuctl against a server that sends replies no kohaku-hostd sends: it must fail with a clear
// message and a non-zero exit, never crash and never print a wrong reply as a success.
#include <gtest/gtest.h>

#include "canned_http_server.h"
#include "hostd_process.h"

namespace kohaku::test {
namespace {

ProcessResult ctl_against(const CannedHttpServer& server, std::vector<std::string> args) {
  std::vector<std::string> argv{bin_path("kohakuctl"), "--host", server.url()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_program(argv, {{"KOHAKU_HOST", ""}, {"KOHAKU_TOKEN", ""}});
}

TEST(KohakuctlHostileReply, DeeplyNestedReplyIsAnErrorNotACrash) {
  CannedHttpServer server(200, std::string(50000, '[') + std::string(50000, ']'));
  for (bool json_output : {true, false}) {
    std::vector<std::string> args{"node", "overlay"};
    if (json_output) args.insert(args.begin(), "--json");
    auto r = ctl_against(server, args);
    EXPECT_EQ(r.exit_code, 1) << "--json=" << json_output << " stderr: " << r.err;
    EXPECT_NE(r.err.find("deeper than"), std::string::npos) << r.err;
  }
  // An error reply nested as deep is shown as text, not parsed into a crash either.
  CannedHttpServer failing(500, "{\"error\": " + std::string(50000, '[') + "}");
  auto r = ctl_against(failing, {"node", "overlay"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("HTTP 500"), std::string::npos) << r.err;
}

TEST(KohakuctlHostileReply, NumberOutOfRangeIsAnError) {
  CannedHttpServer server(200, R"({"enabled": true, "stats": {"total_allocations": 1e400}})");
  auto r = ctl_against(server, {"--json", "node", "overlay"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("not JSON"), std::string::npos) << r.err;
}

TEST(KohakuctlHostileReply, WronglyTypedRepliesAreErrorsNamingTheField) {
  CannedHttpServer reserve(200, R"({"ip": 5, "runner": "r", "token": "t", "expires_at": null})");
  for (bool json_output : {false, true}) {
    std::vector<std::string> args{"ip-reserve", "gpu-1"};
    if (json_output) args.insert(args.begin(), "--json");
    auto r = ctl_against(reserve, args);
    EXPECT_EQ(r.exit_code, 1) << r.out << r.err;
    EXPECT_NE(r.err.find("'ip' is number, expected a string"), std::string::npos) << r.err;
    EXPECT_EQ(r.out, "") << "nothing is printed as if it had worked";
  }
  CannedHttpServer status(200, R"({"enabled": "yes"})");
  auto r = ctl_against(status, {"node", "overlay"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("unexpected reply to GET /api/overlay/status"), std::string::npos) << r.err;
  EXPECT_EQ(r.err.find("type_error"), std::string::npos) << "no raw library error: " << r.err;
  CannedHttpServer list(200, "[1, 2]");
  r = ctl_against(list, {"ip-stats"});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.err.find("expected a JSON object, got array"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace kohaku::test
