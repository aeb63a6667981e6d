// One attached workload as the runner reports it (common/wire/workload_report.h): the JSON the
// runner sends and kohakuctl reads, and what a reader refuses.
#include "common/wire/workload_report.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>

namespace kohaku::wire {
namespace {

using nlohmann::json;

const json kByNetns = {{"id", "wl-0123456789ab"},
                       {"name", "trainer"},
                       {"ip", "10.128.64.2"},
                       {"prefix", 18},
                       {"gateway", "10.128.64.1"},
                       {"interface", "eth0"},
                       {"host_veth", "kw0123456789ab"},
                       {"mtu", 1450},
                       {"network", "overlay"},
                       {"bridge", "kohaku-overlay"},
                       {"created_at_ms", 1800000000000},
                       {"netns", "/run/netns/w1"}};

std::string refusal(const json& j) {
  try {
    WorkloadReport::from_json(j);
  } catch (const std::invalid_argument& e) {
    return e.what();
  }
  return "accepted";
}

TEST(WorkloadReport, ReadsAndWritesTheRunnersJson) {
  const WorkloadReport r = WorkloadReport::from_json(kByNetns);
  EXPECT_EQ(r.id, "wl-0123456789ab");
  EXPECT_EQ(r.ip.to_string(), "10.128.64.2");
  EXPECT_EQ(r.prefix, 18);
  EXPECT_EQ(r.netns, "/run/netns/w1");
  EXPECT_EQ(r.pid, 0);
  EXPECT_EQ(r.to_json(), kByNetns) << "netns given, pid left out";

  json by_pid = kByNetns;
  by_pid.erase("netns");
  by_pid["pid"] = 4242;
  EXPECT_EQ(WorkloadReport::from_json(by_pid).to_json(), by_pid) << "pid given, netns left out";
}

TEST(WorkloadReport, RefusalsNameTheField) {
  json j = kByNetns;
  j.erase("bridge");
  EXPECT_EQ(refusal(j), "workload report: 'bridge' missing or not a string");
  j = kByNetns;
  j["ip"] = "10.128.64";
  EXPECT_EQ(refusal(j), "workload report: 'ip' is not an IPv4 address: 10.128.64");
  j = kByNetns;
  j["prefix"] = 33;
  EXPECT_EQ(refusal(j), "workload report: 'prefix' over 32");
  j = kByNetns;
  j["mtu"] = "1450";
  EXPECT_NE(refusal(j).find("'mtu'"), std::string::npos) << refusal(j);
  EXPECT_EQ(refusal(json::array()), "workload report: not an object");
}

TEST(WorkloadReport, ListNamesTheEntry) {
  EXPECT_EQ(workload_reports_from_json(json::array({kByNetns, kByNetns})).size(), 2u);
  EXPECT_EQ(to_json(workload_reports_from_json(json::array({kByNetns}))), json::array({kByNetns}));
  try {
    workload_reports_from_json(json::array({kByNetns, json::object()}));
    FAIL() << "accepted an empty entry";
  } catch (const std::invalid_argument& e) {
    EXPECT_EQ(std::string(e.what()), "workloads[1]: workload report: 'id' missing or not a string");
  }
}

}  // namespace
}  // namespace kohaku::wire
