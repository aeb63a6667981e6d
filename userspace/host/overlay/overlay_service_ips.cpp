// The IP reservation routes of OverlayService (/api/overlay/ip/...); the runner lifecycle is in
// overlay_service.cpp.
#include <optional>
#include <vector>

#include "common/secret.h"
#include "host/overlay/overlay_service.h"
#include "host/overlay/overlay_service_impl.h"

namespace kohaku {

using nlohmann::json;

namespace {

std::string new_token() {
  // 256 bits: the reservation list shows the first 20 hex digits, as KohakuRiver does, and
  // 176 bits stay hidden.
  return random_hex(32);
}

}  // namespace

json OverlayService::ip_available(const IpAvailableRequest& request) {
  auto& m = *impl_;
  m.require_overlay();
  return m.read([&]() -> json {
    std::vector<RunnerAllocation> targets;
    if (request.runner)
      targets.push_back(m.runner(*request.runner));
    else
      targets = m.registry.allocations();
    json by_runner = json::object();
    for (const auto& a : targets) {
      json ips = json::array();
      for (auto ip : m.book.available(a.id, request.limit)) ips.push_back(ip.to_string());
      by_runner[a.hostname] = std::move(ips);
    }
    return {{"available_ips", by_runner}};
  });
}

json OverlayService::ip_info(const std::string& runner) {
  auto& m = *impl_;
  m.require_overlay();
  return m.read([&]() -> json {
    const auto& a = m.runner(runner);
    auto c = m.book.counts(a.id);
    return {{"runner_name", a.hostname},
            {"runner_id", a.id},
            {"subnet", a.subnet.to_string()},
            {"gateway", m.scheme.runner_gateway(a.id).to_string()},
            {"ip_range",
             {{"first", m.scheme.first_container_ip(a.id).to_string()},
              {"last", m.scheme.last_container_ip(a.id).to_string()}}},
            {"total_ips", c.total},
            {"available", c.available},
            {"reserved", c.reserved},
            {"used", c.used}};
  });
}

json OverlayService::ip_reserve(const IpReserveRequest& request) {
  return wait_for([&](JsonCompletion done) { ip_reserve(request, std::move(done)); });
}

void OverlayService::ip_reserve(const IpReserveRequest& request, JsonCompletion done) {
  auto& m = *impl_;
  m.require_overlay();
  const std::string& runner = request.runner;
  const int64_t ttl = request.ttl_seconds;
  const auto& ip = request.ip;
  m.mutate_async(std::move(done), [&] {
    int64_t now = m.clock();
    m.refresh(now);
    const auto& a = m.runner(runner);
    std::string token = new_token();
    while (m.book.find_token(token) != nullptr) token = new_token();
    const IpEntry* e = nullptr;
    try {
      e = &m.book.reserve(a.id, ip, token, now, ttl * 1000);
    } catch (const DomainError&) {
      m.commit(false);  // expiries done by refresh() above
      throw;
    }
    json answer = {{"ip", e->ip.to_string()},
                   {"runner", a.hostname},
                   {"token", e->token},
                   {"expires_at", iso_time(e->expires_ms)},
                   {"ttl_seconds", ttl}};
    m.commit(true);
    return answer;
  });
}

json OverlayService::ip_release(const IpReleaseRequest& request, const std::string& credential) {
  return wait_for([&](JsonCompletion done) { ip_release(request, credential, std::move(done)); });
}

void OverlayService::ip_release(const IpReleaseRequest& request, const std::string& credential,
                                JsonCompletion done) {
  auto& m = *impl_;
  m.require_overlay();
  const auto& token = request.token;
  const std::string container_id = request.container_id.value_or(std::string());
  m.mutate_async(std::move(done), [&]() -> json {
    m.refresh(m.clock());
    m.commit(false);
    if (token) {
      auto freed = m.book.release_token(*token);
      m.commit(true);
      return {
          {"released", true}, {"ip", freed.ip.to_string()}, {"runner", m.name_of(freed.runner_id)}};
    }
    const auto& runner = request.runner;
    if (!runner)
      throw DomainError(ErrorKind::kMalformed,
                        "releasing by 'container_id' needs 'runner' (and its credential)");
    const auto& a = m.runner(*runner);
    m.require_credential(a, credential, "releasing by container id");
    auto freed = m.book.release_container(container_id, a.id);
    m.commit(true);
    json ips = json::array();
    for (const auto& e : freed) ips.push_back(e.ip.to_string());
    return {{"released", !freed.empty()},
            {"released_count", freed.size()},
            {"container_id", container_id},
            {"ips", ips}};
  });
}

json OverlayService::ip_reservations(const IpReservationsRequest& request) {
  auto& m = *impl_;
  m.require_overlay();
  return m.read([&]() -> json {
    const std::optional<uint32_t> runner_id = m.runner_id(request.runner);
    json list = json::array();
    for (const auto& e : m.book.list(runner_id, request.include_used))
      list.push_back(m.entry_json(e, true));
    return {{"reservations", list}};
  });
}

json OverlayService::ip_validate(const IpValidateRequest& request) {
  auto& m = *impl_;
  m.require_overlay();
  return m.read([&]() -> json {
    const std::optional<uint32_t> runner_id = m.runner_id(request.runner);
    // A validation is a question: "no" is a normal 200 answer, not an error.
    const IpEntry* e = m.book.find_token(request.token);
    if (e == nullptr) return {{"valid", false}, {"reason", "reservation not found or expired"}};
    if (runner_id && e->runner_id != *runner_id)
      return {{"valid", false},
              {"reason", "reservation belongs to runner '" + m.name_of(e->runner_id) + "'"}};
    return {{"valid", true},
            {"ip", e->ip.to_string()},
            {"runner", m.name_of(e->runner_id)},
            {"expires_at", e->is_used ? json(nullptr) : iso_time(e->expires_ms)},
            {"is_used", e->is_used},
            {"container_id", e->is_used ? json(e->container_id) : json(nullptr)}};
  });
}

json OverlayService::ip_use(const IpUseRequest& request, const std::string& credential) {
  return wait_for([&](JsonCompletion done) { ip_use(request, credential, std::move(done)); });
}

void OverlayService::ip_use(const IpUseRequest& request, const std::string& credential,
                            JsonCompletion done) {
  auto& m = *impl_;
  m.require_overlay();
  const std::string& container_id = request.container_id;
  const auto& token = request.token;
  const auto& runner = request.runner;
  const auto& ip = request.ip;
  m.mutate_async(std::move(done), [&] {
    int64_t now = m.clock();
    m.refresh(now);
    m.commit(false);
    const IpEntry* e = nullptr;
    if (token) {
      if (runner) {
        auto id = m.runner(*runner).id;
        const IpEntry* found = m.book.find_token(*token);
        if (found != nullptr && found->runner_id != id)
          throw DomainError(ErrorKind::kConflict,
                            "reservation belongs to runner '" + m.name_of(found->runner_id) + "'");
      }
      e = &m.book.use_token(*token, container_id);
    } else {
      const auto& a = m.runner(*runner);
      m.require_credential(a, credential, "recording an address by runner and ip");
      e = &m.book.use_ip(a.id, *ip, container_id, now);
    }
    json answer = {{"ip", e->ip.to_string()},
                   {"runner", m.name_of(e->runner_id)},
                   {"container_id", e->container_id},
                   {"is_used", true}};
    m.commit(true);
    return answer;
  });
}

json OverlayService::ip_stats() {
  auto& m = *impl_;
  m.require_overlay();
  return m.read([&]() -> json {
    auto s = m.book.stats();
    return {{"total_reservations", s.total_reservations},
            {"pending_reservations", s.pending_reservations},
            {"in_use_reservations", s.in_use_reservations},
            {"total_used_ips", s.total_used_ips},
            {"runners_with_used_ips", s.runners_with_used_ips}};
  });
}

}  // namespace kohaku
