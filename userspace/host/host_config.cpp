#include "host_config.h"

#include "common/enum_names.h"
#include "common/log.h"

namespace kohaku {

ConfigSchema host_config_schema() {
  ConfigSchema s;
  s.add_string("HOST_REACHABLE_ADDRESS", "127.0.0.1")
      .add_int("HOST_PORT", 8000)
      .add_string("HOST_BIND_IP", "0.0.0.0")
      .add_bool("OVERLAY_ENABLED", false)
      .add_string("OVERLAY_SUBNET", "10.128.0.0/12/6/14")
      .add_optional_string("OVERLAY_HOST_IP")
      .add_int("OVERLAY_HOST_PREFIX", 0)  // 0: not given, the scheme's TOTAL_PREFIX
      .add_string("OVERLAY_BRIDGE_NAME", "kohaku-overlay")
      .add_int("OVERLAY_VXLAN_ID", 100)
      .add_int("OVERLAY_VXLAN_PORT", 4789)
      .add_int("OVERLAY_MTU", 1450)
      .add_int("HEARTBEAT_INTERVAL_SECONDS", 5)
      .add_int("HEARTBEAT_TIMEOUT_FACTOR", 6)
      .add_int("CLEANUP_CHECK_INTERVAL_SECONDS", 10)
      .add_int("L2_IP_QUARANTINE_SECONDS", 300)
      .add_int("L2_DOCKER_BLOCK_SIZE", 32)
      .add_string("STATE_DIR", "/var/lib/kohaku")
      .add_string("OVERLAY_API_TOKEN", "", /*nullable=*/true)
      .add_bool("ALLOW_RUNNERS_WITHOUT_TOKEN", false)
      .add_string("OVERLAY_DATAPATH", "bpf")
      .add_string("BPF_PIN_ROOT", "/sys/fs/bpf/kohaku")
      .add_string("OVERLAY_EXPRESS", "auto");
  return s;
}

namespace {

constexpr EnumName<ExpressMode> kExpressModeNames[] = {{ExpressMode::kAuto, "auto"},
                                                       {ExpressMode::kTc, "tc"},
                                                       {ExpressMode::kXdp, "xdp"},
                                                       {ExpressMode::kOff, "off"}};

}  // namespace

std::string_view express_mode_name(ExpressMode mode) {
  return enum_name(kExpressModeNames, mode);
}

namespace {

ExpressMode check_express_mode(const ConfigFile& file, std::string_view key) {
  if (auto m = enum_value(kExpressModeNames, file.get_string(key))) return *m;
  file.fail(key,
            "must be 'auto' (XDP on physical NICs, else TC), 'tc', 'xdp' (native XDP, TC when "
            "the driver refuses) or 'off' (no express stage: the TC path on the tunnels only)");
}

// OVERLAY_HOST_IP / OVERLAY_HOST_PREFIX against OVERLAY_SUBNET: the anchor must be an address of
// the host's own block (subnet 0) of the overlay network, and its network must hold the whole
// overlay network, so that every overlay address no runner has ends at the host instead of
// leaving by its default route. Each refusal names both keys.
void check_host_anchor(const ConfigFile& file, HostConfig& c) {
  const SubnetScheme& scheme = c.overlay_subnet;
  const Ipv4Cidr network = scheme.overlay_network();
  const std::string subnet_key =
      "OVERLAY_SUBNET = '" + scheme.to_string() + "' (" + file.where("OVERLAY_SUBNET") + ")";
  const Ipv4Addr block_first{network.addr.value + 1};
  const Ipv4Addr block_last{network.addr.value + (1u << scheme.subnet_bits()) - 1};
  const std::string block = block_first.to_string() + ".." + block_last.to_string();
  if (file.get_optional_string("OVERLAY_HOST_IP")) {
    const Ipv4Addr ip = check_ipv4(file, "OVERLAY_HOST_IP");
    if (!network.contains(ip))
      file.fail("OVERLAY_HOST_IP",
                "is outside the overlay network " + network.to_string() + " of " + subnet_key +
                    ": runners route only that network to the host and could not reach it; "
                    "choose an address of the host's block " +
                    block + " or an OVERLAY_SUBNET that holds it");
    if (ip == network.addr)
      file.fail("OVERLAY_HOST_IP", "is the network address of " + network.to_string() + " (" +
                                       subnet_key + "); choose one of " + block);
    if (const uint32_t id = scheme.runner_for_ip(ip); id != 0)
      file.fail("OVERLAY_HOST_IP",
                "is in runner " + std::to_string(id) + "'s subnet " +
                    scheme.runner_subnet(id).to_string() + " of " + subnet_key +
                    ": it would collide with that runner's containers; the host's address "
                    "belongs in the host's block " +
                    block);
    c.overlay_host_ip = ip;
  }
  if (file.is_set("OVERLAY_HOST_PREFIX")) {
    const auto prefix =
        static_cast<uint8_t>(check_int_range(file, "OVERLAY_HOST_PREFIX", 1, 32, "bits"));
    const Ipv4Cidr anchor = Ipv4Cidr::holding(c.host_anchor_ip(), prefix);
    if (prefix > scheme.total_prefix())
      file.fail("OVERLAY_HOST_PREFIX",
                "makes kohaku-host's network " + anchor.to_string() +
                    " only part of the overlay network " + network.to_string() + " of " +
                    subnet_key +
                    ": overlay addresses outside it would leave by the host's "
                    "default route; use at most " +
                    std::to_string(scheme.total_prefix()) + " (the default)");
    if (auto why = special_range_overlap(anchor))
      file.fail("OVERLAY_HOST_PREFIX", "makes kohaku-host's network " + anchor.to_string() +
                                           " (OVERLAY_HOST_IP '" + c.host_anchor_ip().to_string() +
                                           "') overlap " + *why);
    if (c.host_anchor_ip() == anchor.addr || (prefix < 31 && c.host_anchor_ip() == anchor.last()))
      file.fail("OVERLAY_HOST_PREFIX", "makes OVERLAY_HOST_IP '" + c.host_anchor_ip().to_string() +
                                           "' the network or broadcast address of " +
                                           anchor.to_string());
    c.overlay_host_prefix = prefix;
  }
}

}  // namespace

HostConfig host_config_from(const ConfigFile& file) {
  HostConfig c;
  c.host_reachable_address = check_ipv4(file, "HOST_REACHABLE_ADDRESS");
  // Runners send VXLAN to this address: it must be one a host interface can have.
  if (const uint32_t a = c.host_reachable_address.value;
      (a >> 24) == 0 && a != 0)  // 0.0.0.0 itself is refused below, with the overlay
    file.fail("HOST_REACHABLE_ADDRESS", "is in 0.0.0.0/8 ('this network'), not a host address");
  if (c.host_reachable_address.value >= 0xe0000000u)
    file.fail("HOST_REACHABLE_ADDRESS",
              std::string("is a ") +
                  (c.host_reachable_address.value == 0xffffffffu   ? "broadcast"
                   : c.host_reachable_address.value >= 0xf0000000u ? "reserved (240.0.0.0/4)"
                                                                   : "multicast") +
                  " address; runners need a unicast address of this host");
  c.host_port = check_port(file, "HOST_PORT");
  c.host_bind_ip = check_ipv4(file, "HOST_BIND_IP");
  c.overlay_enabled = file.get_bool("OVERLAY_ENABLED");
  try {
    c.overlay_subnet = SubnetScheme::parse(file.get_string("OVERLAY_SUBNET"));
  } catch (const std::invalid_argument& e) {
    // The scheme's message already names the key and the value.
    throw ConfigError(file.where("OVERLAY_SUBNET") + ": " + e.what());
  }

  check_host_anchor(file, c);
  c.overlay_bridge_name = check_interface_name(file, "OVERLAY_BRIDGE_NAME");

  int64_t vni_base = file.get_int("OVERLAY_VXLAN_ID");
  int64_t max_id = c.overlay_subnet.max_runner_id();
  if (vni_base < 1)
    file.fail("OVERLAY_VXLAN_ID", "must be at least 1 (runner N uses VNI base + N)");
  if (vni_base + max_id > kMaxVni) {
    file.fail("OVERLAY_VXLAN_ID",
              "VNIs would run up to " + std::to_string(vni_base) + " + " + std::to_string(max_id) +
                  " = " + std::to_string(vni_base + max_id) + " for runner ids 1.." +
                  std::to_string(max_id) + " of OVERLAY_SUBNET " + c.overlay_subnet.to_string() +
                  ", over the 24-bit VNI limit " + std::to_string(kMaxVni));
  }
  c.overlay_vxlan_id = static_cast<uint32_t>(vni_base);
  c.overlay_vxlan_port = check_port(file, "OVERLAY_VXLAN_PORT");
  c.overlay_mtu = check_overlay_mtu(file, "OVERLAY_MTU");

  c.heartbeat_interval_seconds = static_cast<uint32_t>(
      check_int_range(file, "HEARTBEAT_INTERVAL_SECONDS", 1, 86400, "seconds between heartbeats"));
  c.heartbeat_timeout_factor = static_cast<uint32_t>(check_int_range(
      file, "HEARTBEAT_TIMEOUT_FACTOR", 1, 1000, "missed heartbeats before a runner is inactive"));
  c.cleanup_check_interval_seconds = static_cast<uint32_t>(
      check_int_range(file, "CLEANUP_CHECK_INTERVAL_SECONDS", 1, 86400, "seconds"));
  c.l2_ip_quarantine_seconds =
      static_cast<uint32_t>(check_int_range(file, "L2_IP_QUARANTINE_SECONDS", 0, 86400, "seconds"));
  const int64_t block = check_int_range(file, "L2_DOCKER_BLOCK_SIZE", 4, 4096, "addresses");
  if ((block & (block - 1)) != 0)
    file.fail("L2_DOCKER_BLOCK_SIZE",
              "must be a power of two (an aligned CIDR block), e.g. 16, 32 or 64");
  c.l2_docker_block_size = static_cast<uint32_t>(block);

  c.state_dir = check_non_empty(file, "STATE_DIR");
  // Unset: a generated token (secure by default). Written out as "" or None: no token, as in
  // KohakuRiver, where auth is simply absent; the operator asked for it by name.
  if (file.get_optional_string("OVERLAY_API_TOKEN"))
    c.overlay_api_token = check_token(file, "OVERLAY_API_TOKEN");
  c.api_auth_off = file.is_set("OVERLAY_API_TOKEN") && c.overlay_api_token.empty();
  c.allow_runners_without_token = file.get_bool("ALLOW_RUNNERS_WITHOUT_TOKEN");
  c.overlay_datapath = check_datapath(file, "OVERLAY_DATAPATH");
  c.bpf_pin_root = check_absolute_path(file, "BPF_PIN_ROOT");
  c.overlay_express = check_express_mode(file, "OVERLAY_EXPRESS");

  if (c.overlay_enabled && c.overlay_host_prefix &&
      Ipv4Cidr::holding(c.host_anchor_ip(), c.host_anchor_prefix())
          .contains(c.host_reachable_address))
    file.fail("OVERLAY_HOST_PREFIX",
              "puts HOST_REACHABLE_ADDRESS = '" + c.host_reachable_address.to_string() +
                  "' inside kohaku-host's network " +
                  Ipv4Cidr::holding(c.host_anchor_ip(), c.host_anchor_prefix()).to_string() +
                  ": the host would route its runners' tunnels into the overlay; use a longer "
                  "prefix (at most OVERLAY_SUBNET's " +
                  std::to_string(c.overlay_subnet.total_prefix()) + ")");
  if (c.overlay_enabled &&
      (c.host_reachable_address.is_loopback() || c.host_reachable_address.is_unspecified())) {
    std::string_view key = file.is_set("HOST_REACHABLE_ADDRESS") || !file.is_set("OVERLAY_ENABLED")
                               ? "HOST_REACHABLE_ADDRESS"
                               : "OVERLAY_ENABLED";
    std::string addr = c.host_reachable_address.to_string();
    std::string why = "HOST_REACHABLE_ADDRESS = '" + addr + "'";
    if (!file.is_set("HOST_REACHABLE_ADDRESS")) why += " (the default)";
    why += std::string(c.host_reachable_address.is_loopback() ? " is a loopback address"
                                                              : " is not a concrete address") +
           " and OVERLAY_ENABLED = True: runners would build VXLAN tunnels to " + addr +
           "; set HOST_REACHABLE_ADDRESS to an address runners can reach";
    throw ConfigError(file.where(key) + ": " + why);
  }
  return c;
}

HostConfig load_host_config(const DaemonArgs& args, std::vector<std::string>* warnings) {
  return host_config_from(read_daemon_config(host_config_schema(), args, warnings));
}

}  // namespace kohaku
