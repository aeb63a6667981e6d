// kohaku-runnerd registered by a host whose pool is full of active runners: `overlay: null`, as
// KohakuRiver answers; the runner falls back to its default network (kohakuriver-net), says so,
// and takes an allocation once the host has one for it.
#include <atomic>
#include <thread>

#include "runnerd_process.h"

namespace kohaku::test {
namespace {

// A host whose pool is full of active runners registers us with `overlay: null`, as
// KohakuRiver does: the runner says so, uses kohakuriver-net, and builds its overlay once the
// host has an id for it (its heartbeat is answered 404 then).
TEST(RunnerdApi, NoAllocationFallsBackToTheDefaultNetworkUntilAnIdIsFree) {
  Hostd host({"OVERLAY_SUBNET=10.0.0.0/22/2/8", "HEARTBEAT_INTERVAL_SECONDS=1",
              "HEARTBEAT_TIMEOUT_FACTOR=2"});  // three runner ids
  host.start();
  auto c = host.client();
  for (const char* h : {"a", "b", "c"})
    register_runner(c, h, std::string("10.9.0.") + std::to_string(h[0] - 'a' + 1));
  std::atomic<bool> keep_a{true}, done{false};
  std::thread alive([&] {
    auto hb = host.client();  // its own connection: a client is not shared between threads
    while (!done) {
      if (keep_a) hb.put("/api/heartbeat/a", json::object());
      hb.put("/api/heartbeat/b", json::object());
      hb.put("/api/heartbeat/c", json::object());
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
  });
  struct Join {
    std::atomic<bool>& done;
    std::thread& t;
    ~Join() {
      done = true;
      t.join();
    }
  } join{done, alive};
  const std::string port = host.url().substr(host.url().rfind(':') + 1);
  Runnerd r({"OVERLAY_ENABLED=True", "HOST_ADDRESS=127.0.0.1", "HOST_PORT=" + port,
             "OVERLAY_API_TOKEN=" + host.api_token()});
  r.start();
  json s = r.wait_status(
      [](const json& s) { return s["state"] == "no-allocation" && default_network_up(s); });
  EXPECT_NE(s["reason"].get<std::string>().find("pool of 3"), std::string::npos) << s;
  EXPECT_EQ(s["default_network"]["bridge"], "kohakuriver-net");
  EXPECT_NE(r.log().find("WARN runner: registered without an overlay allocation"),
            std::string::npos)
      << r.log();
  json hs = get_json(c, "/api/overlay/status");
  ASSERT_EQ(hs["without_overlay"].size(), 1u) << hs;
  EXPECT_EQ(hs["without_overlay"][0]["hostname"], "api-runner");

  keep_a = false;  // a goes inactive: its id is for the runner now
  // Host and runner share this test's namespace, so the runner's vxlan0 cannot take the VNI the
  // host's own vxkr1 holds ("setup-failed"); what matters here is that it left no-allocation
  // with an allocation of its own.
  s = r.wait_status([](const json& s) { return s["state"] != "no-allocation"; });
  EXPECT_EQ(s["subnet"], "10.0.1.0/24") << s;
  hs = get_json(c, "/api/overlay/status");
  EXPECT_EQ(hs["without_overlay"].size(), 0u) << hs;
  bool allocated = false;
  for (const auto& a : hs["allocations"]) allocated |= a["runner_name"] == "api-runner";
  EXPECT_TRUE(allocated) << hs;
  EXPECT_NE(r.log().find("one is free; register again"), std::string::npos) << r.log();
}

}  // namespace
}  // namespace kohaku::test
