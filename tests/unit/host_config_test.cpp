#include "host/host_config.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "config_test_dir.h"

namespace kohaku {
namespace {

using test_support::load_host;

std::string error_of(const std::string& text, std::vector<std::string> overrides = {}) {
  return load_host(text, std::move(overrides)).error;
}

TEST(HostConfig, DefaultsAreKohakuRivers) {
  HostConfig c = load_host_config(DaemonArgs{});
  EXPECT_EQ(c.host_reachable_address.to_string(), "127.0.0.1");
  EXPECT_EQ(c.host_port, 8000);
  EXPECT_EQ(c.host_bind_ip.to_string(), "0.0.0.0");
  EXPECT_FALSE(c.overlay_enabled);
  EXPECT_EQ(c.overlay_subnet.to_string(), "10.128.0.0/12/6/14");
  EXPECT_EQ(c.overlay_vxlan_id, 100u);
  EXPECT_EQ(c.overlay_vxlan_port, 4789);
  EXPECT_EQ(c.overlay_mtu, 1450u);
  EXPECT_EQ(c.heartbeat_interval_seconds, 5u);
  EXPECT_EQ(c.heartbeat_timeout_factor, 6u);
  EXPECT_EQ(c.heartbeat_timeout_ms(), 30000);
  EXPECT_EQ(c.cleanup_check_interval_seconds, 10u);
  EXPECT_EQ(c.state_dir, "/var/lib/kohaku");
  EXPECT_EQ(c.overlay_api_token, "");
  EXPECT_EQ(c.overlay_datapath, Datapath::kBpf);
  EXPECT_EQ(c.bpf_pin_root, "/sys/fs/bpf/kohaku");

  // The struct's own defaults agree with the schema's, for code that builds one directly.
  HostConfig plain;
  EXPECT_EQ(plain.overlay_subnet.to_string(), c.overlay_subnet.to_string());
  EXPECT_EQ(plain.host_reachable_address, c.host_reachable_address);
  EXPECT_EQ(plain.state_dir, c.state_dir);
}

TEST(HostConfig, ReadsAKohakuRiverStyleFile) {
  auto r = load_host(
      "from kohakuengine import Config\n"
      "\n"
      "# --- network ---\n"
      "HOST_REACHABLE_ADDRESS: str = \"192.168.1.10\"\n"
      "HOST_PORT: int = 9000\n"
      "HOST_BIND_IP = '192.168.1.10'\n"
      "OVERLAY_ENABLED: bool = True\n"
      "OVERLAY_SUBNET: str = \"10.0.0.0/8/8/16\"  # classic layout\n"
      "OVERLAY_VXLAN_ID = 5000\n"
      "OVERLAY_VXLAN_PORT = 8472\n"
      "OVERLAY_MTU = 8950\n"
      "HEARTBEAT_INTERVAL_SECONDS = 2\n"
      "HEARTBEAT_TIMEOUT_FACTOR = 3\n"
      "CLEANUP_CHECK_INTERVAL_SECONDS = 1\n"
      "STATE_DIR = '/tmp/kohaku-state'\n"
      "OVERLAY_API_TOKEN = 's3cr3t-token'\n"
      "OVERLAY_DATAPATH = 'kernel'\n"
      "BPF_PIN_ROOT = '/sys/fs/bpf/k2'\n"
      "SHARED_DIR = '/mnt/cluster-share'\n"
      "\n"
      "def config_gen():\n"
      "    return Config.from_globals()\n");
  ASSERT_TRUE(r.config) << r.error;
  const HostConfig& c = *r.config;
  EXPECT_EQ(c.host_reachable_address.to_string(), "192.168.1.10");
  EXPECT_EQ(c.host_port, 9000);
  EXPECT_EQ(c.host_bind_ip.to_string(), "192.168.1.10");
  EXPECT_TRUE(c.overlay_enabled);
  EXPECT_EQ(c.overlay_subnet.runner_subnet(3).to_string(), "10.3.0.0/16");
  EXPECT_EQ(c.overlay_vxlan_id, 5000u);
  EXPECT_EQ(c.overlay_vxlan_port, 8472);
  EXPECT_EQ(c.overlay_mtu, 8950u);
  EXPECT_EQ(c.heartbeat_timeout_ms(), 6000);
  EXPECT_EQ(c.cleanup_check_interval_seconds, 1u);
  EXPECT_EQ(c.state_dir, "/tmp/kohaku-state");
  EXPECT_EQ(c.overlay_api_token, "s3cr3t-token");
  EXPECT_EQ(c.overlay_datapath, Datapath::kKernel);
  EXPECT_EQ(c.bpf_pin_root, "/sys/fs/bpf/k2");
  EXPECT_EQ(r.warnings,
            std::vector<std::string>{"host_config.py:19: unknown key SHARED_DIR (ignored)"});
}

TEST(HostConfig, DocumentedExampleLoads) {
  auto r = load_host(test_support::documented_example("Example `host_config.py`"));
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_TRUE(r.warnings.empty()) << r.warnings.front();
  EXPECT_TRUE(r.config->overlay_enabled);
  EXPECT_EQ(r.config->host_reachable_address.to_string(), "192.168.1.10");
}

// Shaped like the file `kohakuriver init config --host` writes, with the overlay keys added:
// everything KohakuRiver-only is a warning, nothing stops the load.
TEST(HostConfig, StockKohakuRiverFileLoads) {
  auto r = load_host(
      "\"\"\"\n"
      "Host configuration for the cluster's host.\n"
      "\n"
      "Loaded by the host daemon; edit the variables below.\n"
      "\"\"\"\n"
      "from kohakuengine import Config\n"
      "\n"
      "from kohakuriver.models.enums import LogLevel\n"
      "\n"
      "# ===== Network =====\n"
      "HOST_BIND_IP: str = \"0.0.0.0\"\n"
      "HOST_PORT: int = 8000\n"
      "HOST_SSH_PROXY_PORT: int = 8002\n"
      "HOST_REACHABLE_ADDRESS: str = \"10.20.0.1\"\n"
      "SHARED_DIR: str = \"/mnt/cluster-share\"\n"
      "ADDITIONAL_MOUNTS: list[str] = [\n"
      "    \"/data:/data\",\n"
      "]\n"
      "TASKS_PRIVILEGED: bool = False\n"
      "LOG_LEVEL: LogLevel = LogLevel.INFO\n"
      "OVERLAY_ENABLED: bool = True\n"
      "\n"
      "\n"
      "def config_gen():\n"
      "    \"\"\"Generate configuration from module globals.\"\"\"\n"
      "    return Config.from_globals()\n");
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_TRUE(r.config->overlay_enabled);
  EXPECT_EQ(r.config->host_reachable_address.to_string(), "10.20.0.1");
  EXPECT_EQ(r.warnings, (std::vector<std::string>{
                            "host_config.py:13: unknown key HOST_SSH_PROXY_PORT (ignored)",
                            "host_config.py:15: unknown key SHARED_DIR (ignored)",
                            "host_config.py:16: unknown key ADDITIONAL_MOUNTS (ignored)",
                            "host_config.py:19: unknown key TASKS_PRIVILEGED (ignored)",
                            "host_config.py:20: unknown key LOG_LEVEL (ignored)",
                        }));
}

TEST(HostConfig, OverridesWinOverTheFile) {
  auto r = load_host("HOST_PORT = 9000\nOVERLAY_DATAPATH = 'kernel'\n",
                     {"HOST_PORT=9100", "OVERLAY_DATAPATH=bpf", "STATE_DIR=/srv/kohaku",
                      "OVERLAY_ENABLED=True", "HOST_REACHABLE_ADDRESS=10.1.1.1"});
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->host_port, 9100);
  EXPECT_EQ(r.config->overlay_datapath, Datapath::kBpf);
  EXPECT_EQ(r.config->state_dir, "/srv/kohaku");
  EXPECT_TRUE(r.config->overlay_enabled);
  EXPECT_EQ(r.config->host_reachable_address.to_string(), "10.1.1.1");

