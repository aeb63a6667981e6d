#pragma once
// The OverlayService test fixture shared by overlay_service*_test.cpp: a service on a temp
// STATE_DIR with a clock the test moves, driven the way the HTTP routes drive it (query strings
// and bodies parsed by host/api/overlay_params.h), so parameter validation is tested too.
// Not in an anonymous namespace: GoogleTest wants one fixture type per suite across files.
#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "host/api/overlay_params.h"
#include "host/overlay/overlay_service.h"
#include "host/overlay/runner_registry.h"
#include "support/api_status.h"
#include "support/temp_dir.h"

namespace kohaku::test {

using test_support::TempDir;
namespace fs = std::filesystem;
using nlohmann::json;

using test_support::status_of;

struct Recorder : AllocationObserver {
  std::vector<std::string> events;
  std::function<void()> during_call;
  void on_allocated(const RunnerAllocation& a) override {
    events.push_back("allocated " + a.hostname + " " + std::to_string(a.id) + " " +
                     a.physical_ip.to_string());
    if (during_call) during_call();
  }
  void on_released(const RunnerAllocation& a) override {
    events.push_back("released " + a.hostname + " " + std::to_string(a.id));
    if (during_call) during_call();
  }
};

class OverlayServiceTest : public ::testing::Test {
 protected:
  TempDir dir;
  std::atomic<int64_t> now{1'800'000'000'000};  // 2027-01-15T08:00:00Z
  HostConfig config;
  std::unique_ptr<OverlayService> svc;

  OverlayServiceTest() {
    config.state_dir = (dir.path() / "state").string();
    config.overlay_enabled = true;
    config.overlay_subnet = SubnetScheme::parse("10.128.0.0/12/6/14");
    config.host_reachable_address = Ipv4Addr::parse("192.168.1.10");
    start();
  }

  void start() {
    svc = std::make_unique<OverlayService>(config, [this] { return now.load(); });
  }
  void restart() {
    svc.reset();
    start();
  }
  void advance_ms(int64_t ms) { now += ms; }

  // The routes: parse as the API layer does, then call the service.
  json register_runner(const json& body, const std::string& credential = {}) {
    return svc->register_runner(parse_register(body), credential);
  }
  json ip_available(const QueryParams& q) { return svc->ip_available(parse_ip_available(q)); }
  json ip_reserve(const QueryParams& q) { return svc->ip_reserve(parse_ip_reserve(q)); }
  json ip_release(const QueryParams& q, const std::string& credential = {}) {
    return svc->ip_release(parse_ip_release(q), credential);
  }
  json ip_reservations(const QueryParams& q) {
    return svc->ip_reservations(parse_ip_reservations(q));
  }
  json ip_validate(const QueryParams& q) { return svc->ip_validate(parse_ip_validate(q)); }
  json ip_use(const QueryParams& q, const std::string& credential = {}) {
    return svc->ip_use(parse_ip_use(q), credential);
  }

  // Registers as the real runner does: presenting the credential it was issued, if any.
  json reg(const std::string& host, const std::string& ip) {
    json answer =
        register_runner({{"hostname", host}, {"url", "http://" + ip + ":8001"}}, credentials[host]);
    if (answer.contains("runner_credential")) credentials[host] = answer["runner_credential"];
    return answer;
  }
  std::map<std::string, std::string> credentials;
};

}  // namespace kohaku::test
