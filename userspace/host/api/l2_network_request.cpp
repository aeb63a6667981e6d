#include "host/api/l2_network_request.h"

#include "common/api_error.h"
#include "common/wire/limits.h"
#include "common/wire/names.h"

namespace kohaku {

using nlohmann::json;

L2NetworkCreate parse_l2_network_create(const json& body) {
  if (!body.is_object()) throw ApiError(kInvalidRequest, "body must be a JSON object");
  for (const auto& [key, _] : body.items())
    if (key != "name" && key != "subnet" && key != "gateway" && key != "vni" &&
        key != "outbound_nat" && key != "runners")
      throw ApiError(
          kInvalidRequest,
          "unknown field '" + key + "' (known: name, subnet, gateway, vni, outbound_nat, runners)");
  auto str = [&body](const char* key) -> std::optional<std::string> {
    auto it = body.find(key);
    if (it == body.end() || it->is_null()) return std::nullopt;
    if (!it->is_string())
      throw ApiError(kInvalidRequest, std::string("'") + key + "' must be a string");
    return it->get<std::string>();
  };
  L2NetworkCreate req;
  auto name = str("name");
  if (!name) throw ApiError(kInvalidRequest, "'name' is required");
  validate_l2_network_name(*name);
  req.name = *name;

  auto subnet_text = str("subnet");
  if (!subnet_text)
    throw ApiError(kInvalidRequest, "'subnet' is required (CIDR like 10.200.0.0/24)");
  auto subnet = Ipv4Cidr::try_parse(*subnet_text);
  if (!subnet)
    throw ApiError(kInvalidRequest,
                   "'subnet' must be an IPv4 CIDR with zero host bits, got '" + *subnet_text + "'");
  if (subnet->prefix < 8 || subnet->prefix > 30)
    throw ApiError(kInvalidRequest, "'subnet' prefix must be /8../30, got " + subnet->to_string());
  req.subnet = *subnet;
  if (auto g = str("gateway")) {
    auto gw = Ipv4Addr::try_parse(*g);
    if (!gw) throw ApiError(kInvalidRequest, "'gateway' is not an IPv4 address: '" + *g + "'");
    if (!subnet->contains(*gw) || *gw == subnet->first() || *gw == subnet->last())
      throw ApiError(kInvalidRequest,
                     "'gateway' " + *g + " is not a host address of " + subnet->to_string());
    req.gateway = *gw;
  }
  if (auto it = body.find("vni"); it != body.end() && !it->is_null()) {
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > wire::kMaxVni)
      throw ApiError(kInvalidRequest,
                     "'vni' must be an integer 1.." + std::to_string(wire::kMaxVni));
    req.vni = it->get<uint32_t>();
  }
  if (auto it = body.find("outbound_nat"); it != body.end() && !it->is_null()) {
    if (!it->is_boolean()) throw ApiError(kInvalidRequest, "'outbound_nat' must be true or false");
    req.outbound_nat = it->get<bool>();
  }
  if (auto it = body.find("runners"); it != body.end() && !it->is_null()) {
    if (!it->is_array())
      throw ApiError(kInvalidRequest, "'runners' must be an array of runner names");
    req.runners.emplace();
    for (const auto& r : *it) {
      if (!r.is_string())
        throw ApiError(kInvalidRequest, "'runners' must hold runner hostnames (strings)");
      try {
        req.runners->insert(Hostname::parse(r.get<std::string>()).str());
      } catch (const InvalidName& e) {
        throw ApiError(kInvalidRequest, std::string("'runners': ") + e.what());
      }
    }
  }
  return req;
}

}  // namespace kohaku
