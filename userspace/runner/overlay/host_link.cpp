#include "runner/overlay/host_link.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <stdexcept>
#include <thread>

#include "common/crash_safe_file.h"

namespace kohaku::runner {

using nlohmann::json;

namespace {

Ipv4Addr resolve_ipv4(const std::string& host) {
  if (auto literal = Ipv4Addr::try_parse(host)) return *literal;
  addrinfo hints{};
  hints.ai_family = AF_INET;
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* result = nullptr;
  const int rc = ::getaddrinfo(host.c_str(), nullptr, &hints, &result);
  if (rc != 0 || !result) {
    throw std::runtime_error("cannot resolve HOST_ADDRESS " + host + ": " + gai_strerror(rc));
  }
  const auto* sin = reinterpret_cast<const sockaddr_in*>(result->ai_addr);
  const Ipv4Addr addr = Ipv4Addr::from_network_order(sin->sin_addr.s_addr);
  ::freeaddrinfo(result);
  return addr;
}

}  // namespace

Ipv4Addr physical_ip(const RunnerConfig& config) {
  if (!config.runner_bind_ip.is_unspecified()) return config.runner_bind_ip;
  const Ipv4Addr host = resolve_ipv4(config.host_address);
  UniqueFd fd(::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) throw std::runtime_error(std::string("socket: ") + std::strerror(errno));
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(config.host_port);
  dst.sin_addr.s_addr = host.network_order();
  // connect() on UDP only selects the route and source address; nothing is sent.
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof dst) != 0) {
    throw std::runtime_error("no route to host " + host.to_string() + ": " + std::strerror(errno));
  }
  sockaddr_in local{};
  socklen_t len = sizeof local;
  if (::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&local), &len) != 0) {
    throw std::runtime_error(std::string("getsockname: ") + std::strerror(errno));
  }
  return Ipv4Addr::from_network_order(local.sin_addr.s_addr);
}

std::string runner_url(Ipv4Addr physical, uint16_t port) {
  return "http://" + physical.to_string() + ":" + std::to_string(port);
}

json build_register_body(const RunnerConfig& config, const std::string& hostname,
                         Ipv4Addr physical) {
  const long pages = ::sysconf(_SC_PHYS_PAGES);
  const long page_size = ::sysconf(_SC_PAGE_SIZE);
  return json{
      {"hostname", hostname},
      {"url", runner_url(physical, config.runner_port)},
      {"total_cores", std::max(1u, std::thread::hardware_concurrency())},
      // KohakuRiver's field name, which its host and /api/nodes use.
      {"total_ram_bytes", pages > 0 && page_size > 0 ? static_cast<int64_t>(pages) * page_size : 0},
      {"vxlan_id", config.overlay_vxlan_id},
      {"vxlan_port", config.overlay_vxlan_port},
      {"mtu", config.overlay_mtu},
      // The host refuses L2 network membership for a runner without VXLAN (412).
      {"vxlan_disabled", config.overlay_disable_vxlan},
  };
}

std::optional<std::string> no_overlay_reason(const json& answer) {
  if (!answer.is_object()) return std::nullopt;
  auto it = answer.find("overlay");
  if (it != answer.end() && !it->is_null()) return std::nullopt;
  auto reason = answer.find("overlay_reason");
  if (reason != answer.end() && reason->is_string() && !reason->get<std::string>().empty())
    return reason->get<std::string>();
  return std::string("the host sent no overlay configuration (is OVERLAY_ENABLED on at the host?)");
}

json memory_metrics(const std::string& meminfo_path) {
  std::ifstream in(meminfo_path);
  int64_t total_kib = -1, available_kib = -1;
  for (std::string key; in >> key;) {
    int64_t value = 0;
    if (!(in >> value)) break;
    if (key == "MemTotal:") total_kib = value;
    if (key == "MemAvailable:") available_kib = value;
    in.ignore(std::numeric_limits<std::streamsize>::max(), '\n');
  }
  if (total_kib <= 0 || available_kib < 0 || available_kib > total_kib) return json::object();
  const int64_t total = total_kib * 1024, used = (total_kib - available_kib) * 1024;
  return {{"memory_total_bytes", total},
          {"memory_used_bytes", used},
          {"memory_percent", 100.0 * static_cast<double>(used) / static_cast<double>(total)}};
}

OverlayAssignment parse_register_answer(const json& answer) {
  if (!answer.is_object() || !answer.contains("overlay") || answer["overlay"].is_null()) {
    throw std::invalid_argument(
        "the host's register answer has no overlay configuration (is OVERLAY_ENABLED on at the "
        "host?)");
  }
  return OverlayAssignment::from_json(answer["overlay"]);
}

std::string parameter_mismatch(const OverlayAssignment& a, const RunnerConfig& config) {
  if (a.vxlan_id && *a.vxlan_id != config.overlay_vxlan_id + a.runner_id) {
    return "host uses VNI " + std::to_string(*a.vxlan_id) + " for runner id " +
           std::to_string(a.runner_id) + ", ours would be " +
           std::to_string(config.overlay_vxlan_id + a.runner_id) + " (OVERLAY_VXLAN_ID " +
           std::to_string(config.overlay_vxlan_id) + " + id)";
  }
  if (a.vxlan_port && *a.vxlan_port != config.overlay_vxlan_port) {
    return "host OVERLAY_VXLAN_PORT is " + std::to_string(*a.vxlan_port) + ", ours is " +
           std::to_string(config.overlay_vxlan_port);
  }
  if (a.mtu && *a.mtu != config.overlay_mtu) {
    return "host OVERLAY_MTU is " + std::to_string(*a.mtu) + ", ours is " +
           std::to_string(config.overlay_mtu);
  }
  return {};
}

std::string runner_hostname(const RunnerConfig& config) {
  if (!config.runner_hostname.empty()) return config.runner_hostname;
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0 || name[0] == '\0') return "localhost";
  return name;
}

}  // namespace kohaku::runner
