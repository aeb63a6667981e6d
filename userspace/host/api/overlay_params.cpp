#include "host/api/overlay_params.h"

#include <cctype>
#include <charconv>
#include <optional>
#include <span>

#include "common/json_kind.h"
#include "host/overlay/runner_registry.h"

namespace kohaku {

using nlohmann::json;

namespace {

constexpr int64_t kMinTtl = 60, kMaxTtl = 1800, kDefaultTtl = 300;
constexpr int64_t kDefaultLimit = 100, kMaxLimit = 1000;

// An empty value counts as absent, as KohakuRiver's clients send `?runner=` for "any".
std::optional<std::string> param(const QueryParams& q, const std::string& name) {
  auto it = q.find(name);
  if (it == q.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

std::string required(const QueryParams& q, const std::string& name) {
  auto v = param(q, name);
  if (!v) throw ApiError(kInvalidRequest, "missing query parameter '" + name + "'");
  return *v;
}

int64_t int_param(const QueryParams& q, const std::string& name, int64_t lo, int64_t hi,
                  int64_t fallback) {
  auto text = param(q, name);
  if (!text) return fallback;
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(text->data(), text->data() + text->size(), v);
  if (ec != std::errc() || ptr != text->data() + text->size() || v < lo || v > hi)
    throw ApiError(kInvalidRequest, "'" + name + "' must be an integer " + std::to_string(lo) +
                                        ".." + std::to_string(hi) + ", got '" + *text + "'");
  return v;
}

bool bool_param(const QueryParams& q, const std::string& name, bool fallback) {
  auto text = param(q, name);
  if (!text) return fallback;
  std::string t;
  for (char c : *text) t.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  // The spellings pydantic (KohakuRiver's FastAPI) accepts for a bool query parameter.
  if (t == "true" || t == "1" || t == "yes" || t == "on" || t == "t" || t == "y") return true;
  if (t == "false" || t == "0" || t == "no" || t == "off" || t == "f" || t == "n") return false;
  throw ApiError(kInvalidRequest, "'" + name + "' must be true or false, got '" + *text + "'");
}

Ipv4Addr ip_param(const std::string& name, const std::string& text) {
  auto ip = Ipv4Addr::try_parse(text);
  if (!ip) throw ApiError(kInvalidRequest, "'" + name + "' is not an IPv4 address: '" + text + "'");
  return *ip;
}

std::string container_param(const QueryParams& q) {
  std::string id = required(q, "container_id");
  if (id.size() > 256)
    throw ApiError(kInvalidRequest, "'container_id' is longer than 256 characters");
  for (unsigned char c : id)
    if (c <= ' ' || c >= 0x7f)
      throw ApiError(kInvalidRequest, "'container_id' must be printable ASCII without spaces");
  return id;
}

void check_hostname(const std::string& hostname) {
  checked_name("hostname", hostname);
  if (RunnerRegistry::parse_placeholder_name(hostname) != 0)
    throw ApiError(kInvalidRequest, "'hostname' '" + hostname +
                                        "' is reserved: runner_<id> names recovered tunnels");
}

// The runner's physical IP is the host part of its url, "http://A.B.C.D[:PORT]". Whether a
// loopback address is acceptable depends on the host's configuration: the service decides.
Ipv4Addr physical_ip_of_url(const std::string& url) {
  RunnerUrl parsed;
  try {
    parsed = RunnerUrl::parse(url);
  } catch (const InvalidName& e) {
    throw ApiError(kInvalidRequest, std::string("'url': ") + e.what());
  }
  const Ipv4Addr ip = parsed.ip;
  if (ip.is_unspecified() || ip.value >= 0xe0000000u)
    throw ApiError(kInvalidRequest,
                   "'url' " + printable(url) + ": the address must be a unicast address");
  return ip;
}

std::optional<int64_t> optional_int(const json& body, const char* key) {
  auto it = body.find(key);
  if (it == body.end() || it->is_null()) return std::nullopt;
  if (!it->is_number_integer())
    throw ApiError(kInvalidRequest, std::string("'") + key + "' must be an integer");
  return it->get<int64_t>();
}

// KohakuRiver's request models (pydantic) type these fields; a value of another type is a 422
// there, and here, rather than a node whose `node summary` cannot add up.
struct TypedField {
  const char* name;
  JsonKind kind;
};

// Checks the fields of `body` that are present and not null.
void check_types(const json& body, std::span<const TypedField> fields) {
  for (const auto& f : fields) {
    auto it = body.find(f.name);
    if (it == body.end() || it->is_null()) continue;
    if (!has_json_kind(*it, f.kind))
      throw ApiError(kInvalidRequest, std::string("'") + f.name + "' must be " +
                                          std::string(json_kind_name(f.kind)) + ", got " +
                                          it->type_name());
    if (f.kind == JsonKind::kInteger && it->is_number_integer() && it->get<int64_t>() < 0)
      throw ApiError(kInvalidRequest, std::string("'") + f.name + "' must not be negative");
  }
}

constexpr TypedField kRegisterFields[] = {
    {"total_cores", JsonKind::kInteger},
    {"total_ram_bytes", JsonKind::kInteger},
    {"numa_topology", JsonKind::kObject},
    {"gpu_info", JsonKind::kArray},
};

// What KohakuRiver's runners send with every heartbeat and its /api/nodes shows.
constexpr TypedField kHeartbeatMetrics[] = {
    {"cpu_percent", JsonKind::kNumber},
    {"memory_percent", JsonKind::kNumber},
    {"memory_used_bytes", JsonKind::kInteger},
    {"memory_total_bytes", JsonKind::kInteger},
    {"current_avg_temp", JsonKind::kNumber},
    {"current_max_temp", JsonKind::kNumber},
    {"gpu_info", JsonKind::kArray},
    {"vm_capable", JsonKind::kBool},
    {"vfio_gpus", JsonKind::kArray},
    {"runner_version", JsonKind::kString},
};
// Checked, not kept: the host runs no tasks.
constexpr TypedField kHeartbeatTasks[] = {{"running_tasks", JsonKind::kArray},
                                          {"killed_tasks", JsonKind::kArray}};

}  // namespace

RegisterRequest parse_register(const json& body) {
  if (!body.is_object()) throw ApiError(kInvalidRequest, "request body must be a JSON object");
  RegisterRequest r;
  auto hostname_it = body.find("hostname");
  if (hostname_it == body.end() || !hostname_it->is_string() ||
      hostname_it->get<std::string>().empty())
    throw ApiError(kInvalidRequest, "'hostname' is required (a non-empty string)");
  r.hostname = hostname_it->get<std::string>();
  check_hostname(r.hostname);
  auto url_it = body.find("url");
  if (url_it == body.end() || !url_it->is_string())
    throw ApiError(kInvalidRequest, "'url' is required (a string like http://IPV4:PORT)");
  r.url = url_it->get<std::string>();
  r.physical_ip = physical_ip_of_url(r.url);
  r.vxlan_id = optional_int(body, "vxlan_id");
  r.vxlan_port = optional_int(body, "vxlan_port");
  r.mtu = optional_int(body, "mtu");
  check_types(body, kRegisterFields);
  for (const auto& [key, value] : body.items())
    if (key != "hostname" && key != "url" && key != "vxlan_id" && key != "vxlan_port" &&
        key != "mtu")
      r.details[key] = value;
  return r;
}

json parse_heartbeat(const std::string& hostname, const json& body) {
  checked_name("hostname", hostname);
  // Anything but an object is a client bug.
  if (!body.is_object()) throw ApiError(kInvalidRequest, "heartbeat body must be a JSON object");
  check_types(body, kHeartbeatMetrics);
  check_types(body, kHeartbeatTasks);
  json metrics = json::object();
  for (const auto& f : kHeartbeatMetrics)
    if (auto it = body.find(f.name); it != body.end()) metrics[f.name] = *it;
  return metrics;
}

IpAvailableRequest parse_ip_available(const QueryParams& q) {
  IpAvailableRequest r;
  r.limit = static_cast<size_t>(int_param(q, "limit", 1, kMaxLimit, kDefaultLimit));
  r.runner = param(q, "runner");
  return r;
}

IpReserveRequest parse_ip_reserve(const QueryParams& q) {
  IpReserveRequest r;
  r.runner = required(q, "runner");
  r.ttl_seconds = int_param(q, "ttl", kMinTtl, kMaxTtl, kDefaultTtl);
  if (auto text = param(q, "ip")) r.ip = ip_param("ip", *text);
  return r;
}

IpReleaseRequest parse_ip_release(const QueryParams& q) {
  IpReleaseRequest r;
  r.token = param(q, "token");
  bool by_container = param(q, "container_id").has_value();
  if (r.token && by_container)
    throw ApiError(kInvalidRequest, "give either 'token' or 'container_id', not both");
  if (!r.token && !by_container)
    throw ApiError(kInvalidRequest, "missing query parameter 'token' (or 'container_id')");
  if (by_container) r.container_id = container_param(q);
  r.runner = param(q, "runner");
  return r;
}

IpReservationsRequest parse_ip_reservations(const QueryParams& q) {
  IpReservationsRequest r;
  r.include_used = bool_param(q, "include_used", r.include_used);
  r.runner = param(q, "runner");
  return r;
}

IpValidateRequest parse_ip_validate(const QueryParams& q) {
  IpValidateRequest r;
  r.token = required(q, "token");
  r.runner = param(q, "runner");
  return r;
}

IpUseRequest parse_ip_use(const QueryParams& q) {
  IpUseRequest r;
  r.container_id = container_param(q);
  r.token = param(q, "token");
  r.runner = param(q, "runner");
  auto ip_text = param(q, "ip");
  if (!r.token && !(r.runner && ip_text))
    throw ApiError(kInvalidRequest,
                   "give 'token' (a reservation) or 'runner' and 'ip' (an address in use)");
  if (!r.token) r.ip = ip_param("ip", *ip_text);
  return r;
}

}  // namespace kohaku