  EXPECT_EQ(error_of("", {"HOST_PORT=http"}),
            "--set HOST_PORT=http: not a Python literal: http (expected a quoted string, a "
            "number, True, False or None)");
  EXPECT_EQ(error_of("", {"HOST_PORT=0"}),
            "--set HOST_PORT=0: HOST_PORT = 0: must be 1..65535 (a UDP/TCP port)");
  EXPECT_EQ(error_of("", {"HOST_PROT=1"}), "--set HOST_PROT=1: unknown key HOST_PROT");
}

TEST(HostConfig, LoopbackReachableAddressRefusedWithOverlay) {
  const std::string why =
      "runners would build VXLAN tunnels to 127.0.0.1; set HOST_REACHABLE_ADDRESS to an address "
      "runners can reach";
  // Default address, overlay switched on in the file: points at the OVERLAY_ENABLED line.
  EXPECT_EQ(error_of("HOST_PORT = 8000\nOVERLAY_ENABLED = True\n"),
            "host_config.py:2: HOST_REACHABLE_ADDRESS = '127.0.0.1' (the default) is a loopback "
            "address and OVERLAY_ENABLED = True: " +
                why);
  // Address written in the file: points at that line.
  EXPECT_EQ(error_of("HOST_REACHABLE_ADDRESS = '127.0.0.5'\nOVERLAY_ENABLED = True\n"),
            "host_config.py:1: HOST_REACHABLE_ADDRESS = '127.0.0.5' is a loopback address and "
            "OVERLAY_ENABLED = True: runners would build VXLAN tunnels to 127.0.0.5; set "
            "HOST_REACHABLE_ADDRESS to an address runners can reach");
  EXPECT_EQ(error_of("OVERLAY_ENABLED = True\n", {"HOST_REACHABLE_ADDRESS=0.0.0.0"}),
            "--set HOST_REACHABLE_ADDRESS=0.0.0.0: HOST_REACHABLE_ADDRESS = '0.0.0.0' is not a "
            "concrete address and OVERLAY_ENABLED = True: runners would build VXLAN tunnels to "
            "0.0.0.0; set HOST_REACHABLE_ADDRESS to an address runners can reach");
  // Without the overlay nothing is tunnelled, so loopback is fine.
  EXPECT_TRUE(load_host("OVERLAY_ENABLED = False\n").config);
}

TEST(HostConfig, SchemeErrorsNameTheKeyAndLine) {
  EXPECT_EQ(error_of("\nOVERLAY_SUBNET = '10.0.0.0/8/8'\n"),
            "host_config.py:2: invalid OVERLAY_SUBNET '10.0.0.0/8/8': expected "
            "BASE/TOTAL_PREFIX/NODE_BITS/SUBNET_BITS (four parts separated by '/')");
  std::string e = error_of("OVERLAY_SUBNET = '10.0.0.0/8/8/8'\n");
  EXPECT_TRUE(e.starts_with("host_config.py:1: invalid OVERLAY_SUBNET '10.0.0.0/8/8/8': ")) << e;
  e = error_of("", {"OVERLAY_SUBNET=300.0.0.0/8/8/16"});
  EXPECT_TRUE(e.starts_with("--set OVERLAY_SUBNET=300.0.0.0/8/8/16: invalid OVERLAY_SUBNET ")) << e;
  EXPECT_EQ(error_of("OVERLAY_SUBNET = 10\n"),
            "host_config.py:1: OVERLAY_SUBNET expects str, got int 10");
}

TEST(HostConfig, AddressesMustBeIpv4) {
  EXPECT_EQ(error_of("HOST_BIND_IP = 'localhost'\n"),
            "host_config.py:1: HOST_BIND_IP = 'localhost': not an IPv4 address (expected a.b.c.d)");
  EXPECT_EQ(error_of("HOST_REACHABLE_ADDRESS = '10.0.0.256'\n"),
            "host_config.py:1: HOST_REACHABLE_ADDRESS = '10.0.0.256': not an IPv4 address "
            "(expected a.b.c.d)");
}

TEST(HostConfig, ReachableAddressMustBeUnicast) {
  for (const char* bad : {"224.0.0.1", "239.1.2.3", "255.255.255.255", "240.0.0.1", "0.1.2.3"}) {
    std::string err = error_of(std::string("HOST_REACHABLE_ADDRESS = '") + bad + "'\n");
    EXPECT_NE(err.find("HOST_REACHABLE_ADDRESS"), std::string::npos) << bad << ": " << err;
    EXPECT_NE(err.find("address"), std::string::npos) << bad << ": " << err;
  }
  EXPECT_EQ(error_of("HOST_REACHABLE_ADDRESS = '192.168.1.10'\nOVERLAY_ENABLED = True\n"), "");
}

TEST(HostConfig, RangesAreChecked) {
  EXPECT_EQ(error_of("OVERLAY_VXLAN_PORT = 65536\n"),
            "host_config.py:1: OVERLAY_VXLAN_PORT = 65536: must be 1..65535 (a UDP/TCP port)");
  EXPECT_EQ(error_of("HOST_PORT = -1\n"),
            "host_config.py:1: HOST_PORT = -1: must be 1..65535 (a UDP/TCP port)");
  EXPECT_EQ(error_of("OVERLAY_MTU = 575\n"),
            "host_config.py:1: OVERLAY_MTU = 575: must be at least 576 (the smallest MTU IPv4 "
            "allows)");
  EXPECT_EQ(error_of("OVERLAY_MTU = 9000\n"),
            "host_config.py:1: OVERLAY_MTU = 9000: must be at most 8950: VXLAN adds 50 bytes per "
            "packet and the underlay's jumbo frames stop at 9000");
  EXPECT_TRUE(load_host("OVERLAY_MTU = 576\n").config);
  EXPECT_EQ(error_of("HEARTBEAT_INTERVAL_SECONDS = 0\n"),
            "host_config.py:1: HEARTBEAT_INTERVAL_SECONDS = 0: must be 1..86400 (seconds between "
            "heartbeats)");
  EXPECT_EQ(error_of("HEARTBEAT_TIMEOUT_FACTOR = 0\n"),
            "host_config.py:1: HEARTBEAT_TIMEOUT_FACTOR = 0: must be 1..1000 (missed heartbeats "
            "before a runner is inactive)");
  EXPECT_EQ(error_of("CLEANUP_CHECK_INTERVAL_SECONDS = -5\n"),
            "host_config.py:1: CLEANUP_CHECK_INTERVAL_SECONDS = -5: must be 1..86400 (seconds)");
}

TEST(HostConfig, DockerBlockSizeIsAPowerOfTwo) {
  EXPECT_EQ(load_host_config(DaemonArgs{}).l2_docker_block_size, 32u);
  auto r = load_host("L2_DOCKER_BLOCK_SIZE = 64\n");
  ASSERT_TRUE(r.config) << r.error;
  EXPECT_EQ(r.config->l2_docker_block_size, 64u);
  EXPECT_EQ(error_of("L2_DOCKER_BLOCK_SIZE = 48\n"),
            "host_config.py:1: L2_DOCKER_BLOCK_SIZE = 48: must be a power of two (an aligned CIDR "
            "block), e.g. 16, 32 or 64");
  EXPECT_EQ(error_of("", {"L2_DOCKER_BLOCK_SIZE=2"}),
            "--set L2_DOCKER_BLOCK_SIZE=2: L2_DOCKER_BLOCK_SIZE = 2: must be 4..4096 (addresses)");
}

TEST(HostConfig, VniRangeCoversEveryRunner) {
  EXPECT_EQ(error_of("OVERLAY_VXLAN_ID = 0\n"),
            "host_config.py:1: OVERLAY_VXLAN_ID = 0: must be at least 1 (runner N uses VNI base "
            "+ N)");
  // 6 node bits: runner ids 1..63, so the base may be at most 16777215 - 63.
  EXPECT_TRUE(load_host("OVERLAY_VXLAN_ID = 16777152\n").config);
  EXPECT_EQ(error_of("OVERLAY_VXLAN_ID = 16777153\n"),
            "host_config.py:1: OVERLAY_VXLAN_ID = 16777153: VNIs would run up to 16777153 + 63 = "
            "16777216 for runner ids 1..63 of OVERLAY_SUBNET 10.128.0.0/12/6/14, over the 24-bit "
            "VNI limit 16777215");
  // The base's own line is named even when the subnet that makes it overflow came later.
  ConfigFile f(host_config_schema());
  f.parse("\nOVERLAY_VXLAN_ID = 16720000\n", "host_config.py");
  EXPECT_NO_THROW(host_config_from(f));
  f.apply_override("OVERLAY_SUBNET=10.0.0.0/8/16/8");
  try {
    host_config_from(f);
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "host_config.py:2: OVERLAY_VXLAN_ID = 16720000: VNIs would run up to 16720000 + "
                 "65535 = 16785535 for runner ids 1..65535 of OVERLAY_SUBNET 10.0.0.0/8/16/8, over "
                 "the 24-bit VNI limit 16777215");
  }
}

