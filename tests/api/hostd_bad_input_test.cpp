// Every class of bad input gets a 4xx JSON error from kohaku-hostd and changes nothing.
#include <gtest/gtest.h>

#include "host_api_helpers.h"
#include "hostd_process.h"

namespace kohaku::test {
namespace {

class HostdBadInput : public ::testing::Test {
 protected:
  void SetUp() override {
    hostd_.start();
    register_runner(c(), "gpu-1", "10.1.0.5");
    token_ = reserve_ip(c(), "gpu-1")["token"];
    before_ = visible_state(c());
  }
  void TearDown() override {
    if (!HasFailure()) {
      EXPECT_EQ(visible_state(c()), before_) << "a rejected request changed state";
    }
  }

  http::HttpClient c() const { return hostd_.client(); }

  // Sends the request and checks the status and that the body is {"detail": "<text>", "error":
  // "<text>"}: `detail` as FastAPI (KohakuRiver's clients read it), `error` as before.
  void expect_error(const std::string& method, const std::string& target, int status,
                    const std::string& body = {}, const std::string& mention = {}) {
    auto res = c().request(method, target, body, body.empty() ? "" : "application/json");
    EXPECT_EQ(res.status, status) << method << " " << target << ": " << res.body;
    json j = json::parse(res.body, nullptr, false);
    ASSERT_TRUE(j.is_object() && j.contains("error") && j["error"].is_string())
        << method << " " << target << ": " << res.body;
    EXPECT_FALSE(j["error"].get<std::string>().empty());
    ASSERT_TRUE(j.contains("detail") && j["detail"].is_string()) << res.body;
    EXPECT_EQ(j["detail"], j["error"]) << res.body;
    if (!mention.empty()) {
      EXPECT_NE(j["error"].get<std::string>().find(mention), std::string::npos)
          << "error for " << method << " " << target << " should mention '" << mention
          << "': " << res.body;
    }
  }

