#include "verbs.h"

#include "command_support.h"
#include "common/http_router.h"
#include "reply_shape.h"
#include "table.h"

namespace kohakuctl {

using kohaku::http::HttpClient;
using kohaku::http::percent_encode;
using kohaku::http::with_query;
using nlohmann::json;

int ip_reserve(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  json j = checked(c.post(with_query(
      "/api/overlay/ip/reserve", {{"runner", inv.args.at(0)}, {"ip", inv.ip}, {"ttl", inv.ttl}})));
  expect_reply(j, "POST /api/overlay/ip/reserve",
               {{"ip", JsonKind::kString},
                {"runner", JsonKind::kString},
                {"token", JsonKind::kString},
                {"expires_at", JsonKind::kString, true}});
  if (inv.json) return print_json(out, j), 0;
  print_key_values(out, {{"IP", field(j, "ip")},
                         {"Runner", field(j, "runner")},
                         {"Token", field(j, "token")},
                         {"Expires at", field(j, "expires_at")},
                         {"TTL (s)", field(j, "ttl_seconds")}});
  return 0;
}

int ip_release(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  std::string token = inv.args.at(0);
  if (inv.reservation_token) {
    // `ip-release HOST --token T` (KohakuRiver's docs): release T only if it is on HOST.
    token = *inv.reservation_token;
    json v = checked(c.post(
        with_query("/api/overlay/ip/validate", {{"token", token}, {"runner", inv.args.at(0)}})));
    expect_reply(v, "POST /api/overlay/ip/validate", {{"valid", JsonKind::kBool}});
    if (v["valid"] != true)
      throw CommandError("not released: " +
                         (v.value("reason", json()).is_string()
                              ? v["reason"].get<std::string>()
                              : std::string("not a valid reservation on ") + inv.args.at(0)) +
                         "; nothing changed");
  }
  json j = checked(c.post(with_query("/api/overlay/ip/release", {{"token", token}})));
  expect_reply(j, "POST /api/overlay/ip/release", {{"released", JsonKind::kBool}});
  if (inv.json) return print_json(out, j), 0;
  if (j.contains("message"))
    out << field(j, "message") << "\n";
  else
    out << "Released reservation" << (j.contains("ip") ? " of " + field(j, "ip") : "") << "\n";
  return 0;
}

int ip_list(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  json j = checked(c.get(with_query("/api/overlay/ip/reservations",
                                    {{"runner", inv.runner}, {"include_used", "true"}})));
  if (inv.json) return print_json(out, j), 0;
  // KohakuRiver's columns: the token cut to 20 characters (the host already shortens it; a
  // longer one from another host is cut here), the expiry to the second.
  Table t({"IP", "Runner", "Token (truncated)", "Expires", "Status"});
  for (const auto& r : j.value("reservations", json::array())) {
    const std::string token = field(r, "token"), expires = field(r, "expires_at");
    std::string status = "Pending";
    if (r.value("is_used", json()) == true)
      status = "In use (" + field(r, "container_id").substr(0, 12) + ")";
    t.add_row({field(r, "ip"), field(r, "runner"),
               token.size() > 20 ? token.substr(0, 20) + "..." : token, expires.substr(0, 19),
               status});
  }
  if (t.empty()) {
    out << "No IP reservations\n";
  } else {
    t.print(out);
  }
  return 0;
}

int ip_info(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  json j = checked(c.get("/api/overlay/ip/info/" + percent_encode(inv.args.at(0))));
  // `ip-info HOST --token T` (KohakuRiver's docs): that reservation on HOST as well.
  json reservation;
  if (inv.reservation_token) {
    reservation =
        checked(c.post(with_query("/api/overlay/ip/validate", {{"token", *inv.reservation_token},
                                                               {"runner", inv.args.at(0)}})));
    expect_reply(reservation, "POST /api/overlay/ip/validate", {{"valid", JsonKind::kBool}});
  }
  if (inv.json) {
    if (!reservation.is_null()) j["reservation"] = reservation;
    return print_json(out, j), 0;
  }
  const json& range = j.contains("ip_range") ? j["ip_range"] : json::object();
  print_key_values(out, {{"Runner", field(j, "runner_name")},
                         {"Runner ID", field(j, "runner_id")},
                         {"Subnet", field(j, "subnet")},
                         {"Gateway", field(j, "gateway")},
                         {"IP range", field(range, "first") + " - " + field(range, "last")},
                         {"Total IPs", field(j, "total_ips")},
                         {"Available", field(j, "available")},
                         {"Reserved", field(j, "reserved")},
                         {"Used", field(j, "used")}});
  if (!reservation.is_null()) {
    out << "\n";
    print_key_values(out, {{"Reservation valid", reservation["valid"] == true ? "yes" : "no"},
                           {"Reservation IP", field(reservation, "ip")},
                           {"Expires at", field(reservation, "expires_at")},
                           {"In use", field(reservation, "is_used")},
                           {"Container", field(reservation, "container_id")},
                           {"Reason", field(reservation, "reason")}});
  }
  return 0;
}

int ip_available(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  json j = checked(c.get(
      with_query("/api/overlay/ip/available", {{"runner", inv.runner}, {"limit", inv.limit}})));
  if (inv.json) return print_json(out, j), 0;
  json by_runner = j.value("available_ips", json::object());
  if (by_runner.empty()) {
    out << "No runners\n";
    return 0;
  }
  Table t({"Runner", "Shown", "Available IPs"});
  for (const auto& [runner, ips] : by_runner.items()) {
    std::string list;
    for (const auto& ip : ips) list += (list.empty() ? "" : " ") + cell(ip);
    t.add_row({runner, std::to_string(ips.size()), list.empty() ? "-" : list});
  }
  t.print(out);
  return 0;
}

int ip_stats(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  json j = checked(c.get("/api/overlay/ip/stats"));
  expect_reply(j, "GET /api/overlay/ip/stats",
               {{"total_reservations", JsonKind::kNumber},
                {"pending_reservations", JsonKind::kNumber},
                {"in_use_reservations", JsonKind::kNumber},
                {"total_used_ips", JsonKind::kNumber},
                {"runners_with_used_ips", JsonKind::kNumber}});
  if (inv.json) return print_json(out, j), 0;
  print_key_values(out, {{"Total reservations", field(j, "total_reservations")},
                         {"Pending reservations", field(j, "pending_reservations")},
                         {"In-use reservations", field(j, "in_use_reservations")},
                         {"Total used IPs", field(j, "total_used_ips")},
                         {"Runners with used IPs", field(j, "runners_with_used_ips")}});
  return 0;
}

int ip_validate(const Invocation& inv, const HttpClient& c, std::ostream& out) {
  json j = checked(c.post(
      with_query("/api/overlay/ip/validate", {{"token", inv.args.at(0)}, {"runner", inv.runner}})));
  expect_reply(j, "POST /api/overlay/ip/validate", {{"valid", JsonKind::kBool}});
  bool valid = j.value("valid", false);
  if (inv.json) {
    print_json(out, j);
  } else {
    print_key_values(out, {{"Valid", valid ? "yes" : "no"},
                           {"IP", field(j, "ip")},
                           {"Runner", field(j, "runner")},
                           {"Expires at", field(j, "expires_at")},
                           {"In use", field(j, "is_used")}});
  }
  return valid ? 0 : 1;  // scripts can test the token with the exit status alone
}

}  // namespace kohakuctl
