#pragma once
// kohaku-hostd's configuration (host_config.py + --set), typed and validated.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config_checks.h"
#include "common/config_file.h"
#include "common/daemon_args.h"
#include "common/ipv4.h"
#include "common/subnet_scheme.h"

namespace kohaku {

// The hub express stage on the uplink (docs/bpf-host-datapath.md): `auto` picks XDP for physical
// NICs with native XDP and TC for everything else (veth, bonds, ...).
enum class ExpressMode { kAuto, kTc, kXdp, kOff };
std::string_view express_mode_name(ExpressMode mode);  // "auto" / "tc" / "xdp" / "off"

struct HostConfig {
  Ipv4Addr host_reachable_address = Ipv4Addr::parse("127.0.0.1");  // VXLAN local, told to runners
  uint16_t host_port = 8000;
  Ipv4Addr host_bind_ip = Ipv4Addr::parse("0.0.0.0");
  bool overlay_enabled = false;
  SubnetScheme overlay_subnet = SubnetScheme::parse("10.128.0.0/12/6/14");
  // kohaku-host's address and prefix (OVERLAY_HOST_IP / OVERLAY_HOST_PREFIX); unset: the
  // scheme's, BASE + 1 / TOTAL_PREFIX. Read them through host_anchor_*().
  std::optional<Ipv4Addr> overlay_host_ip;
  std::optional<uint8_t> overlay_host_prefix;
  // The runners' bridge (OVERLAY_BRIDGE_NAME in KohakuRiver's host_config.py): the host builds no
  // bridge; it reports the name in /api/overlay/status, as KohakuRiver's panel shows it.
  std::string overlay_bridge_name = "kohaku-overlay";
  uint32_t overlay_vxlan_id = 100;  // VNI base: runner id N uses VNI base + N
  uint16_t overlay_vxlan_port = 4789;
  uint32_t overlay_mtu = 1450;
  uint32_t heartbeat_interval_seconds = 5;
  uint32_t heartbeat_timeout_factor = 6;
  uint32_t cleanup_check_interval_seconds = 10;
  // A released L2 network address is handed out again only after this long (docs/l2-networks.md).
  uint32_t l2_ip_quarantine_seconds = 300;
  // Addresses per runner in a named network's Docker block (power of two, 4..4096).
  uint32_t l2_docker_block_size = 32;
  std::string state_dir = "/var/lib/kohaku";
  // Mutating routes need "Authorization: Bearer <token>". Unset: kohaku-hostd generates one in
  // STATE_DIR/api_token at first start (host/api/api_token.h). Set to "" or None: no
  // authentication (api_auth_off), an explicit opt-out.
  std::string overlay_api_token;
  bool api_auth_off = false;
  // POST /api/register and PUT /api/heartbeat/{hostname} without the bearer token, for
  // KohakuRiver's runners, which send none; every other mutating route still needs it
  // (docs/security.md says what this opens).
  bool allow_runners_without_token = false;
  Datapath overlay_datapath = Datapath::kBpf;
  std::string bpf_pin_root = "/sys/fs/bpf/kohaku";
  ExpressMode overlay_express = ExpressMode::kAuto;  // only with overlay_datapath = bpf

  Ipv4Addr host_anchor_ip() const {
    return overlay_host_ip.value_or(overlay_subnet.host_overlay_ip());
  }
  uint8_t host_anchor_prefix() const {
    return overlay_host_prefix.value_or(overlay_subnet.total_prefix());
  }

  // A runner without a heartbeat for this long is inactive.
  int64_t heartbeat_timeout_ms() const {
    return int64_t{heartbeat_interval_seconds} * heartbeat_timeout_factor * 1000;
  }
};

// The keys of host_config.py with KohakuRiver's defaults.
ConfigSchema host_config_schema();
// Typed and validated values; throws ConfigError naming the key, its value, why, and where it
// was set.
HostConfig host_config_from(const ConfigFile& file);
// --config file (if any) then every --set, then validation. Warnings go to `warnings` when
// given, else to the log.
HostConfig load_host_config(const DaemonArgs& args, std::vector<std::string>* warnings = nullptr);

}  // namespace kohaku