  Hostd hostd_;
  std::string token_;
  json before_;
};

TEST_F(HostdBadInput, MalformedJson) {
  expect_error("POST", "/api/register", 422, "{\"hostname\": \"x\",", "JSON");
  expect_error("POST", "/api/register", 422, "not json at all", "JSON");
  expect_error("PUT", "/api/heartbeat/gpu-1", 422, "{]");
  expect_error("POST", "/api/register", 422, "[1, 2]");  // valid JSON, not an object
}

TEST_F(HostdBadInput, BadRegisterFields) {
  expect_error("POST", "/api/register", 422, R"({"url": "http://10.1.0.9:8001"})", "hostname");
  expect_error("POST", "/api/register", 422, R"({"hostname": "x"})", "url");
  expect_error("POST", "/api/register", 422, R"({"hostname": 5, "url": "http://10.1.0.9:1"})");
  expect_error("POST", "/api/register", 422, R"({"hostname": "x", "url": "http://10.1.0.300:1"})");
  expect_error("POST", "/api/register", 422, R"({"hostname": "x", "url": "http://127.0.0.1:1"})");
  expect_error("POST", "/api/register", 422, R"({"hostname": "a b", "url": "http://10.1.0.9:1"})");
  expect_error("POST", "/api/register", 422,
               R"({"hostname": "x", "url": "http://10.1.0.9:1", "vxlan_id": "100"})");
}

// A registered url was once written unchecked into the requests the host sends to the runner
// (with its bearer token): CR/LF, a path, 100 KB. Hostnames and runner names of every route
// follow the same rules.
TEST_F(HostdBadInput, UnsafeUrlsAndHostnamesAre422) {
  auto reg = [](const std::string& hostname, const std::string& url) {
    return json{{"hostname", hostname}, {"url", url}}.dump();
  };
  expect_error("POST", "/api/register", 422, reg("x", "http://10.1.0.9:8001/\r\nX-Injected: 1"),
               "url");
  expect_error("POST", "/api/register", 422, reg("x", "http://10.1.0.9:8001\r\nX: 1"),
               "nothing may follow");
  expect_error("POST", "/api/register", 422,
               reg("x", "http://10.1.0.9:8001/" + std::string(100000, 'a')), "longer than 64");
  expect_error("POST", "/api/register", 422, reg("x", "https://10.1.0.9:8001"), "http://");
  expect_error("POST", "/api/register", 422, reg("x", "http://10.1.0.9:8001/api"), "url");
  for (const char* name : {"..", ".", "a..b", "-x", "x\r\ny"})
    expect_error("POST", "/api/register", 422, reg(name, "http://10.1.0.9:8001"), "hostname");
  expect_error("PUT", "/api/heartbeat/%2E%2E", 422, "{}", "hostname");
  expect_error("PUT", "/api/heartbeat/gpu-1%0D%0AX:%201", 422, "{}", "hostname");
  expect_error("GET", "/api/nodes/%2E%2E/overlay", 422, {}, "hostname");
  expect_error("GET", "/api/overlay/ip/info/a..b", 422, {}, "runner");
  expect_error("POST", "/api/overlay/ip/reserve?runner=gpu-1%0D%0A", 422, {}, "runner");
  expect_error("POST", "/api/overlay/release/..", 422, {}, "runner");
}

TEST_F(HostdBadInput, VxlanSettingsMismatchIs409NamingBothValues) {
  auto res = c().post("/api/register",
                      json{{"hostname", "x"}, {"url", "http://10.1.0.9:8001"}, {"vxlan_id", 200}});
  EXPECT_EQ(res.status, 409);
  std::string msg = res.error_message();
  EXPECT_NE(msg.find("200"), std::string::npos) << msg;
  EXPECT_NE(msg.find("100"), std::string::npos) << msg;
  EXPECT_EQ(c().post("/api/register",
                     json{{"hostname", "x"}, {"url", "http://10.1.0.9:8001"}, {"mtu", 9000}})
                .status,
            409);
  EXPECT_EQ(c().post("/api/register",
                     json{{"hostname", "x"}, {"url", "http://10.1.0.9:8001"}, {"vxlan_port", 8472}})
                .status,
            409);
}

TEST_F(HostdBadInput, BadIp) {
  expect_error("POST", "/api/overlay/ip/reserve?runner=gpu-1&ip=10.128.64.300", 422, {},
               "10.128.64.300");
  expect_error("POST", "/api/overlay/ip/reserve?runner=gpu-1&ip=banana", 422);
  expect_error("POST", "/api/overlay/ip/reserve?runner=gpu-1&ip=010.128.64.5", 422);
  // Outside the runner's container range: another subnet, the gateway, the host's .254.
  expect_error("POST", "/api/overlay/ip/reserve?runner=gpu-1&ip=10.128.128.5", 400);
  expect_error("POST", "/api/overlay/ip/reserve?runner=gpu-1&ip=10.128.64.1", 400);
  expect_error("POST", "/api/overlay/ip/reserve?runner=gpu-1&ip=10.128.64.254", 400);
  // Already reserved.
  expect_error("POST", "/api/overlay/ip/reserve?runner=gpu-1&ip=10.128.64.2", 409);
}

TEST_F(HostdBadInput, TtlOutOfRange) {
  for (const char* ttl : {"59", "1801", "0", "-5", "abc", "300s", "1e3", ""}) {
    if (std::string(ttl).empty()) continue;  // empty means default
    expect_error("POST", std::string("/api/overlay/ip/reserve?runner=gpu-1&ttl=") + ttl, 422, {},
                 "ttl");
  }
  expect_error("GET", "/api/overlay/ip/available?limit=0", 422, {}, "limit");
  expect_error("GET", "/api/overlay/ip/available?limit=1001", 422, {}, "limit");
  expect_error("GET", "/api/overlay/ip/reservations?include_used=maybe", 422);
}

TEST_F(HostdBadInput, HugeBody) {
  std::string huge = "{\"hostname\": \"x\", \"url\": \"http://10.1.0.9:1\", \"pad\": \"" +
                     std::string(2 << 20, 'a') + "\"}";
  expect_error("POST", "/api/register", 413, huge);
  // The daemon keeps serving.
  EXPECT_EQ(c().get("/healthz").status, 200);
}

TEST_F(HostdBadInput, UnknownRoute) {
  expect_error("GET", "/api/nope", 404);
  expect_error("GET", "/", 404);
  expect_error("GET", "/api/overlay/status/extra", 404);
  expect_error("POST", "/api/overlay/ip/frobnicate", 404);
}

TEST_F(HostdBadInput, UnknownRunnerOrToken) {
  expect_error("GET", "/api/overlay/ip/info/ghost", 404, {}, "ghost");
  expect_error("POST", "/api/overlay/ip/reserve?runner=ghost", 404, {}, "ghost");
  expect_error("GET", "/api/overlay/ip/available?runner=ghost", 404);
  expect_error("GET", "/api/overlay/ip/reservations?runner=ghost", 404);
  // (POST /api/overlay/release/ghost is a 200 {released: false}, as in KohakuRiver.)
  expect_error("PUT", "/api/heartbeat/ghost", 404, "{}");
  expect_error("POST", "/api/overlay/ip/release?token=0123456789abcdef0123456789abcdef", 404);
  expect_error("POST", "/api/overlay/ip/use?token=0123456789abcdef&container_id=c1", 404);
}

TEST_F(HostdBadInput, WrongMethod) {
  expect_error("GET", "/api/register", 405);
  expect_error("DELETE", "/api/overlay/status", 405);
  expect_error("POST", "/api/nodes", 405);
  expect_error("GET", "/api/overlay/ip/reserve?runner=gpu-1", 405);
  expect_error("PUT", "/api/overlay/cleanup", 405);
  auto res = c().request("GET", "/api/overlay/ip/release");
  EXPECT_EQ(res.headers["allow"], "POST");
}

TEST_F(HostdBadInput, MissingParams) {
  expect_error("POST", "/api/overlay/ip/reserve", 422, {}, "runner");
  expect_error("POST", "/api/overlay/ip/release", 422, {}, "token");
  expect_error("POST", "/api/overlay/ip/validate", 422, {}, "token");
  expect_error("POST", "/api/overlay/ip/use?token=" + token_, 422, {}, "container_id");
  expect_error("POST", "/api/overlay/ip/use?container_id=c1", 422);
}

TEST_F(HostdBadInput, BrokenQueryEncoding) {
  expect_error("POST", "/api/overlay/ip/reserve?runner=gpu%2", 400);
  expect_error("GET", "/api/overlay/ip/info/gpu%zz", 400, {}, "percent-encoding");
}

// 50,000 levels of '[' once overflowed the stack of an I/O thread (SIGSEGV, no token needed).
TEST_F(HostdBadInput, DeeplyNestedJsonIs422AndTheDaemonLives) {
  std::string deep(50000, '[');
  expect_error("POST", "/api/register", 422,
               R"({"hostname": "x", "url": "http://10.1.0.9:8001", "extra": )" + deep, "deeper");
  expect_error("PUT", "/api/heartbeat/gpu-1", 422, deep + std::string(50000, ']'), "deeper");
  // Balanced and small, but deeper than any real registration (4 levels): refused by depth.
  std::string nested = R"({"hostname": "x", "url": "http://10.1.0.9:8001", "extra": )" +
                       std::string(33, '[') + std::string(33, ']') + "}";
  expect_error("POST", "/api/register", 422, nested, "deeper than 32");
  EXPECT_EQ(c().get("/healthz").status, 200);
}

// KohakuRiver's request models type these fields (pydantic): a value of another type is its
// 422, and ours, rather than a node whose `node summary` cannot add up.
TEST_F(HostdBadInput, UpstreamFieldsOfTheWrongTypeAre422) {
  auto reg = [](const std::string& field, const std::string& value) {
    return R"({"hostname": "x", "url": "http://10.1.0.9:8001", ")" + field + "\": " + value + "}";
  };
  expect_error("POST", "/api/register", 422, reg("total_cores", "\"64\""), "total_cores");
  expect_error("POST", "/api/register", 422, reg("total_cores", "-1"), "total_cores");
  expect_error("POST", "/api/register", 422, reg("total_ram_bytes", "1.5"), "total_ram_bytes");
  expect_error("POST", "/api/register", 422, reg("numa_topology", "[]"), "numa_topology");
  expect_error("POST", "/api/register", 422, reg("gpu_info", "{}"), "gpu_info");
  expect_error("PUT", "/api/heartbeat/gpu-1", 422, R"({"memory_used_bytes": "lots"})",
               "memory_used_bytes");
  expect_error("PUT", "/api/heartbeat/gpu-1", 422, R"({"cpu_percent": true})", "cpu_percent");
  expect_error("PUT", "/api/heartbeat/gpu-1", 422, R"({"running_tasks": 3})", "running_tasks");
  expect_error("PUT", "/api/heartbeat/gpu-1", 422, R"({"vm_capable": "yes"})", "vm_capable");
  expect_error("GET", "/api/health?hostname=a%20b", 422, {}, "hostname");
  expect_error("GET", "/api/health?hostname=ghost", 404, {}, "ghost");
}

TEST_F(HostdBadInput, NumberOutOfRangeIs422) {
  expect_error("POST", "/api/register", 422,
               R"({"hostname": "x", "url": "http://10.1.0.9:8001", "total_cores": 1e400})",
               "1e400");
  expect_error("PUT", "/api/heartbeat/gpu-1", 422, R"({"x": -1e400})", "number");
}

TEST_F(HostdBadInput, BodiesAndTargetsThatWereServed) {
  // A heartbeat body is an object (KohakuRiver sends its task list), not any JSON.
  expect_error("PUT", "/api/heartbeat/gpu-1", 422, "[1, 2]", "object");
  expect_error("PUT", "/api/heartbeat/gpu-1", 422, "\"x\"", "object");
  // A truncated body is a 422 also on routes that read nothing from it.
  expect_error("POST", "/api/overlay/cleanup", 422, "{", "JSON");
  expect_error("POST", "/api/overlay/release/gpu-1", 422, "{", "JSON");
  // Only origin-form targets are served.
  expect_error("GET", "healthz", 400, {}, "absolute path");
  expect_error("GET", "*", 400, {}, "absolute path");
}

TEST(HostdOverlayDisabled, IpAndOverlayRoutesAre400) {
  Hostd hostd({"OVERLAY_ENABLED=False"});
  hostd.start();
  auto c = hostd.client();
  json status = get_json(c, "/api/overlay/status");
  EXPECT_EQ(status["enabled"], false);
  // Registration still works (it is the cluster's membership), without an overlay block.
  json reg = register_runner(c, "gpu-1", "10.1.0.5");
  EXPECT_FALSE(reg.contains("overlay"));
  for (auto [method, target] : std::vector<std::pair<std::string, std::string>>{
           {"POST", "/api/overlay/ip/reserve?runner=gpu-1"},
           {"GET", "/api/overlay/ip/available"},
           {"GET", "/api/overlay/ip/info/gpu-1"},
           {"POST", "/api/overlay/ip/release?token=x"},
           {"GET", "/api/overlay/ip/reservations"},
           {"POST", "/api/overlay/ip/validate?token=x"},
           {"POST", "/api/overlay/ip/use?token=x&container_id=c"},
           {"GET", "/api/overlay/ip/stats"},
           {"POST", "/api/overlay/release/gpu-1"},
           {"POST", "/api/overlay/cleanup"}}) {
    auto res = c.request(method, target);
    EXPECT_EQ(res.status, 400) << method << " " << target << ": " << res.body;
    EXPECT_NE(res.error_message().find("disabled"), std::string::npos) << res.body;
  }
}

}  // namespace
}  // namespace kohaku::test
