// kohakuctl's command tree: every form of KohakuRiver's `node ...` commands (its docs and its
// CLI), the top-level aliases, `network ...`, and the refusals, parsed without a host.
#include <gtest/gtest.h>

#include "kohakuctl/command_line.h"

namespace kohakuctl {
namespace {

Invocation parse(std::vector<std::string> args) {
  CommandLine cl = parse_command_line(args);
  EXPECT_FALSE(cl.help);
  return cl.inv;
}

// The UsageError's message, "" when the line parsed.
std::string usage_error(std::vector<std::string> args) {
  try {
    parse_command_line(args);
  } catch (const UsageError& e) {
    EXPECT_FALSE(e.usage().empty()) << e.what();
    return e.what();
  }
  return "";
}

using Args = std::vector<std::string>;

TEST(KohakuctlCommandLine, NodeOverlayWithAndWithoutHost) {
  auto all = parse({"node", "overlay"});
  EXPECT_EQ(all.command, "node overlay");
  EXPECT_TRUE(all.args.empty());
  auto one = parse({"node", "overlay", "gpu-01"});
  EXPECT_EQ(one.command, "node overlay");
  EXPECT_EQ(one.args, Args{"gpu-01"});
  // A runner named like a command: a `node` command name is taken as HOST, a top-level one
  // after `--`.
  EXPECT_EQ(parse({"node", "overlay", "list"}).args, Args{"list"});
  EXPECT_EQ(parse({"node", "overlay", "--", "network"}).args, Args{"network"});
}

TEST(KohakuctlCommandLine, NodeMonitoringCommands) {
  EXPECT_EQ(parse({"node", "summary"}).command, "node summary");
  auto list = parse({"node", "list"});
  EXPECT_EQ(list.command, "node list");
  EXPECT_FALSE(list.status);
  EXPECT_EQ(parse({"node", "list", "-s", "online"}).status, "online");
  EXPECT_EQ(parse({"node", "list", "--status", "offline"}).status, "offline");
  auto status = parse({"node", "status", "gpu-01"});
  EXPECT_EQ(status.command, "node status");
  EXPECT_EQ(status.args, Args{"gpu-01"});
  EXPECT_NE(usage_error({"node", "status"}), "");  // HOST is required
  EXPECT_TRUE(parse({"node", "health"}).args.empty());
  EXPECT_EQ(parse({"node", "health", "gpu-01"}).args, Args{"gpu-01"});
}

TEST(KohakuctlCommandLine, OverlayReleaseAndCleanup) {
  auto r = parse({"node", "overlay-release", "gpu-01"});
  EXPECT_EQ(r.command, "node overlay-release");
  EXPECT_EQ(r.args, Args{"gpu-01"});
  EXPECT_FALSE(r.force);
  EXPECT_TRUE(parse({"node", "overlay-release", "gpu-01", "-f"}).force);
  EXPECT_TRUE(parse({"node", "overlay-release", "--force", "gpu-01"}).force);
  EXPECT_NE(usage_error({"node", "overlay-release"}), "");
  EXPECT_FALSE(parse({"node", "overlay-cleanup"}).force);
  EXPECT_TRUE(parse({"node", "overlay-cleanup", "-f"}).force);
  EXPECT_NE(usage_error({"node", "overlay-cleanup", "gpu-01"}), "");
}

TEST(KohakuctlCommandLine, IpReserveShortAndLongOptions) {
  auto plain = parse({"node", "ip-reserve", "gpu-01"});
  EXPECT_EQ(plain.command, "node ip-reserve");
  EXPECT_EQ(plain.args, Args{"gpu-01"});
  EXPECT_FALSE(plain.ip);
  EXPECT_EQ(plain.ttl, "300");  // KohakuRiver's CLI default, sent as such
  auto docs = parse({"node", "ip-reserve", "gpu-01", "--ttl", "300"});
  EXPECT_EQ(docs.ttl, "300");
  auto shorts = parse({"node", "ip-reserve", "gpu-01", "-i", "10.128.64.9", "-t", "600"});
  EXPECT_EQ(shorts.ip, "10.128.64.9");
  EXPECT_EQ(shorts.ttl, "600");
  auto longs = parse({"node", "ip-reserve", "--ip=10.128.64.9", "--ttl=120", "gpu-01"});
  EXPECT_EQ(longs.ip, "10.128.64.9");
  EXPECT_EQ(longs.ttl, "120");
  EXPECT_NE(usage_error({"node", "ip-reserve", "gpu-01", "--ttl", "soon"}), "");
  EXPECT_NE(usage_error({"node", "ip-reserve"}), "");
}

TEST(KohakuctlCommandLine, IpReleaseByTokenOrByHostAndToken) {
  auto by_token = parse({"node", "ip-release", "abc123"});
  EXPECT_EQ(by_token.command, "node ip-release");
  EXPECT_EQ(by_token.args, Args{"abc123"});
  EXPECT_FALSE(by_token.reservation_token);
  // The docs' form: --token after the command is the reservation's, not the API token.
  auto by_host = parse({"node", "ip-release", "gpu-01", "--token", "abc123"});
  EXPECT_EQ(by_host.args, Args{"gpu-01"});
  EXPECT_EQ(by_host.reservation_token, "abc123");
  EXPECT_EQ(by_host.token, "");
  // Before the command, --token is the API's.
  CommandLine api = parse_command_line({"--token", "api-secret", "node", "ip-release", "abc123"});
  EXPECT_TRUE(api.token_given);
  EXPECT_EQ(api.inv.token, "api-secret");
  EXPECT_FALSE(api.inv.reservation_token);
  EXPECT_NE(usage_error({"node", "ip-release"}), "");
}

TEST(KohakuctlCommandLine, IpListHostPositionalOrRunnerOption) {
  EXPECT_FALSE(parse({"node", "ip-list"}).runner);
  EXPECT_EQ(parse({"node", "ip-list", "gpu-01"}).runner, "gpu-01");
  EXPECT_EQ(parse({"node", "ip-list", "-r", "gpu-01"}).runner, "gpu-01");
  EXPECT_EQ(parse({"node", "ip-list", "--runner", "gpu-01"}).runner, "gpu-01");
  EXPECT_EQ(parse({"node", "ip-list", "gpu-01", "-r", "gpu-01"}).runner, "gpu-01");
  EXPECT_NE(usage_error({"node", "ip-list", "gpu-01", "-r", "gpu-02"}).find("different runners"),
            std::string::npos);
}

TEST(KohakuctlCommandLine, IpInfoWithOptionalToken) {
  auto info = parse({"node", "ip-info", "gpu-01"});
  EXPECT_EQ(info.command, "node ip-info");
  EXPECT_EQ(info.args, Args{"gpu-01"});
  EXPECT_FALSE(info.reservation_token);
  EXPECT_EQ(parse({"node", "ip-info", "gpu-01", "--token", "abc"}).reservation_token, "abc");
  EXPECT_NE(usage_error({"node", "ip-info"}), "");
}

TEST(KohakuctlCommandLine, IpAvailableDefaultsToTwentyAsUpstream) {
  auto plain = parse({"node", "ip-available"});
  EXPECT_EQ(plain.command, "node ip-available");
  EXPECT_EQ(plain.limit, "20");
  EXPECT_FALSE(plain.runner);
  auto host = parse({"node", "ip-available", "gpu-01"});
  EXPECT_EQ(host.runner, "gpu-01");
  auto shorts = parse({"node", "ip-available", "-r", "gpu-01", "-l", "5"});
  EXPECT_EQ(shorts.runner, "gpu-01");
  EXPECT_EQ(shorts.limit, "5");
  EXPECT_EQ(parse({"node", "ip-available", "--runner", "gpu-01", "--limit", "7"}).limit, "7");
  EXPECT_NE(usage_error({"node", "ip-available", "-l", "many"}), "");
  EXPECT_NE(usage_error({"node", "ip-available", "gpu-01", "--runner", "gpu-02"}), "");
}

TEST(KohakuctlCommandLine, TopLevelVerbsAreAliasesOfTheNodeOnes) {
  EXPECT_EQ(parse({"ip-reserve", "gpu-01", "-t", "60"}).command, "node ip-reserve");
  EXPECT_EQ(parse({"ip-release", "tok"}).command, "node ip-release");
  EXPECT_EQ(parse({"ip-list", "--runner", "gpu-01"}).runner, "gpu-01");
  EXPECT_EQ(parse({"ip-info", "gpu-01"}).command, "node ip-info");
  EXPECT_EQ(parse({"ip-available"}).limit, "20");
  EXPECT_EQ(parse({"ip-stats"}).command, "node ip-stats");
  EXPECT_EQ(parse({"ip-validate", "tok"}).command, "node ip-validate");
  EXPECT_EQ(parse({"overlay-release", "gpu-01", "-f"}).command, "node overlay-release");
  EXPECT_EQ(parse({"overlay-cleanup", "-f"}).command, "node overlay-cleanup");
  EXPECT_EQ(parse({"node", "ip-stats"}).command, "node ip-stats");
  EXPECT_EQ(parse({"node", "ip-validate", "tok", "-r", "gpu-01"}).runner, "gpu-01");
  // `summary`, `list` ... are KohakuRiver's `node` commands only, as upstream.
  EXPECT_NE(usage_error({"summary"}), "");
}

TEST(KohakuctlCommandLine, GlobalOptionsBeforeOrAfterTheCommand) {
  CommandLine before =
      parse_command_line({"--host", "http://10.0.0.10:8000", "--json", "node", "overlay"});
  EXPECT_TRUE(before.host_given);
  EXPECT_EQ(before.inv.host, "http://10.0.0.10:8000");
  EXPECT_TRUE(before.inv.json);
  CommandLine after =
      parse_command_line({"node", "overlay", "--json", "--host=http://10.0.0.10:8000"});
  EXPECT_EQ(after.inv.host, "http://10.0.0.10:8000");
  EXPECT_TRUE(after.inv.json);
  EXPECT_TRUE(parse({"ip-stats", "--json"}).json);
  EXPECT_TRUE(parse({"network", "list", "--json"}).json);
  CommandLine api = parse_command_line({"ip-reserve", "gpu-01", "--api-token", "s"});
  EXPECT_EQ(api.inv.token, "s");
  CommandLine none = parse_command_line({"node", "summary"});
  EXPECT_FALSE(none.host_given);
  EXPECT_FALSE(none.token_given);
}

TEST(KohakuctlCommandLine, NetworkCommands) {
  auto create = parse({"network", "create", "train", "--subnet", "172.20.0.0/24", "--runners",
                       "a,b", "--vni", "4242", "--no-outbound-nat", "--gateway", "172.20.0.9"});
  EXPECT_EQ(create.command, "network create");
  EXPECT_EQ(create.args, Args{"train"});
  EXPECT_EQ(create.subnet, "172.20.0.0/24");
  EXPECT_EQ(create.runners, "a,b");
  EXPECT_EQ(create.vni, "4242");
  EXPECT_EQ(create.gateway, "172.20.0.9");
  EXPECT_TRUE(create.no_outbound_nat);
  EXPECT_FALSE(parse({"network", "create", "t", "--subnet", "172.20.0.0/24"}).vni);
  EXPECT_NE(usage_error({"network", "create", "train"}), "");  // --subnet is required
  EXPECT_NE(usage_error({"network", "create", "t", "--subnet", "1.2.3.0/24", "--vni", "x"}), "");
  EXPECT_NE(usage_error({"network", "create", "t", "--subnet", "1.2.3.0/24", "--vni", "-1"}), "");
  EXPECT_TRUE(parse({"network", "delete", "train", "-f"}).force);
  EXPECT_EQ(parse({"network", "list"}).command, "network list");
  EXPECT_EQ(parse({"network", "show", "train"}).args, Args{"train"});
  EXPECT_EQ(parse({"network", "join", "train", "r1"}).args, (Args{"train", "r1"}));
  auto leave = parse({"network", "leave", "train", "r1", "--force"});
  EXPECT_EQ(leave.args, (Args{"train", "r1"}));
  EXPECT_TRUE(leave.force);
  EXPECT_NE(usage_error({"network", "join", "train"}), "");
  EXPECT_NE(usage_error({"network", "list", "--no-outbound-nat"}), "");
}

TEST(KohakuctlCommandLine, RefusalsAreUsageErrors) {
  EXPECT_NE(usage_error({}), "");
  EXPECT_NE(usage_error({"frobnicate"}), "");
  EXPECT_NE(usage_error({"node"}), "");
  EXPECT_NE(usage_error({"node", "frobnicate"}), "");
  EXPECT_NE(usage_error({"ip-stats", "--ttl", "60"}), "");  // an option of another command
  EXPECT_NE(usage_error({"node", "summary", "-f"}), "");
  EXPECT_NE(usage_error({"node", "overlay", "a", "b"}), "");
  EXPECT_NE(usage_error({"--bogus", "node", "overlay"}), "");
}

TEST(KohakuctlCommandLine, HelpPerCommand) {
  auto top = parse_command_line({"--help"});
  ASSERT_TRUE(top.help);
  EXPECT_NE(top.help->find("ip-reserve"), std::string::npos);
  EXPECT_NE(top.help->find("node"), std::string::npos);
  auto reserve = parse_command_line({"node", "ip-reserve", "--help"});
  ASSERT_TRUE(reserve.help);
  EXPECT_NE(reserve.help->find("-t,--ttl"), std::string::npos) << *reserve.help;
  EXPECT_NE(reserve.help->find("-i,--ip"), std::string::npos) << *reserve.help;
  auto available = parse_command_line({"node", "ip-available", "-h"});
  ASSERT_TRUE(available.help);
  EXPECT_NE(available.help->find("-l,--limit"), std::string::npos) << *available.help;
  EXPECT_NE(available.help->find("20"), std::string::npos) << *available.help;
  auto alias = parse_command_line({"ip-list", "--help"});
  ASSERT_TRUE(alias.help);
  EXPECT_NE(alias.help->find("alias of `node ip-list`"), std::string::npos) << *alias.help;
  auto network = parse_command_line({"network", "create", "--help"});
  ASSERT_TRUE(network.help);
  EXPECT_NE(network.help->find("--subnet"), std::string::npos) << *network.help;
}

}  // namespace
}  // namespace kohakuctl
