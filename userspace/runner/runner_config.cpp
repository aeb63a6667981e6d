#include "runner_config.h"

#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>

#include "common/log.h"
#include "runner/l2_device_names.h"

namespace kohaku {
namespace {

// RFC 1123 host name: dot-separated labels of letters, digits and inner hyphens. Underscores
// are tolerated because real machines carry them and the name only travels in URLs and JSON.
bool valid_host_name(std::string_view name) {
  if (name.empty() || name.size() > 253) return false;
  size_t label = 0;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '.') {
      if (label == 0 || name[i - 1] == '-') return false;
      label = 0;
      continue;
    }
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && c != '_' && !(c == '-' && label > 0)) return false;
    if (++label > 63) return false;
  }
  return label > 0 && name.back() != '-';
}

// Docker's own rule for network names.
bool valid_docker_name(std::string_view name) {
  if (name.empty()) return false;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '_' && c != '.' && c != '-'))) return false;
  }
  return true;
}

std::string machine_hostname() {
  char buf[HOST_NAME_MAX + 1] = {};
  if (gethostname(buf, sizeof buf - 1) != 0)
    throw ConfigError(std::string("RUNNER_HOSTNAME is not set and gethostname() failed: ") +
                      std::strerror(errno));
  return buf;
}

std::string check_docker_name(const ConfigFile& file, std::string_view key) {
  const std::string& v = file.get_string(key);
  if (!valid_docker_name(v))
    file.fail(key,
              "not a Docker network name (letters, digits, '_', '.', '-'; starting with a "
              "letter or digit)");
  return v;
}

}  // namespace

ConfigSchema runner_config_schema() {
  ConfigSchema s;
  s.add_string("HOST_ADDRESS", "127.0.0.1")
      .add_int("HOST_PORT", 8000)
      .add_string("RUNNER_BIND_IP", "0.0.0.0")
      .add_int("RUNNER_PORT", 8001)
      .add_optional_string("RUNNER_HOSTNAME")
      .add_bool("OVERLAY_ENABLED", false)
      .add_string("OVERLAY_NETWORK_NAME", "kohakuriver-overlay")
      .add_string("OVERLAY_BRIDGE_NAME", "kohaku-overlay")
      .add_int("OVERLAY_VXLAN_ID", 100)
      .add_int("OVERLAY_VXLAN_PORT", 4789)
      .add_int("OVERLAY_MTU", 1450)
      .add_string("DOCKER_NETWORK_NAME", "kohakuriver-net")
      .add_string("DOCKER_NETWORK_SUBNET", "172.30.0.0/16")
      .add_string("DOCKER_NETWORK_GATEWAY", "172.30.0.1")
      .add_string("DOCKER_SOCKET", "/var/run/docker.sock")
      .add_int("HEARTBEAT_INTERVAL_SECONDS", 5)
      .add_string("STATE_DIR", "/var/lib/kohaku-runner")
      .add_string("OVERLAY_API_TOKEN", "", /*nullable=*/true)
      .add_string("OVERLAY_DATAPATH", "bpf")
      .add_bool("OVERLAY_FAST_PATH", true)
      .add_string("BPF_PIN_ROOT", "/sys/fs/bpf/kohaku")
      .add_int("OVERLAY_NAT_PORT_MIN", 32768)
      .add_int("OVERLAY_NAT_PORT_MAX", 65535)
      .add_int("OVERLAY_CONNTRACK_MAX", 65536)
      .add_int("OVERLAY_NAT_UDP_TIMEOUT_SECONDS", 30)
      .add_int("OVERLAY_NAT_UDP_STREAM_TIMEOUT_SECONDS", 120)
      .add_bool("OVERLAY_DISABLE_VXLAN", false);
  return s;
}