TEST(HostConfig, DatapathTokenAndPaths) {
  EXPECT_EQ(error_of("OVERLAY_DATAPATH = 'xdp'\n"),
            "host_config.py:1: OVERLAY_DATAPATH = 'xdp': must be 'bpf' (TC eBPF programs) or "
            "'kernel' (kernel forwarding and iptables)");
  EXPECT_EQ(error_of("OVERLAY_API_TOKEN = 'two words'\n"),
            "host_config.py:1: OVERLAY_API_TOKEN = 'two words': must be printable ASCII without "
            "spaces (it is sent as an HTTP header)");
  EXPECT_EQ(error_of("OVERLAY_API_TOKEN = 'a\\nb'\n"),
            "host_config.py:1: OVERLAY_API_TOKEN = 'a\\nb': must be printable ASCII without "
            "spaces (it is sent as an HTTP header)");
  auto none_token = load_host("OVERLAY_API_TOKEN = None\n");
  ASSERT_TRUE(none_token.config) << none_token.error;
  EXPECT_EQ(none_token.config->overlay_api_token, "");
  EXPECT_EQ(error_of("BPF_PIN_ROOT = 'sys/fs/bpf'\n"),
            "host_config.py:1: BPF_PIN_ROOT = 'sys/fs/bpf': must be an absolute path");
  EXPECT_EQ(error_of("STATE_DIR = ''\n"), "host_config.py:1: STATE_DIR = '': must not be empty");
}

}  // namespace
}  // namespace kohaku
