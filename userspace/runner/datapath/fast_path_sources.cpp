#include "runner/datapath/fast_path_sources.h"

#include <net/if.h>

#include <cstdio>
#include <optional>
#include <stdexcept>

#include "common/log.h"
#include "common/netlink/netns.h"

namespace kohaku::runner {
namespace {

constexpr const char* kLog = "fast-path";

std::optional<netlink::MacAddr> parse_mac(const std::string& text) {
  netlink::MacAddr m;
  unsigned b[6];
  if (std::sscanf(text.c_str(), "%x:%x:%x:%x:%x:%x", &b[0], &b[1], &b[2], &b[3], &b[4], &b[5]) != 6)
    return std::nullopt;
  for (int i = 0; i < 6; ++i) {
    if (b[i] > 0xff) return std::nullopt;
    m.bytes[static_cast<size_t>(i)] = static_cast<uint8_t>(b[i]);
  }
  return m;
}

netlink::Netns namespace_of(const Workload& w) {
  return w.netns.empty() ? netlink::Netns::of_pid(w.pid) : netlink::Netns::open(w.netns);
}

std::string short_id(const std::string& id) {
  return id.substr(0, 12);
}

}  // namespace

std::vector<FastPathWorkload> own_fast_path_workloads(const std::vector<Workload>& workloads) {
  std::vector<FastPathWorkload> out;
  for (const Workload& w : workloads) {
    // Read on every pass: whoever runs in the namespace may change the interface's MAC, and a
    // stale one would make the source check drop the workload's traffic.
    netlink::MacAddr mac;
    try {
      netlink::Netns ns = namespace_of(w);
      mac = netlink::run_in_netns(ns, [&] { return netlink::get_link(w.interface).mac; });
    } catch (const std::exception& e) {
      log::debug(kLog, "workload " + w.id + ": " + e.what());
      continue;  // its namespace is going away: repair() drops it
    }
    out.push_back({"workload " + w.id, w.host_veth, w.ip, w.prefix, mac, w.bridge});
  }
  return out;
}

std::optional<std::vector<FastPathWorkload>> DockerWorkloadFinder::find(
    const std::set<std::string>& bridges) {
  std::vector<FastPathWorkload> out;
  std::map<std::string, Found> seen;
  try {
    if (!docker_.ping()) return out;
    for (const auto& listed : docker_.list_networks()) {
      const std::string bridge =
          listed.value("/Options/com.docker.network.bridge.name"_json_pointer, std::string());
      if (!bridges.count(bridge)) continue;
      auto net = docker_.inspect_network(listed.value("Id", std::string()));
      if (!net || !net->contains("Containers") || !(*net)["Containers"].is_object()) continue;
      for (const auto& [container, endpoint] : (*net)["Containers"].items()) {
        auto mac = parse_mac(endpoint.value("MacAddress", std::string()));
        const std::string cidr = endpoint.value("IPv4Address", std::string());  // "a.b.c.d/n"
        auto addr = Ipv4Addr::try_parse(std::string_view(cidr).substr(0, cidr.find('/')));
        auto subnet = Ipv4Cidr::try_parse(cidr, true);
        if (!mac || !addr || !subnet) continue;
        const std::string key = container + "/" + listed.value("Id", std::string());
        const std::string endpoint_id = endpoint.value("EndpointID", std::string());
        // A restart keeps the MAC (Docker derives it from the address) but gives the container
        // a new endpoint and a new veth: the cached one would name a device that is gone.
        auto it = cache_.find(key);
        if (it == cache_.end() || it->second.mac != *mac || it->second.endpoint != endpoint_id) {
          auto inspected = docker_.inspect_container(container);
          const std::string sandbox =
              inspected
                  ? inspected->value("/NetworkSettings/SandboxKey"_json_pointer, std::string())
                  : std::string();
          if (sandbox.empty()) continue;
          try {
            netlink::Netns ns = netlink::Netns::open(sandbox);
            int peer = netlink::run_in_netns(ns, [&] {
              for (const auto& l : netlink::list_links())
                if (l.mac == *mac) return l.link_ifindex;
              return 0;
            });
            char name[IF_NAMESIZE] = {};
            if (peer == 0 || !if_indextoname(static_cast<unsigned>(peer), name)) continue;
            it = cache_.insert_or_assign(key, Found{endpoint_id, *mac, name}).first;
          } catch (const std::exception& e) {
            log::debug(kLog, "container " + short_id(container) + ": " + e.what());
            continue;  // stopping: the next pass sees it gone
          }
        }
        seen[key] = it->second;
        out.push_back({"container " + short_id(container), it->second.host_veth, *addr,
                       subnet->prefix, *mac, bridge});
      }
    }
  } catch (const std::exception& e) {
    log::debug(kLog, std::string("Docker: ") + e.what());
    return std::nullopt;  // the cache stays too: nothing was learnt that replaces it
  }
  cache_ = std::move(seen);
  return out;
}

}  // namespace kohaku::runner
