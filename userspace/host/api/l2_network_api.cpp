#include "host/api/l2_network_api.h"

#include "common/log.h"
#include "host/api/l2_network_request.h"

namespace kohaku {

using nlohmann::json;

namespace {

std::optional<std::string> query(const http::Request& r, const std::string& key) {
  auto it = r.query.find(key);
  if (it == r.query.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

bool force(const http::Request& r) {
  auto v = query(r, "force");
  if (!v) return false;
  if (*v == "true" || *v == "1") return true;
  if (*v == "false" || *v == "0") return false;
  throw ApiError(kInvalidRequest, "'force' must be true or false, got '" + *v + "'");
}

}  // namespace

L2RunnerLookup l2_runner_lookup(OverlayService& service) {
  return [&service](const std::string& name) -> std::optional<L2RunnerInfo> {
    for (const auto& n : service.nodes()) {
      if (n.value("hostname", "") != name) continue;
      L2RunnerInfo info;
      info.hostname = name;
      auto ip = Ipv4Addr::try_parse(n.value("physical_ip", ""));
      if (!ip) return std::nullopt;
      info.physical_ip = *ip;
      info.url = n.value("url", "");
      auto flag = n.find("vxlan_disabled");
      info.vxlan_disabled = flag != n.end() && flag->is_boolean() && flag->get<bool>();
      info.credential = service.runner_credential(name);
      return info;
    }
    return std::nullopt;
  };
}

void register_l2_network_api(http::Router& router, L2NetworkRegistry& registry) {
  using http::Request;
  L2NetworkRegistry* g = &registry;
  router.post("/api/networks",
              [g](const Request& r) { return g->create(parse_l2_network_create(r.json())); });
  router.get("/api/networks", [g](const Request& r) { return g->list(query(r, "runner")); });
  router.get("/api/networks/{name}",
             [g](const Request& r) { return g->get(r.path_params.at("name")); });
  router.del("/api/networks/{name}",
             [g](const Request& r) { return g->remove(r.path_params.at("name"), force(r)); });
  router.post("/api/networks/{name}/members/{runner}", [g](const Request& r) {
    return g->join(r.path_params.at("name"), r.path_params.at("runner"));
  });
  router.del("/api/networks/{name}/members/{runner}", [g](const Request& r) {
    return g->leave(r.path_params.at("name"), r.path_params.at("runner"), force(r));
  });
  router.post("/api/networks/{name}/ip/allocate", [g](const Request& r) {
    return g->allocate(r.path_params.at("name"), query(r, "runner").value_or(""),
                       query(r, "container_id").value_or(""));
  });
  router.post("/api/networks/{name}/ip/release", [g](const Request& r) {
    return g->release(r.path_params.at("name"), query(r, "ip"), query(r, "container_id"));
  });
  router.post("/api/networks/{name}/ip/block", [g](const Request& r) {
    return g->allocate_block(r.path_params.at("name"), query(r, "runner").value_or(""));
  });
}

std::unique_ptr<L2Networks> make_l2_networks(http::Router& router, const HostConfig& config,
                                             OverlayService& service) {
  auto l2 = std::make_unique<L2Networks>();
  L2NetworkRegistry::Options options;
  options.state_dir = config.state_dir;
  const auto& scheme = config.overlay_subnet;
  options.hub_vni_first = config.overlay_vxlan_id + 1;
  options.hub_vni_last = config.overlay_vxlan_id + scheme.max_runner_id();
  options.overlay_network = scheme.overlay_network();
  options.mtu = config.overlay_mtu;
  options.vxlan_port = config.overlay_vxlan_port;
  options.quarantine_ms = int64_t{config.l2_ip_quarantine_seconds} * 1000;
  options.docker_block_size = config.l2_docker_block_size;
  auto lookup = l2_runner_lookup(service);
  try {
    l2->registry = std::make_unique<L2NetworkRegistry>(options, lookup, system_clock_ms);
  } catch (const std::exception& e) {
    log::error("hostd", e.what());
    return nullptr;
  }
  l2->push = std::make_unique<L2NetworkPush>(*l2->registry, lookup, config.overlay_api_token);
  l2->registry->set_listener([push = l2->push.get()](const L2Change& c) { push->on_change(c); });
  register_l2_network_api(router, *l2->registry);
  return l2;
}

}  // namespace kohaku
