// HTTP against a real kohaku-runnerd (and, where the host matters, a real kohaku-hostd) in the
// test's private network namespace: status while the host is away, bad input and auth, a
// refusal by the host with its reason, workloads on the default network attached to real
// namespaces, and workloads surviving a daemon restart. The full overlay (both tunnel ends) needs
// two namespaces and lives in tests/e2e.
#include <thread>

#include "runnerd_process.h"

namespace kohaku::test {
namespace {

TEST(RunnerdApi, HostUnreachableShowsRegisteringAndRefusesWorkloadsWith503) {
  Runnerd r({"OVERLAY_ENABLED=True", "HOST_ADDRESS=127.0.0.1",
             "HOST_PORT=" + std::to_string(pick_free_port())});
  r.start();
  // "registering" starts with "not registered with the host yet"; the first failed attempt
  // turns the reason into "host unreachable".
  json s = r.wait_status([](const json& s) {
    return s["state"] == "registering" && s["reason"].is_string() &&
           s["reason"].get<std::string>().find("host unreachable") != std::string::npos;
  });
  EXPECT_EQ(s["overlay_ready"], false);
  EXPECT_TRUE(s["runner_id"].is_null());
  EXPECT_EQ(s["vxlan"]["exists"], false);
  NamespacedProcess w;
  json e = post_workload(r, {{"pid", w.pid()}}, 503);
  EXPECT_NE(e["error"].get<std::string>().find("no network"), std::string::npos) << e;
  EXPECT_EQ(r.stop(), 0);
}

// Can a TCP connection to address:port be made?
bool accepts(const std::string& address, uint16_t port) {
  try {
    http::ClientOptions o;
    o.timeout = std::chrono::seconds(2);
    http::HttpClient("http://" + address + ":" + std::to_string(port), o).get("/healthz");
    return true;
  } catch (const http::ClientError&) {
    return false;
  }
}

// Without RUNNER_BIND_IP the API listens where the host reaches the runner (the source address
// towards HOST_ADDRESS, which it also registers) and on loopback, not on every address; an
// explicit RUNNER_BIND_IP=0.0.0.0 (KohakuRiver's default) still means every address.
TEST(RunnerdApi, ListensOnlyWhereTheHostReachesItByDefault) {
  run_program({"/usr/sbin/ip", "addr", "add", "192.0.2.12/32", "dev", "lo"});
  {
    Runnerd r({"OVERLAY_ENABLED=False", std::string("HOST_ADDRESS=") + kRunnerIp,
               "HOST_PORT=" + std::to_string(pick_free_port())});
    r.bind_by_default();
    r.start();
    EXPECT_TRUE(accepts(kRunnerIp, r.port()));
    EXPECT_TRUE(accepts("127.0.0.1", r.port()));
    EXPECT_FALSE(accepts("192.0.2.12", r.port())) << "the API answers on an address it should not";
    EXPECT_NE(r.log().find("ready: API on 192.0.2.11, 127.0.0.1 port"), std::string::npos)
        << r.log();
  }
  Runnerd all({"OVERLAY_ENABLED=False", std::string("HOST_ADDRESS=") + kRunnerIp,
               "HOST_PORT=" + std::to_string(pick_free_port()), "RUNNER_BIND_IP=0.0.0.0"});
  all.bind_by_default();
  all.start();
  EXPECT_TRUE(accepts("192.0.2.12", all.port()));
}

TEST(RunnerdApi, BadInputAndAuth) {
  Runnerd r({"OVERLAY_ENABLED=False", "HOST_ADDRESS=127.0.0.1",
             "HOST_PORT=" + std::to_string(pick_free_port()), "OVERLAY_API_TOKEN=tok3n"});
  r.start();
  r.wait_status(default_network_up);
  NamespacedProcess w;
  // Mutating routes need the token; reads do not.
  post_workload(r, {{"pid", w.pid()}}, 401, "");
  post_workload(r, {{"pid", w.pid()}}, 401, "wrong");
  EXPECT_EQ(r.client("").del("/api/workloads/wl-000000000000").status, 401);
  EXPECT_EQ(r.client().get("/api/workloads").status, 200);
  EXPECT_EQ(r.client().get("/api/overlay/status").status, 200);

  auto raw = r.client("tok3n").request("POST", "/api/workloads", "{not json", "application/json");
  EXPECT_EQ(raw.status, 422) << raw.body;
  post_workload(r, json::object(), 422, "tok3n");
  post_workload(r, {{"pid", w.pid()}, {"netns", "/proc/1/ns/net"}}, 422, "tok3n");
  post_workload(r, {{"netns", "relative"}}, 422, "tok3n");
  post_workload(r, {{"netns", "/nonexistent/ns"}}, 400, "tok3n");
  post_workload(r, {{"pid", w.pid()}, {"colour", "red"}}, 422, "tok3n");
  post_workload(r, {{"pid", w.pid()}, {"interface", "bad/name"}}, 422, "tok3n");
  // The runner's own namespace (this test process shares it) is never a workload.
  post_workload(r, {{"pid", ::getpid()}}, 400, "tok3n");
  // A reservation token means nothing on the default network.
  post_workload(r, {{"pid", w.pid()}, {"token", "abc"}}, 400, "tok3n");
  EXPECT_EQ(r.client("tok3n").del("/api/workloads/wl-000000000000").status, 404);
  EXPECT_EQ(r.client().get("/api/workloads/wl-000000000000").status, 404);
  // Nothing was attached by any of that.
  EXPECT_EQ(r.client().get("/api/workloads").json()["workloads"].size(), 0u);
  EXPECT_NE(w.run({"ip", "link", "show", "eth0"}).exit_code, 0);
}

// Secure by default: a runner given no token accepts, on its mutating routes, only the
// credential the host issued to it (which the host presents on its pushes); before it has one,
// nothing. OVERLAY_API_TOKEN written out empty is the explicit opt-out.
TEST(RunnerdApi, MutatingRoutesNeedTheRunnerCredentialByDefault) {
  NamespacedProcess w;
  {
    // Never registered (no host answers): no credential, nothing accepted.
    Runnerd r({"OVERLAY_ENABLED=False", "HOST_ADDRESS=127.0.0.1",
               "HOST_PORT=" + std::to_string(pick_free_port())},
              /*default_token=*/false);
    r.start();
    r.wait_status(default_network_up);
    json e = post_workload(r, {{"pid", w.pid()}}, 401);
    EXPECT_NE(e["error"].get<std::string>().find("runner_credential"), std::string::npos) << e;
    EXPECT_EQ(r.client().del("/api/workloads/wl-000000000000").status, 401);
  }
  // Registered with a host that opted out of its token: the issued credential opens the routes.
  Hostd host({"OVERLAY_ENABLED=False", "OVERLAY_API_TOKEN="});
  host.start();
  const std::string port = host.url().substr(host.url().rfind(':') + 1);
  {
    Runnerd r({"OVERLAY_ENABLED=False", "HOST_ADDRESS=127.0.0.1", "HOST_PORT=" + port},
              /*default_token=*/false);
    r.start();
    r.wait_status(default_network_up);
    const auto file = r.state_dir() / "runner_credential";
    const auto deadline = deadline_in(std::chrono::seconds(10));
    while (!past(deadline) && !std::filesystem::exists(file))
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    const std::string credential = read_file(file).substr(0, 64);
    ASSERT_EQ(credential.size(), 64u) << r.log();
    post_workload(r, {{"pid", w.pid()}}, 401);
    post_workload(r, {{"pid", w.pid()}}, 401, credential.substr(1) + "0");
    json a = post_workload(r, {{"pid", w.pid()}, {"name", "by-credential"}}, 200, credential);
    EXPECT_EQ(r.client(credential).del("/api/workloads/" + a["id"].get<std::string>()).status, 200);
  }
  {
    Runnerd r({"OVERLAY_ENABLED=False", "HOST_ADDRESS=127.0.0.1", "HOST_PORT=" + port,
               "RUNNER_HOSTNAME=open-runner", "OVERLAY_API_TOKEN="});
    r.start();
    r.wait_status(default_network_up);
    // Past authentication: the body's own fault.
    post_workload(r, json::object(), 422, "");
    EXPECT_NE(r.log().find("mutating routes are open"), std::string::npos) << r.log();
  }
}

// A namespace that holds someone else's interfaces or routes (a host namespace, another tool's
// container) is refused: the runner once replaced its default route, and DELETE left it with
// none. A file that is not a namespace is a 400, not a 500.
TEST(RunnerdApi, NamespacesItDoesNotOwnAreRefusedAndLeftAlone) {
  Runnerd r({"OVERLAY_ENABLED=False", "HOST_ADDRESS=127.0.0.1",
             "HOST_PORT=" + std::to_string(pick_free_port())});
  r.start();
  r.wait_status(default_network_up);
  json e = post_workload(r, {{"netns", "/etc/hostname"}}, 400);
  EXPECT_NE(e["error"].get<std::string>().find("not a network namespace"), std::string::npos) << e;

  NamespacedProcess other;
  for (const std::vector<std::string>& cmd :
       {std::vector<std::string>{"ip", "link", "add", "up0", "type", "veth", "peer", "name", "up1"},
        {"ip", "addr", "add", "10.99.0.1/24", "dev", "up0"},
        {"ip", "link", "set", "up0", "up"},
        {"ip", "route", "add", "default", "via", "10.99.0.254"}})
    ASSERT_EQ(other.run(cmd).exit_code, 0) << cmd[1];
  const std::string routes_before = other.run({"ip", "-4", "route", "show"}).out;
  e = post_workload(r, {{"pid", other.pid()}}, 409);
  EXPECT_NE(e["error"].get<std::string>().find("did not create"), std::string::npos) << e;
  EXPECT_EQ(other.run({"ip", "-4", "route", "show"}).out, routes_before);
  EXPECT_NE(other.run({"ip", "link", "show", "eth0"}).exit_code, 0) << "no veth was added";

  // A fresh namespace is attached; a second interface (as a named network would add) keeps
  // the first one's default route.
  NamespacedProcess fresh;
  json a = post_workload(r, {{"pid", fresh.pid()}}, 200);
  const std::string default_route = fresh.run({"ip", "-4", "route", "show", "default"}).out;
  EXPECT_NE(default_route.find("dev eth0"), std::string::npos) << default_route;
  post_workload(r, {{"pid", fresh.pid()}, {"interface", "eth1"}}, 200);
  EXPECT_EQ(fresh.run({"ip", "-4", "route", "show", "default"}).out, default_route);
  EXPECT_EQ(r.client().del("/api/workloads/" + a["id"].get<std::string>()).status, 200);
}

TEST(RunnerdApi, RefusedRegistrationIsExplainedAndWorkloadsUseTheDefaultNetwork) {
  Hostd host;
  host.start();
  const std::string port = host.url().substr(host.url().rfind(':') + 1);
  Runnerd r({"OVERLAY_ENABLED=True", "HOST_ADDRESS=127.0.0.1", "HOST_PORT=" + port,
             "OVERLAY_VXLAN_ID=200", "OVERLAY_API_TOKEN=" + host.api_token()});
  r.start();
  // The refusal is recorded before the fallback network is built: wait for both.
  json s =
      r.wait_status([](const json& s) { return s["state"] == "refused" && default_network_up(s); });
  const std::string reason = s["reason"];
  EXPECT_NE(reason.find("200"), std::string::npos) << reason;
  EXPECT_NE(reason.find("100"), std::string::npos) << reason;
  EXPECT_NE(r.log().find("ERROR runner: the host refused registration"), std::string::npos)
      << r.log();
  EXPECT_EQ(s["overlay_ready"], false);
  EXPECT_EQ(s["default_network"]["bridge"], "kohakuriver-net");

  NamespacedProcess w;
  json a = post_workload(r, {{"pid", w.pid()}, {"name", "fallback"}}, 200);
  EXPECT_EQ(a["network"], "default");
  EXPECT_EQ(a["ip"], "172.30.0.2");
  EXPECT_EQ(a["gateway"], "172.30.0.1");
  EXPECT_NE(w.run({"ip", "-4", "addr", "show", "eth0"}).out.find("172.30.0.2/16"),
            std::string::npos);
  EXPECT_EQ(w.run({"ping", "-c", "1", "-W", "2", "172.30.0.1"}).exit_code, 0);
  EXPECT_EQ(get_json(host.client(), "/api/overlay/status")["allocations"].size(), 0u);
}

// The credential the host issues is kept in STATE_DIR and presented again: with it the runner
// may come back from another address; without it that move is refused.
TEST(RunnerdApi, KeepsAndPresentsItsRunnerCredential) {
  Hostd host({"OVERLAY_ENABLED=False"});
  host.start();
  const std::string port = host.url().substr(host.url().rfind(':') + 1);
  const std::vector<std::string> sets = {"OVERLAY_ENABLED=False", "HOST_ADDRESS=127.0.0.1",
                                         "HOST_PORT=" + port,
                                         "OVERLAY_API_TOKEN=" + host.api_token()};
  auto node_url = [&]() -> std::string {
    for (const auto& n : get_json(host.client(), "/api/nodes"))
      if (n["hostname"] == "api-runner") return n["url"];
    return "";
  };
  auto wait_node_url = [&](const std::string& prefix) {
    const auto deadline = deadline_in(std::chrono::seconds(10));
    while (!past(deadline) && node_url().rfind(prefix, 0) != 0)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    return node_url();
  };

  // Registered before from elsewhere, the credential it got then is in the runner's STATE_DIR.
  json earlier = register_runner(host.client(), "api-runner", "10.9.9.9");
  const std::string credential = earlier["runner_credential"];
  {
    Runnerd r(sets);
    std::filesystem::create_directories(r.state_dir());
    write_file(r.state_dir() / "runner_credential", credential + "\n");
    r.start();
    const std::string moved = wait_node_url(std::string("http://") + kRunnerIp + ":");
    EXPECT_EQ(moved.rfind(std::string("http://") + kRunnerIp + ":", 0), 0u) << moved << r.log();
  }
  // Moved back by its owner; a runner without the credential cannot take it from there: it is
  // refused with the reason, and the host keeps the node where it was.
  register_runner(host.client(), "api-runner", "10.9.9.9", json::object(), credential);
  {
    Runnerd r(sets);
    r.start();
    const auto deadline = deadline_in(std::chrono::seconds(10));
    while (!past(deadline) && r.log().find("credential") == std::string::npos)
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    EXPECT_NE(r.log().find("needs its runner credential"), std::string::npos) << r.log();
    EXPECT_EQ(node_url(), "http://10.9.9.9:8001");
  }
  // A first registration stores the issued credential, mode 0600.
  {
    Runnerd r({"OVERLAY_ENABLED=False", "HOST_ADDRESS=127.0.0.1", "HOST_PORT=" + port,
               "RUNNER_HOSTNAME=fresh-runner", "OVERLAY_API_TOKEN=" + host.api_token()});
    r.start();
    const auto file = r.state_dir() / "runner_credential";
    const auto deadline = deadline_in(std::chrono::seconds(10));
    while (!past(deadline) && !std::filesystem::exists(file))
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    ASSERT_TRUE(std::filesystem::exists(file)) << r.log();
    EXPECT_EQ(std::filesystem::status(file).permissions() & std::filesystem::perms::all,
              std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
    std::string stored = read_file(file);
    EXPECT_EQ(stored.size(), 65u) << stored;
    // The host holds the same secret for it (its state files are 0600 too).
    std::string host_state =
        read_file(host.state_dir() / "journal.log") + read_file(host.state_dir() / "state.json");
    EXPECT_NE(host_state.find(stored.substr(0, 64)), std::string::npos);
  }
}

TEST(RunnerdApi, WorkloadsSurviveARestartAndGoWithTheirNamespace) {
  const std::vector<std::string> sets = {"OVERLAY_ENABLED=False", "HOST_ADDRESS=127.0.0.1",
                                         "HOST_PORT=" + std::to_string(pick_free_port())};
  Runnerd r(sets);
  r.start();
  r.wait_status(default_network_up);
  NamespacedProcess kept, dies;
  json a = post_workload(r, {{"pid", kept.pid()}, {"name", "kept"}}, 200);
  json b = post_workload(r, {{"pid", dies.pid()}, {"name", "dies"}}, 200);
  ASSERT_TRUE(a.is_object() && b.is_object());
  EXPECT_NE(a["ip"], b["ip"]);
  EXPECT_EQ(kept.run({"ping", "-c", "1", "-W", "2", b["ip"]}).exit_code, 0);

  // SIGTERM leaves everything in place; the next daemon knows both workloads.
  EXPECT_EQ(r.stop(), 0);
  EXPECT_EQ(kept.run({"ping", "-c", "1", "-W", "2", b["ip"]}).exit_code, 0);
  r.start();
  r.wait_status(default_network_up);
  EXPECT_EQ(r.client().get("/api/workloads").json()["workloads"].size(), 2u);

  // A namespace that dies takes its veth along; the runner forgets the workload.
  dies.kill();
  r.wait_status([](const json& s) { return s["workloads"].size() == 1; });

  auto res = r.client().del("/api/workloads/" + a["id"].get<std::string>());
  EXPECT_EQ(res.status, 200) << res.body;
  EXPECT_NE(kept.run({"ip", "link", "show", "eth0"}).exit_code, 0);
  EXPECT_EQ(r.client().get("/api/workloads").json()["workloads"].size(), 0u);
}

}  // namespace
}  // namespace kohaku::test
