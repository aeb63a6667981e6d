// Docker network spec building, comparison with what the Engine API reports, and the plan of
// what to tell the host about container addresses.
#include <gtest/gtest.h>

#include "runner/docker/docker_network_spec.h"
#include "runner/docker/docker_network_sync.h"
#include "runner/l2/l2_docker_networks.h"

namespace kohaku::runner {
namespace {

using nlohmann::json;

DockerNetworkSpec overlay_spec() {
  return overlay_network_spec("kohakuriver-overlay", "kohaku-overlay",
                              Ipv4Cidr::parse("10.128.64.0/18"), Ipv4Addr::parse("10.128.64.1"),
                              Ipv4Addr::parse("10.128.64.254"), 1450);
}

// What `docker network inspect` answers for a network created from `spec`.
json inspected_from(const json& create) {
  json ipam = create["IPAM"];
  return json{{"Name", create["Name"]},       {"Id", "0123456789abcdef0123"},
              {"Driver", create["Driver"]},   {"IPAM", ipam},
              {"Options", create["Options"]}, {"Containers", json::object()}};
}

TEST(RunnerDockerNetwork, CreateRequestCarriesEverySetting) {
  const json req = build_create_request(overlay_spec());
  EXPECT_EQ(req["Name"], "kohakuriver-overlay");
  EXPECT_EQ(req["Driver"], "bridge");
  const json& cfg = req["IPAM"]["Config"][0];
  EXPECT_EQ(cfg["Subnet"], "10.128.64.0/18");
  EXPECT_EQ(cfg["Gateway"], "10.128.64.1");
  EXPECT_EQ(cfg["IPRange"], "10.128.96.0/19");
  EXPECT_EQ(cfg["AuxiliaryAddresses"]["kohaku-host"], "10.128.64.254");
  EXPECT_EQ(cfg["AuxiliaryAddresses"]["kohaku-range-base"], "10.128.96.0");
  const json& opt = req["Options"];
  EXPECT_EQ(opt["com.docker.network.bridge.name"], "kohaku-overlay");
  EXPECT_EQ(opt["com.docker.network.driver.mtu"], "1450");
  EXPECT_EQ(opt["com.docker.network.bridge.enable_icc"], "true");
  EXPECT_EQ(opt["com.docker.network.bridge.enable_ip_masquerade"], "false");
}

TEST(RunnerDockerNetwork, NetworkBuiltFromSpecMatches) {
  const auto spec = overlay_spec();
  const NetworkDiff diff = compare_network(spec, inspected_from(build_create_request(spec)));
  EXPECT_TRUE(diff.matches()) << diff.describe();
}

TEST(RunnerDockerNetwork, OtherBridgeSubnetOrGatewayIsFatal) {
  const auto spec = overlay_spec();
  json net = inspected_from(build_create_request(spec));
  net["Options"]["com.docker.network.bridge.name"] = "br-123";
  net["IPAM"]["Config"][0]["Subnet"] = "10.128.128.0/18";
  net["IPAM"]["Config"][0]["Gateway"] = "10.128.128.1";
  const NetworkDiff diff = compare_network(spec, net);
  ASSERT_EQ(diff.fatal.size(), 3u) << diff.describe();
  EXPECT_NE(diff.describe().find("br-123"), std::string::npos);
  EXPECT_NE(diff.describe().find("10.128.128.0/18"), std::string::npos);
}

TEST(RunnerDockerNetwork, MtuMasqueradeAndMissingExclusionAreSoft) {
  const auto spec = overlay_spec();
  json net = inspected_from(build_create_request(spec));
  net["Options"]["com.docker.network.driver.mtu"] = "1500";
  net["Options"].erase("com.docker.network.bridge.enable_ip_masquerade");  // Docker default: on
  net["IPAM"]["Config"][0].erase("AuxiliaryAddresses");
  const NetworkDiff diff = compare_network(spec, net);
  EXPECT_TRUE(diff.fatal.empty()) << diff.describe();
  EXPECT_EQ(diff.soft.size(), 4u) << diff.describe();  // mtu, masquerade, 2 exclusions
}

TEST(RunnerDockerNetwork, NonBridgeDriverIsFatal) {
  const auto spec = overlay_spec();
  json net = inspected_from(build_create_request(spec));
  net["Driver"] = "macvlan";
  EXPECT_FALSE(compare_network(spec, net).fatal.empty());
}

TEST(RunnerDockerNetwork, Ipv6ConfigEntryIsIgnored) {
  const auto spec = overlay_spec();
  json net = inspected_from(build_create_request(spec));
  net["IPAM"]["Config"].insert(net["IPAM"]["Config"].begin(),
                               json{{"Subnet", "fd00::/64"}, {"Gateway", "fd00::1"}});
  EXPECT_TRUE(compare_network(spec, net).matches());
}

TEST(RunnerDockerNetwork, ContainerAddressesSkipNonContainerKeys) {
  json net = {{"Containers",
               {{"abc123", {{"Name", "c1"}, {"IPv4Address", "10.128.96.1/18"}}},
                {"ep-77", {{"Name", "c2"}, {"IPv4Address", "10.128.96.2/18"}}},
                {"lb-kohakuriver-overlay", {{"IPv4Address", "10.128.96.3/18"}}},
                {"def456", {{"Name", "c3"}, {"IPv4Address", ""}}}}}};
  const auto addrs = container_addresses(net);
  ASSERT_EQ(addrs.size(), 1u);
  EXPECT_EQ(addrs.at("abc123"), Ipv4Addr::parse("10.128.96.1"));
}

TEST(RunnerDockerNetwork, UpperHalf) {
  EXPECT_EQ(upper_half(Ipv4Cidr::parse("10.1.0.0/16")), Ipv4Cidr::parse("10.1.128.0/17"));
  EXPECT_EQ(upper_half(Ipv4Cidr::parse("10.1.0.0/31")).prefix, 0);
}

TEST(RunnerDockerReport, PlanUsesNewReleasesGoneAndMovesChanged) {
  const auto ip = [](const char* s) { return Ipv4Addr::parse(s); };
  const std::map<std::string, Ipv4Addr> reported = {
      {"kept", ip("10.1.128.1")}, {"gone", ip("10.1.128.2")}, {"moved", ip("10.1.128.3")}};
  const std::map<std::string, Ipv4Addr> current = {
      {"kept", ip("10.1.128.1")}, {"moved", ip("10.1.128.9")}, {"new", ip("10.1.128.4")}};
  const ReportPlan plan = plan_reports(reported, current);
  EXPECT_EQ(plan.release, (std::set<std::string>{"gone", "moved"}));
  ASSERT_EQ(plan.use.size(), 2u);
  EXPECT_EQ(plan.use.at("moved"), ip("10.1.128.9"));
  EXPECT_EQ(plan.use.at("new"), ip("10.1.128.4"));
  EXPECT_TRUE(plan_reports(current, current).use.empty());
  EXPECT_TRUE(plan_reports(current, current).release.empty());
}

L2NetworkView train_view() {
  L2NetworkView v;
  v.name = "train";
  v.vni = 13091;
  v.subnet = Ipv4Cidr::parse("172.20.0.0/24");
  v.gateway = Ipv4Addr::parse("172.20.0.1");
  v.mtu = 1450;
  return v;
}

TEST(RunnerL2DockerNetwork, SpecIsTheNetworksBridgeConfinedToTheBlock) {
  const auto spec = l2_docker_network_spec(train_view(), Ipv4Cidr::parse("172.20.0.192/27"));
  const json req = build_create_request(spec);
  EXPECT_EQ(req["Name"], "kohaku-train");
  EXPECT_EQ(req["Driver"], "bridge");
  const json& cfg = req["IPAM"]["Config"][0];
  EXPECT_EQ(cfg["Subnet"], "172.20.0.0/24");
  EXPECT_EQ(cfg["Gateway"], "172.20.0.1");
  EXPECT_EQ(cfg["IPRange"], "172.20.0.192/27");
  EXPECT_FALSE(cfg.contains("AuxiliaryAddresses"));
  const json& opt = req["Options"];
  EXPECT_EQ(opt["com.docker.network.bridge.name"], "kbr-train");
  EXPECT_EQ(opt["com.docker.network.driver.mtu"], "1450");
  EXPECT_EQ(opt["com.docker.network.bridge.enable_ip_masquerade"], "false");
  EXPECT_EQ(req["Labels"]["org.kohaku.managed-by"], "kohaku-runnerd");
  EXPECT_EQ(req["Labels"]["org.kohaku.l2-network"], "train");

  // A long name's bridge is kb-<sha256>, as the L2 agent builds it.
  L2NetworkView longer = train_view();
  longer.name = "a-rather-long-network";
  EXPECT_EQ(l2_docker_network_spec(longer, Ipv4Cidr::parse("172.20.0.192/27")).bridge,
            l2_bridge_name("a-rather-long-network"));
  EXPECT_EQ(l2_docker_network_name("a-rather-long-network"), "kohaku-a-rather-long-network");

  // What Docker reports back matches; another block is a soft difference (fixed once the
  // network is empty), another bridge a fatal one.
  json inspected = inspected_from(req);
  inspected["Labels"] = req["Labels"];
  EXPECT_TRUE(compare_network(spec, inspected).matches())
      << compare_network(spec, inspected).describe();
  const auto moved = l2_docker_network_spec(train_view(), Ipv4Cidr::parse("172.20.0.160/27"));
  const NetworkDiff d = compare_network(moved, inspected);
  EXPECT_TRUE(d.fatal.empty());
  ASSERT_EQ(d.soft.size(), 1u);
  EXPECT_EQ(d.soft[0], "ip range is '172.20.0.192/27', want '172.20.0.160/27'");
  inspected["Options"]["com.docker.network.bridge.name"] = "kohaku-overlay";
  EXPECT_EQ(compare_network(spec, inspected).fatal.size(), 1u);
}

TEST(RunnerL2DockerNetwork, OwnershipByLabel) {
  const json req = build_create_request(
      l2_docker_network_spec(train_view(), Ipv4Cidr::parse("172.20.0.192/27")));
  json ours = {{"Name", "kohaku-train"}, {"Labels", req["Labels"]}};
  EXPECT_TRUE(docker_network_is_ours(ours));
  EXPECT_EQ(docker_network_l2_label(ours), "train");
  // The overlay network is ours but belongs to no named network.
  json overlay = {{"Name", "kohakuriver-overlay"},
                  {"Labels", build_create_request(overlay_spec())["Labels"]}};
  EXPECT_TRUE(docker_network_is_ours(overlay));
  EXPECT_FALSE(docker_network_l2_label(overlay));
  // Someone else's network of the same name (no labels, or null labels as Docker answers).
  EXPECT_FALSE(docker_network_is_ours(json{{"Name", "kohaku-train"}, {"Labels", json::object()}}));
  EXPECT_FALSE(docker_network_is_ours(json{{"Name", "kohaku-train"}, {"Labels", nullptr}}));
  EXPECT_FALSE(docker_network_l2_label(
      json{{"Labels", {{"org.kohaku.l2-network", "train"}, {"org.kohaku.managed-by", "me"}}}}));
}

TEST(RunnerL2DockerNetwork, BlockAnswerParsing) {
  const Ipv4Cidr subnet = Ipv4Cidr::parse("172.20.0.0/24");
  EXPECT_EQ(parse_block_answer(json{{"cidr", "172.20.0.192/27"}, {"created", true}}, subnet),
            Ipv4Cidr::parse("172.20.0.192/27"));
  EXPECT_EQ(parse_block_answer(json{{"cidr", "172.20.0.4/30"}}, subnet),
            Ipv4Cidr::parse("172.20.0.4/30"));
  auto error = [&](const json& answer) {
    try {
      parse_block_answer(answer, subnet);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_EQ(error(json::object()), "the host's block answer has no 'cidr'");
  EXPECT_EQ(error(json{{"cidr", 5}}), "the host's block answer has no 'cidr'");
  EXPECT_EQ(error(json{{"cidr", "172.20.0.193/27"}}),
            "the host's block '172.20.0.193/27' is not a CIDR with zero host bits");
  EXPECT_EQ(error(json{{"cidr", "172.20.0.4/31"}}),
            "the host's block 172.20.0.4/31 is smaller than 4 addresses");
  EXPECT_EQ(error(json{{"cidr", "172.21.0.0/27"}}),
            "the host's block 172.21.0.0/27 is not a part of the subnet 172.20.0.0/24");
  EXPECT_EQ(error(json{{"cidr", "172.20.0.0/24"}}),
            "the host's block 172.20.0.0/24 is not a part of the subnet 172.20.0.0/24");
  EXPECT_EQ(error(json{{"cidr", "172.20.0.0/23"}}),
            "the host's block 172.20.0.0/23 is not a part of the subnet 172.20.0.0/24");
}

}  // namespace
}  // namespace kohaku::runner
