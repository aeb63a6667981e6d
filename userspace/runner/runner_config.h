#pragma once
// kohaku-runnerd's configuration (runner_config.py + --set), typed and validated.
#include <cstdint>
#include <string>
#include <vector>

#include "common/config_checks.h"
#include "common/config_file.h"
#include "common/daemon_args.h"
#include "common/ipv4.h"

namespace kohaku {

struct RunnerConfig {
  std::string host_address = "127.0.0.1";  // IPv4 address or DNS name of kohaku-hostd
  uint16_t host_port = 8000;
  Ipv4Addr runner_bind_ip =
      Ipv4Addr::parse("0.0.0.0");  // 0.0.0.0: the address that reaches the host
  // Whether RUNNER_BIND_IP was given. Unset, the API listens only on the address the host
  // reaches the runner at, and on 127.0.0.1; an explicit 0.0.0.0 listens on every address.
  bool runner_bind_ip_set = false;
  uint16_t runner_port = 8001;
  std::string runner_hostname;  // default: gethostname()
  bool overlay_enabled = false;
  std::string overlay_network_name = "kohakuriver-overlay";  // Docker network on the bridge
  std::string overlay_bridge_name = "kohaku-overlay";        // OVERLAY_BRIDGE_NAME: the bridge
  uint32_t overlay_vxlan_id = 100;
  uint16_t overlay_vxlan_port = 4789;
  uint32_t overlay_mtu = 1450;
  std::string docker_network_name = "kohakuriver-net";  // fallback network without the overlay
  Ipv4Cidr docker_network_subnet = Ipv4Cidr::parse("172.30.0.0/16");
  Ipv4Addr docker_network_gateway = Ipv4Addr::parse("172.30.0.1");
  std::string docker_socket = "/var/run/docker.sock";
  uint32_t heartbeat_interval_seconds = 5;
  std::string state_dir = "/var/lib/kohaku-runner";
  // The host's API token, sent on every call to the host; also accepted on this runner's own
  // mutating routes (besides the runner credential). Set to "" or None: the runner's mutating
  // routes need nothing (api_auth_off), an explicit opt-out.
  std::string overlay_api_token;
  bool api_auth_off = false;
  Datapath overlay_datapath = Datapath::kBpf;
  // With the BPF datapath: the per-workload programs of docs/bpf-runner-fast-path.md. Off, the
  // workloads' traffic crosses the bridge and the IP stack (the masquerade stays BPF).
  bool overlay_fast_path = true;
  std::string bpf_pin_root = "/sys/fs/bpf/kohaku";
  uint16_t overlay_nat_port_min = 32768;  // masquerade source ports
  uint16_t overlay_nat_port_max = 65535;
  uint32_t overlay_conntrack_max = 65536;  // BPF conntrack entries
  // BPF conntrack UDP timeouts (the kernel's nf_conntrack_udp_timeout / _timeout_stream).
  uint32_t overlay_nat_udp_timeout_seconds = 30;
  uint32_t overlay_nat_udp_stream_timeout_seconds = 120;
  bool overlay_disable_vxlan = false;

  // "http://HOST_ADDRESS:HOST_PORT"
  std::string host_url() const {
    return "http://" + host_address + ":" + std::to_string(host_port);
  }
};

// The keys of runner_config.py with KohakuRiver's defaults (RUNNER_HOSTNAME: None = gethostname).
ConfigSchema runner_config_schema();
// Typed and validated values; throws ConfigError naming the key, its value, why, and where.
RunnerConfig runner_config_from(const ConfigFile& file);
// --config file (if any) then every --set, then validation. Warnings go to `warnings` when
// given, else to the log.
RunnerConfig load_runner_config(const DaemonArgs& args,
                                std::vector<std::string>* warnings = nullptr);

}  // namespace kohaku
