#pragma once
// /proc/sys values of the calling thread's network namespace (net.* sysctls are per namespace:
// /proc/sys/net resolves against the namespace of the thread that opens the file).
#include <string>
#include <string_view>

namespace kohaku::netlink {

// Keys are dotted ("net.ipv4.ip_forward") or a path relative to /proc/sys
// ("net/ipv4/conf/eth0.100/forwarding") for device names that contain dots.
std::string sysctl_path(std::string_view key);
std::string read_sysctl(std::string_view key);  // trailing newline removed
void write_sysctl(std::string_view key, std::string_view value);
// Writes only when the value differs; returns whether it changed (logged).
bool ensure_sysctl(std::string_view key, std::string_view value);
// Path key for a per-device setting: ipv4_conf_key("eth0.1", "forwarding").
std::string ipv4_conf_key(std::string_view dev, std::string_view setting);

}  // namespace kohaku::netlink