RunnerConfig runner_config_from(const ConfigFile& file) {
  RunnerConfig c;
  c.host_address = file.get_string("HOST_ADDRESS");
  if (c.host_address.find("://") != std::string::npos)
    file.fail("HOST_ADDRESS", "give the address only (e.g. '192.168.1.10'); the port is HOST_PORT");
  if (!Ipv4Addr::try_parse(c.host_address) && !valid_host_name(c.host_address))
    file.fail("HOST_ADDRESS", "not an IPv4 address or host name");
  c.host_port = check_port(file, "HOST_PORT");
  c.runner_bind_ip = check_ipv4(file, "RUNNER_BIND_IP");
  c.runner_bind_ip_set = file.is_set("RUNNER_BIND_IP");
  c.runner_port = check_port(file, "RUNNER_PORT");

  if (auto name = file.get_optional_string("RUNNER_HOSTNAME")) {
    if (!valid_host_name(*name))
      file.fail("RUNNER_HOSTNAME",
                "not a host name (letters, digits, '-', '_', '.'; at most 253 characters); the "
                "host knows a runner by it and uses it in URLs");
    c.runner_hostname = *name;
  } else {
    c.runner_hostname = machine_hostname();
  }

  c.overlay_enabled = file.get_bool("OVERLAY_ENABLED");
  c.overlay_network_name = check_docker_name(file, "OVERLAY_NETWORK_NAME");
  c.overlay_bridge_name = check_interface_name(file, "OVERLAY_BRIDGE_NAME");
  // Names this runner gives its other devices: the bridge must not take one of them.
  if (const std::string& b = c.overlay_bridge_name; runner::is_l2_bridge_name(b) ||
                                                    b.starts_with("vxlan") ||
                                                    b.starts_with("vxkr") || b == "kohaku-host")
    file.fail("OVERLAY_BRIDGE_NAME",
              "is a name kohaku-overlay gives other devices (vxlan0, vxlan<VNI>, kbr-<network>, "
              "kb-<hash>, vxkr<id>, kohaku-host); choose another, e.g. 'kohaku-overlay'");
  // The host checks base + its largest runner id; here only the base itself can be checked.
  c.overlay_vxlan_id = static_cast<uint32_t>(check_int_range(
      file, "OVERLAY_VXLAN_ID", 1, kMaxVni - 1, "VNI base: this runner uses base + its id"));
  c.overlay_vxlan_port = check_port(file, "OVERLAY_VXLAN_PORT");
  c.overlay_mtu = check_overlay_mtu(file, "OVERLAY_MTU");

  c.docker_network_name = check_docker_name(file, "DOCKER_NETWORK_NAME");
  auto subnet = Ipv4Cidr::try_parse(file.get_string("DOCKER_NETWORK_SUBNET"));
  if (!subnet)
    file.fail("DOCKER_NETWORK_SUBNET",
              "not an IPv4 network a.b.c.d/N with the host bits zero (e.g. 172.30.0.0/16)");
  if (subnet->prefix > 30)
    file.fail("DOCKER_NETWORK_SUBNET", "too small: a /30 or larger is needed for containers");
  c.docker_network_subnet = *subnet;
  c.docker_network_gateway = check_ipv4(file, "DOCKER_NETWORK_GATEWAY");
  if (!subnet->contains(c.docker_network_gateway)) {
    // Blame the key the operator wrote; a default gateway only mismatches because of the subnet.
    if (!file.is_set("DOCKER_NETWORK_GATEWAY"))
      file.fail("DOCKER_NETWORK_SUBNET", "does not contain DOCKER_NETWORK_GATEWAY " +
                                             c.docker_network_gateway.to_string() +
                                             " (the default); set DOCKER_NETWORK_GATEWAY too");
    file.fail("DOCKER_NETWORK_GATEWAY",
              "not inside DOCKER_NETWORK_SUBNET " + subnet->to_string() +
                  (file.is_set("DOCKER_NETWORK_SUBNET")
                       ? " (set at " + file.where("DOCKER_NETWORK_SUBNET") + ")"
                       : std::string(" (the default)")));
  }
  if (c.docker_network_gateway == subnet->first() || c.docker_network_gateway == subnet->last())
    file.fail("DOCKER_NETWORK_GATEWAY", "is the network or broadcast address of " +
                                            subnet->to_string() + "; pick a usable address");
  c.docker_socket = check_absolute_path(file, "DOCKER_SOCKET");

  c.heartbeat_interval_seconds = static_cast<uint32_t>(
      check_int_range(file, "HEARTBEAT_INTERVAL_SECONDS", 1, 86400, "seconds between heartbeats"));
  c.state_dir = check_non_empty(file, "STATE_DIR");
  if (file.get_optional_string("OVERLAY_API_TOKEN"))
    c.overlay_api_token = check_token(file, "OVERLAY_API_TOKEN");
  c.api_auth_off = file.is_set("OVERLAY_API_TOKEN") && c.overlay_api_token.empty();
  c.overlay_datapath = check_datapath(file, "OVERLAY_DATAPATH");
  c.overlay_fast_path = file.get_bool("OVERLAY_FAST_PATH");
  c.bpf_pin_root = check_absolute_path(file, "BPF_PIN_ROOT");

  // Ports below 1024 belong to services on the runner itself; masquerading onto them would
  // collide with their connections.
  c.overlay_nat_port_min = static_cast<uint16_t>(check_int_range(
      file, "OVERLAY_NAT_PORT_MIN", 1024, 65535, "masquerade source ports stay above 1023"));
  c.overlay_nat_port_max = static_cast<uint16_t>(check_int_range(
      file, "OVERLAY_NAT_PORT_MAX", 1024, 65535, "masquerade source ports stay above 1023"));
  if (c.overlay_nat_port_min > c.overlay_nat_port_max) {
    std::string_view key =
        file.is_set("OVERLAY_NAT_PORT_MAX") ? "OVERLAY_NAT_PORT_MAX" : "OVERLAY_NAT_PORT_MIN";
    file.fail(key, "OVERLAY_NAT_PORT_MIN " + std::to_string(c.overlay_nat_port_min) +
                       " is above OVERLAY_NAT_PORT_MAX " + std::to_string(c.overlay_nat_port_max) +
                       ": the masquerade port range is empty");
  }
  c.overlay_conntrack_max = static_cast<uint32_t>(check_int_range(
      file, "OVERLAY_CONNTRACK_MAX", 256, 1 << 24, "entries of the BPF conntrack map"));
  c.overlay_nat_udp_timeout_seconds = static_cast<uint32_t>(
      check_int_range(file, "OVERLAY_NAT_UDP_TIMEOUT_SECONDS", 1, 86400,
                      "seconds an unanswered UDP flow stays in the BPF conntrack"));
  c.overlay_nat_udp_stream_timeout_seconds = static_cast<uint32_t>(check_int_range(
      file, "OVERLAY_NAT_UDP_STREAM_TIMEOUT_SECONDS", 1, 86400,
      "seconds an answered UDP flow stays in the BPF conntrack after its last packet"));
  c.overlay_disable_vxlan = file.get_bool("OVERLAY_DISABLE_VXLAN");
  return c;
}

RunnerConfig load_runner_config(const DaemonArgs& args, std::vector<std::string>* warnings) {
  return runner_config_from(read_daemon_config(runner_config_schema(), args, warnings));
}

}  // namespace kohaku
