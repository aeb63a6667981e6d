#pragma once
// Where a new workload's address comes from, one of three sources: a named L2 network's IPAM at
// the host, the host's overlay reservations (the caller's token, or one the runner reserves), or
// a local pick on the default network (where the runner allocates itself).
#include <functional>
#include <optional>
#include <set>
#include <string>

#include "common/ipv4.h"
#include "runner/overlay/host_api.h"

namespace kohaku::runner {

class NamedNetworks;
struct AttachNetwork;

// Lowest address of `subnet` that is not the network/broadcast address, not in `taken` and
// not the gateway; nullopt when full. For the default network, where the runner allocates.
std::optional<Ipv4Addr> pick_free_address(const Ipv4Cidr& subnet, Ipv4Addr gateway,
                                          const std::set<uint32_t>& taken);

struct ChosenAddress {
  Ipv4Addr ip;
  std::optional<std::string> token;  // the host reservation to mark used, overlay only
  bool we_reserved = false;          // the runner reserved `token`: return it when attach fails
};

// What choose_address() may draw on.
struct AddressSources {
  NamedNetworks* named = nullptr;  // for a named network
  const HostApi* host = nullptr;   // for a host-managed network
  std::string runner_name;
  // Addresses in use on the default network (our workloads' and Docker's).
  std::function<std::set<uint32_t>()> taken;
};

// `network`: the named network's name, or empty. Throws DomainError (kInvalid/kConflict the
// caller's or the host's refusal, 502 a failing host, 503 an unreachable one; 409 a full default
// network).
ChosenAddress choose_address(const AddressSources& sources, const AttachNetwork& net,
                             const std::string& network, const std::optional<std::string>& token,
                             const std::string& workload_id);

// Undoes choose_address() for an attach that failed before the address was marked used: frees
// the named network's address, returns a reservation the runner made. Logs, never throws.
void return_address(const AddressSources& sources, const std::string& network,
                    const std::string& workload_id, const ChosenAddress& address);

}  // namespace kohaku::runner
