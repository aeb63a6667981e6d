// Workload bookkeeping: persistence round trip, corrupt state, request validation, and the
// runner's own address choice on the default network.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "common/api_error.h"
#include "runner/api/attach_request_json.h"
#include "runner/workloads/workload_manager.h"
#include "runner/workloads/workload_store.h"
#include "support/temp_dir.h"

namespace kohaku::runner {
namespace {

using test_support::TempDir;

namespace fs = std::filesystem;
using nlohmann::json;

Workload sample(const std::string& id, const char* ip) {
  Workload w;
  w.id = id;
  w.name = "job-" + id;
  w.netns = "/var/run/netns/" + id;
  w.interface = "eth0";
  w.host_veth = host_veth_name(id);
  w.ip = Ipv4Addr::parse(ip);
  w.prefix = 18;
  w.gateway = Ipv4Addr::parse("10.128.64.1");
  w.mtu = 1450;
  w.network = "overlay";
  w.bridge = "kohaku-overlay";
  w.host_managed = true;
  w.created_at_ms = 1700000000000;
  return w;
}

TEST(RunnerWorkloadStore, MissingFileIsEmpty) {
  TempDir dir;
  EXPECT_TRUE(WorkloadStore(dir.path() / "workloads.json").load().empty());
}

TEST(RunnerWorkloadStore, RoundTripKeepsEveryField) {
  TempDir dir;
  WorkloadStore store(dir.path() / "sub" / "workloads.json");
  auto a = sample("wl-0123456789ab", "10.128.64.2");
  auto b = sample("wl-ba9876543210", "10.128.64.3");
  b.netns.clear();
  b.pid = 4242;
  b.release_pending = true;
  store.save({a, b});
  const auto loaded = WorkloadStore(store.file()).load();
  ASSERT_EQ(loaded.size(), 2u);
  EXPECT_EQ(loaded[0], a);
  EXPECT_EQ(loaded[1], b);
}

TEST(RunnerWorkloadStore, CorruptFileIsAnErrorNamingIt) {
  TempDir dir;
  const fs::path file = dir.path() / "workloads.json";
  std::ofstream(file) << "{\"version\": 1, \"workloads\": [{\"id\": \"wl-1\"}]}";
  try {
    WorkloadStore(file).load();
    FAIL() << "corrupt state accepted";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(file.string()), std::string::npos) << e.what();
  }
  std::ofstream(file, std::ios::trunc) << "not json";
  EXPECT_THROW(WorkloadStore(file).load(), std::runtime_error);
}

TEST(RunnerWorkloadStore, IdsAndVethNames) {
  const std::string id = new_workload_id();
  ASSERT_EQ(id.size(), 15u);
  EXPECT_EQ(id.rfind("wl-", 0), 0u);
  EXPECT_NE(id, new_workload_id());
  const std::string veth = host_veth_name(id);
  EXPECT_LE(veth.size(), 15u);  // IFNAMSIZ - 1
  EXPECT_EQ(veth, "kw" + id.substr(3));
}

int status_of(const json& body) {
  try {
    attach_request_from_json(body);
    return 200;
  } catch (const ApiError& e) {
    return e.status();
  }
}

TEST(RunnerAttachRequest, AcceptsNetnsOrPidWithOptions) {
  auto r =
      attach_request_from_json(json{{"netns", "/var/run/netns/x"}, {"token", "t"}, {"name", "n"}});
  EXPECT_EQ(r.netns, "/var/run/netns/x");
  EXPECT_EQ(r.token, "t");
  EXPECT_EQ(r.name, "n");
  EXPECT_EQ(r.interface, "eth0");
  r = attach_request_from_json(json{{"pid", 123}, {"interface", "net1"}});
  EXPECT_EQ(r.pid, 123);
  EXPECT_EQ(r.interface, "net1");
}

TEST(RunnerAttachRequest, RejectsBadInputWith422) {
  EXPECT_EQ(status_of(json::array()), 422);
  EXPECT_EQ(status_of(json::object()), 422);                     // neither
  EXPECT_EQ(status_of(json{{"netns", "/a"}, {"pid", 1}}), 422);  // both
  EXPECT_EQ(status_of(json{{"netns", "relative/path"}}), 422);
  EXPECT_EQ(status_of(json{{"pid", -5}}), 422);
  EXPECT_EQ(status_of(json{{"pid", "12"}}), 422);
  EXPECT_EQ(status_of(json{{"pid", 1}, {"token", ""}}), 422);
  EXPECT_EQ(status_of(json{{"pid", 1}, {"interface", "much-too-long-name0"}}), 422);
  EXPECT_EQ(status_of(json{{"pid", 1}, {"interface", "a/b"}}), 422);
  EXPECT_EQ(status_of(json{{"pid", 1}, {"colour", "red"}}), 422);
}

TEST(RunnerDefaultAddresses, LowestFreeSkipsGatewayTakenAndEdges) {
  const auto subnet = Ipv4Cidr::parse("172.30.0.0/29");
  const auto gw = Ipv4Addr::parse("172.30.0.1");
  EXPECT_EQ(pick_free_address(subnet, gw, {}), Ipv4Addr::parse("172.30.0.2"));
  std::set<uint32_t> taken = {Ipv4Addr::parse("172.30.0.2").value,
                              Ipv4Addr::parse("172.30.0.3").value};
  EXPECT_EQ(pick_free_address(subnet, gw, taken), Ipv4Addr::parse("172.30.0.4"));
  for (int i = 4; i <= 6; ++i) taken.insert(Ipv4Addr::parse("172.30.0." + std::to_string(i)).value);
  EXPECT_FALSE(pick_free_address(subnet, gw, taken));  // .7 is broadcast
}

}  // namespace
}  // namespace kohaku::runner
