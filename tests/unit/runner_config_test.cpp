#include "runner/runner_config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <climits>
#include <string>
#include <vector>

#include "config_test_dir.h"

namespace kohaku {
namespace {

using test_support::load_runner;

std::string error_of(const std::string& text, std::vector<std::string> overrides = {}) {
  return load_runner(text, std::move(overrides)).error;
}

std::string machine_hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  gethostname(buf, sizeof buf - 1);
  return buf;
}

TEST(RunnerConfig, DefaultsAreKohakuRivers) {
  RunnerConfig c = load_runner_config(DaemonArgs{});
  EXPECT_EQ(c.host_address, "127.0.0.1");
  EXPECT_EQ(c.host_port, 8000);
  EXPECT_EQ(c.host_url(), "http://127.0.0.1:8000");
  EXPECT_EQ(c.runner_bind_ip.to_string(), "0.0.0.0");
  EXPECT_FALSE(c.runner_bind_ip_set);
  EXPECT_EQ(c.runner_port, 8001);
  EXPECT_EQ(c.runner_hostname, machine_hostname());
  EXPECT_FALSE(c.overlay_enabled);
  EXPECT_EQ(c.overlay_network_name, "kohakuriver-overlay");
  EXPECT_EQ(c.overlay_vxlan_id, 100u);
  EXPECT_EQ(c.overlay_vxlan_port, 4789);
  EXPECT_EQ(c.overlay_mtu, 1450u);
  EXPECT_EQ(c.docker_network_name, "kohakuriver-net");
  EXPECT_EQ(c.docker_network_subnet.to_string(), "172.30.0.0/16");
  EXPECT_EQ(c.docker_network_gateway.to_string(), "172.30.0.1");
  EXPECT_EQ(c.docker_socket, "/var/run/docker.sock");
  EXPECT_EQ(c.heartbeat_interval_seconds, 5u);
  EXPECT_EQ(c.state_dir, "/var/lib/kohaku-runner");
  EXPECT_EQ(c.overlay_api_token, "");
  EXPECT_EQ(c.overlay_datapath, Datapath::kBpf);
  EXPECT_TRUE(c.overlay_fast_path);
  EXPECT_EQ(c.bpf_pin_root, "/sys/fs/bpf/kohaku");
  EXPECT_EQ(c.overlay_nat_port_min, 32768);
  EXPECT_EQ(c.overlay_nat_port_max, 65535);
  EXPECT_EQ(c.overlay_conntrack_max, 65536u);
  EXPECT_FALSE(c.overlay_disable_vxlan);
}

TEST(RunnerConfig, ReadsAKohakuRiverStyleFile) {
  auto r = load_runner(
      "from kohakuengine import Config\n"
      "HOST_ADDRESS: str = 'hub.cluster.local'\n"
      "HOST_PORT: int = 9000\n"
      "RUNNER_BIND_IP = '192.168.1.21'\n"
      "RUNNER_PORT = 9001\n"
      "RUNNER_HOSTNAME: str = \"gpu-node-1\"\n"
      "OVERLAY_ENABLED = True\n"
      "OVERLAY_NETWORK_NAME = 'overlay.v2'\n"
      "OVERLAY_VXLAN_ID = 200\n"
      "OVERLAY_VXLAN_PORT = 4790\n"
      "OVERLAY_MTU = 1400\n"
      "DOCKER_NETWORK_NAME = 'my_net'\n"
      "DOCKER_NETWORK_SUBNET = '172.31.0.0/24'\n"
      "DOCKER_NETWORK_GATEWAY = '172.31.0.254'\n"
      "DOCKER_SOCKET = '/run/docker.sock'\n"
      "HEARTBEAT_INTERVAL_SECONDS = 1\n"
      "STATE_DIR = '/tmp/runner-state'\n"
      "OVERLAY_API_TOKEN = 'tok'\n"
      "OVERLAY_DATAPATH = 'kernel'\n"
      "OVERLAY_FAST_PATH = False\n"
      "BPF_PIN_ROOT = '/sys/fs/bpf/r1'\n"
      "OVERLAY_NAT_PORT_MIN = 40_000\n"
      "OVERLAY_NAT_PORT_MAX = 40_000\n"
      "OVERLAY_CONNTRACK_MAX = 1_048_576\n"
      "OVERLAY_DISABLE_VXLAN = True\n"
      "NUM_CORES = 8\n"
      "def config_gen():\n"
      "    return Config.from_globals()\n");
  ASSERT_TRUE(r.config) << r.error;
  const RunnerConfig& c = *r.config;
  EXPECT_EQ(c.host_url(), "http://hub.cluster.local:9000");
  EXPECT_EQ(c.runner_bind_ip.to_string(), "192.168.1.21");
  EXPECT_TRUE(c.runner_bind_ip_set);
  EXPECT_EQ(c.runner_port, 9001);
  EXPECT_EQ(c.runner_hostname, "gpu-node-1");
  EXPECT_TRUE(c.overlay_enabled);
  EXPECT_EQ(c.overlay_network_name, "overlay.v2");
  EXPECT_EQ(c.overlay_vxlan_id, 200u);
  EXPECT_EQ(c.overlay_vxlan_port, 4790);
  EXPECT_EQ(c.overlay_mtu, 1400u);
  EXPECT_EQ(c.docker_network_name, "my_net");
  EXPECT_EQ(c.docker_network_subnet.to_string(), "172.31.0.0/24");
  EXPECT_EQ(c.docker_network_gateway.to_string(), "172.31.0.254");
  EXPECT_EQ(c.docker_socket, "/run/docker.sock");
  EXPECT_EQ(c.heartbeat_interval_seconds, 1u);
  EXPECT_EQ(c.state_dir, "/tmp/runner-state");
  EXPECT_EQ(c.overlay_api_token, "tok");
  EXPECT_EQ(c.overlay_datapath, Datapath::kKernel);
  EXPECT_FALSE(c.overlay_fast_path);
  EXPECT_EQ(c.bpf_pin_root, "/sys/fs/bpf/r1");
  EXPECT_EQ(c.overlay_nat_port_min, 40000);
  EXPECT_EQ(c.overlay_nat_port_max, 40000);
  EXPECT_EQ(c.overlay_conntrack_max, 1048576u);
  EXPECT_TRUE(c.overlay_disable_vxlan);
  EXPECT_EQ(r.warnings,
            std::vector<std::string>{"runner_config.py:26: unknown key NUM_CORES (ignored)"});
}

TEST(RunnerConfig, DocumentedExampleLoads) {
  auto r = load_runner(test_support::documented_example("Example `runner_config.py`"));
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  EXPECT_TRUE(r.config->overlay_enabled);
  EXPECT_EQ(r.config->host_address, "192.168.1.10");
  EXPECT_EQ(r.config->runner_hostname, machine_hostname());
}

TEST(RunnerConfig, HostnameDefaultsToTheMachinesAndOverridesWin) {
  auto none = load_runner("RUNNER_HOSTNAME = None\n");
  ASSERT_TRUE(none.config) << none.error;
  EXPECT_EQ(none.config->runner_hostname, machine_hostname());
  auto set = load_runner("RUNNER_HOSTNAME = 'a'\n", {"RUNNER_HOSTNAME=runner-2", "HOST_PORT=8100"});
  ASSERT_TRUE(set.config) << set.error;
  EXPECT_EQ(set.config->runner_hostname, "runner-2");
  EXPECT_EQ(set.config->host_port, 8100);
  EXPECT_EQ(error_of("RUNNER_HOSTNAME = 'bad/name'\n"),
            "runner_config.py:1: RUNNER_HOSTNAME = 'bad/name': not a host name (letters, digits, "
            "'-', '_', '.'; at most 253 characters); the host knows a runner by it and uses it in "
            "URLs");
  EXPECT_EQ(error_of("", {"RUNNER_HOSTNAME="}),
            "--set RUNNER_HOSTNAME=: RUNNER_HOSTNAME = '': not a host name (letters, digits, '-', "
            "'_', '.'; at most 253 characters); the host knows a runner by it and uses it in URLs");
  EXPECT_EQ(error_of("RUNNER_HOSTNAME = 42\n"),
            "runner_config.py:1: RUNNER_HOSTNAME expects str, got int 42");
}

TEST(RunnerConfig, HostAddressIsAnAddressOrName) {
  EXPECT_EQ(error_of("HOST_ADDRESS = 'http://10.0.0.1:8000'\n"),
            "runner_config.py:1: HOST_ADDRESS = 'http://10.0.0.1:8000': give the address only "
            "(e.g. '192.168.1.10'); the port is HOST_PORT");
  EXPECT_EQ(error_of("HOST_ADDRESS = 'two words'\n"),
            "runner_config.py:1: HOST_ADDRESS = 'two words': not an IPv4 address or host name");
  EXPECT_EQ(error_of("HOST_ADDRESS = ''\n"),
            "runner_config.py:1: HOST_ADDRESS = '': not an IPv4 address or host name");
  EXPECT_TRUE(load_runner("HOST_ADDRESS = '10.0.0.1'\n").config);
}

TEST(RunnerConfig, DockerNetworkMustBeConsistent) {
  EXPECT_EQ(error_of("DOCKER_NETWORK_GATEWAY = '172.31.0.1'\n"),
            "runner_config.py:1: DOCKER_NETWORK_GATEWAY = '172.31.0.1': not inside "
            "DOCKER_NETWORK_SUBNET 172.30.0.0/16 (the default)");
  EXPECT_EQ(error_of("DOCKER_NETWORK_SUBNET = '172.31.0.0/16'\n"),
            "runner_config.py:1: DOCKER_NETWORK_SUBNET = '172.31.0.0/16': does not contain "
            "DOCKER_NETWORK_GATEWAY 172.30.0.1 (the default); set DOCKER_NETWORK_GATEWAY too");
  EXPECT_EQ(
      error_of("DOCKER_NETWORK_SUBNET = '172.31.0.0/16'\n", {"DOCKER_NETWORK_GATEWAY=172.32.0.1"}),
      "--set DOCKER_NETWORK_GATEWAY=172.32.0.1: DOCKER_NETWORK_GATEWAY = '172.32.0.1': not "
      "inside DOCKER_NETWORK_SUBNET 172.31.0.0/16 (set at runner_config.py:1)");
  EXPECT_EQ(error_of("DOCKER_NETWORK_SUBNET = '172.30.0.1/16'\n"),
            "runner_config.py:1: DOCKER_NETWORK_SUBNET = '172.30.0.1/16': not an IPv4 network "
            "a.b.c.d/N with the host bits zero (e.g. 172.30.0.0/16)");
  EXPECT_EQ(error_of("DOCKER_NETWORK_SUBNET = '172.30.0.0/31'\n"),
            "runner_config.py:1: DOCKER_NETWORK_SUBNET = '172.30.0.0/31': too small: a /30 or "
            "larger is needed for containers");
  EXPECT_EQ(error_of("DOCKER_NETWORK_GATEWAY = '172.30.255.255'\n"),
            "runner_config.py:1: DOCKER_NETWORK_GATEWAY = '172.30.255.255': is the network or "
            "broadcast address of 172.30.0.0/16; pick a usable address");
  EXPECT_EQ(error_of("DOCKER_NETWORK_NAME = '-net'\n"),
            "runner_config.py:1: DOCKER_NETWORK_NAME = '-net': not a Docker network name (letters, "
            "digits, '_', '.', '-'; starting with a letter or digit)");
  EXPECT_EQ(error_of("OVERLAY_NETWORK_NAME = 'a b'\n"),
            "runner_config.py:1: OVERLAY_NETWORK_NAME = 'a b': not a Docker network name "
            "(letters, digits, '_', '.', '-'; starting with a letter or digit)");
  EXPECT_EQ(error_of("DOCKER_SOCKET = 'unix:///var/run/docker.sock'\n"),
            "runner_config.py:1: DOCKER_SOCKET = 'unix:///var/run/docker.sock': must be an "
            "absolute path");
}

TEST(RunnerConfig, NatPortsAndConntrack) {
  EXPECT_EQ(error_of("OVERLAY_NAT_PORT_MIN = 1023\n"),
            "runner_config.py:1: OVERLAY_NAT_PORT_MIN = 1023: must be 1024..65535 (masquerade "
            "source ports stay above 1023)");
  EXPECT_EQ(error_of("OVERLAY_NAT_PORT_MAX = 70000\n"),
            "runner_config.py:1: OVERLAY_NAT_PORT_MAX = 70000: must be 1024..65535 (masquerade "
            "source ports stay above 1023)");
  EXPECT_EQ(error_of("OVERLAY_NAT_PORT_MIN = 50000\nOVERLAY_NAT_PORT_MAX = 40000\n"),
            "runner_config.py:2: OVERLAY_NAT_PORT_MAX = 40000: OVERLAY_NAT_PORT_MIN 50000 is above "
            "OVERLAY_NAT_PORT_MAX 40000: the masquerade port range is empty");
  EXPECT_EQ(error_of("", {"OVERLAY_NAT_PORT_MIN=65535"}), "");
  EXPECT_EQ(error_of("OVERLAY_CONNTRACK_MAX = 0\n"),
            "runner_config.py:1: OVERLAY_CONNTRACK_MAX = 0: must be 256..16777216 (entries of the "
            "BPF conntrack map)");
}

TEST(RunnerConfig, SharedChecksApplyToo) {
  EXPECT_EQ(error_of("OVERLAY_VXLAN_ID = 16777215\n"),
            "runner_config.py:1: OVERLAY_VXLAN_ID = 16777215: must be 1..16777214 (VNI base: this "
            "runner uses base + its id)");
  EXPECT_EQ(error_of("OVERLAY_MTU = 10000\n"),
            "runner_config.py:1: OVERLAY_MTU = 10000: must be at most 8950: VXLAN adds 50 bytes "
            "per packet and the underlay's jumbo frames stop at 9000");
  EXPECT_EQ(error_of("RUNNER_PORT = 0\n"),
            "runner_config.py:1: RUNNER_PORT = 0: must be 1..65535 (a UDP/TCP port)");
  EXPECT_EQ(error_of("RUNNER_BIND_IP = '::'\n"),
            "runner_config.py:1: RUNNER_BIND_IP = '::': not an IPv4 address (expected a.b.c.d)");
  EXPECT_EQ(error_of("OVERLAY_DATAPATH = 'BPF'\n"),
            "runner_config.py:1: OVERLAY_DATAPATH = 'BPF': must be 'bpf' (TC eBPF programs) or "
            "'kernel' (kernel forwarding and iptables)");
  EXPECT_EQ(error_of("OVERLAY_DISABLE_VXLAN = 'yes'\n"),
            "runner_config.py:1: OVERLAY_DISABLE_VXLAN expects bool, got str 'yes'");
  EXPECT_EQ(error_of("OVERLAY_FAST_PATH = 'off'\n"),
            "runner_config.py:1: OVERLAY_FAST_PATH expects bool, got str 'off'");
  EXPECT_EQ(error_of("", {"OVERLAY_ENABLED=1"}),
            "--set OVERLAY_ENABLED=1: OVERLAY_ENABLED expects bool, got int 1");
}

// KohakuRiver's OVERLAY_BRIDGE_NAME: the bridge this runner builds (kohaku-overlay by default).
TEST(RunnerConfig, BridgeNameIsHonouredAndChecked) {
  auto d = load_runner("");
  ASSERT_TRUE(d.config) << d.error;
  EXPECT_EQ(d.config->overlay_bridge_name, "kohaku-overlay");
  auto r = load_runner("OVERLAY_BRIDGE_NAME: str = \"br-overlay\"\n");
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  EXPECT_EQ(r.config->overlay_bridge_name, "br-overlay");
  EXPECT_NE(error_of("OVERLAY_BRIDGE_NAME = 'sixteen-chars-xx'\n").find("1..15 characters"),
            std::string::npos);
  for (const char* taken : {"vxlan0", "vxlan1234", "kbr-train", "vxkr1", "kohaku-host"})
    EXPECT_NE(error_of(std::string("OVERLAY_BRIDGE_NAME = '") + taken + "'\n")
                  .find("is a name kohaku-overlay gives other devices"),
              std::string::npos)
        << taken;
}

}  // namespace
}  // namespace kohaku
