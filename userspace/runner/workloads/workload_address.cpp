#include "runner/workloads/workload_address.h"

#include <nlohmann/json.hpp>

#include "common/api_error.h"
#include "common/domain_error.h"
#include "common/log.h"
#include "runner/workloads/workload_manager.h"

namespace kohaku::runner {

using nlohmann::json;

namespace {

constexpr std::string_view kLog = "workload";

// The caller's reservation, or one we make at the host.
ChosenAddress host_address(const AddressSources& sources, const AttachNetwork& net,
                           const std::optional<std::string>& token) {
  const std::string& runner = sources.runner_name;
  try {
    if (token) {
      json v = sources.host->validate(*token, runner);
      if (!v.value("valid", false)) {
        throw DomainError(ErrorKind::kInvalid,
                          "reservation token is not valid for runner " + runner);
      }
      if (v.value("is_used", false))
        throw DomainError(ErrorKind::kConflict, "reservation token is already used");
      auto ip = Ipv4Addr::try_parse(v.value("ip", ""));
      if (!ip || !net.subnet.contains(*ip)) {
        throw DomainError(ErrorKind::kInvalid,
                          "reservation is for " + v.value("ip", std::string("?")) +
                              ", outside this runner's subnet " + net.subnet.to_string());
      }
      return ChosenAddress{.ip = *ip, .token = token};
    }
    Reservation r = sources.host->reserve(runner, std::nullopt);
    return ChosenAddress{.ip = r.ip, .token = r.token, .we_reserved = true};
  } catch (const HostApiError& e) {
    // A refused token or address is the request's fault.
    throw DomainError(host_error_kind(e, ErrorKind::kInvalid),
                      (e.status() == 0 ? "host unreachable: " : "host refused the address: ") +
                          std::string(e.what()));
  }
}

}  // namespace

std::optional<Ipv4Addr> pick_free_address(const Ipv4Cidr& subnet, Ipv4Addr gateway,
                                          const std::set<uint32_t>& taken) {
  if (subnet.prefix >= 31) return std::nullopt;
  for (uint32_t v = subnet.first().value + 1; v < subnet.last().value; ++v) {
    if (v != gateway.value && !taken.count(v)) return Ipv4Addr{v};
  }
  return std::nullopt;
}

ChosenAddress choose_address(const AddressSources& sources, const AttachNetwork& net,
                             const std::string& network, const std::optional<std::string>& token,
                             const std::string& workload_id) {
  if (!network.empty()) return ChosenAddress{.ip = sources.named->allocate(network, workload_id)};
  if (net.host_managed) return host_address(sources, net, token);
  auto ip = pick_free_address(net.subnet, net.gateway, sources.taken());
  if (!ip)
    throw DomainError(ErrorKind::kConflict,
                      "default network " + net.subnet.to_string() + " is full");
  return ChosenAddress{.ip = *ip};
}

void return_address(const AddressSources& sources, const std::string& network,
                    const std::string& workload_id, const ChosenAddress& address) {
  if (!network.empty()) sources.named->release(network, workload_id);
  if (!address.we_reserved) return;
  try {
    sources.host->release_token(*address.token);
  } catch (const HostApiError& e) {
    log::warn(kLog, "could not return reservation of " + address.ip.to_string() + ": " + e.what());
  }
}

}  // namespace kohaku::runner
