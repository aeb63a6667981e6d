#include "runner/docker/docker_client.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include "common/http_router.h"
#include "common/json_parse.h"

namespace kohaku::runner {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using nlohmann::json;

namespace {

// Container lists on a busy engine can be large; Beast's 8 MiB default is too tight.
constexpr uint64_t kMaxReplyBytes = 64ull << 20;

std::string docker_message(const std::string& body) {
  auto parsed = try_parse_json(body, kReplyJsonLimits);
  if (parsed && parsed->is_object() && parsed->contains("message") &&
      (*parsed)["message"].is_string()) {
    return (*parsed)["message"].get<std::string>();
  }
  return body.empty() ? std::string("(empty body)") : body;
}

}  // namespace

DockerClient::DockerClient(std::string socket_path, std::chrono::milliseconds timeout)
    : socket_path_(std::move(socket_path)), timeout_(timeout) {}

DockerClient::Reply DockerClient::request(std::string_view method, const std::string& target,
                                          const std::optional<json>& body) const {
  asio::io_context io;
  beast::basic_stream<asio::local::stream_protocol> stream(io);
  beast::error_code ec;
  const auto context = [&](std::string_view step) {
    return "docker " + std::string(method) + " " + target + " via " + socket_path_ + ": " +
           std::string(step) + ": " + ec.message();
  };

  stream.expires_after(timeout_);
  stream.connect(asio::local::stream_protocol::endpoint(socket_path_), ec);
  if (ec) throw DockerError(0, context("connect"));

  bhttp::request<bhttp::string_body> req(
      bhttp::string_to_verb(beast::string_view(method.data(), method.size())), target, 11);
  // The Engine API ignores Host but HTTP/1.1 requires one.
  req.set(bhttp::field::host, "docker");
  req.set(bhttp::field::user_agent, "kohaku-runnerd");
  if (body) {
    req.set(bhttp::field::content_type, "application/json");
    req.body() = body->dump();
  }
  req.prepare_payload();

  bhttp::write(stream, req, ec);
  if (ec) throw DockerError(0, context("write"));

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kMaxReplyBytes);
  bhttp::read(stream, buffer, parser, ec);
  if (ec) throw DockerError(0, context("read"));

  stream.socket().shutdown(asio::local::stream_protocol::socket::shutdown_both, ec);
  const auto& res = parser.get();
  return Reply{static_cast<int>(res.result_int()), res.body()};
}

void DockerClient::fail(std::string_view what, const Reply& reply) const {
  throw DockerError(reply.status, "docker " + std::string(what) + ": HTTP " +
                                      std::to_string(reply.status) + ": " +
                                      docker_message(reply.body));
}

json DockerClient::expect_json(std::string_view what, const Reply& reply) const {
  if (reply.status < 200 || reply.status >= 300) fail(what, reply);
  try {
    return parse_json(reply.body, kReplyJsonLimits);
  } catch (const JsonParseError& e) {
    throw DockerError(reply.status,
                      "docker " + std::string(what) + ": answer is not JSON: " + e.what());
  }
}

bool DockerClient::ping() const {
  try {
    return request("GET", "/_ping", std::nullopt).status == 200;
  } catch (const DockerError&) {
    return false;
  }
}

json DockerClient::list_networks() const {
  return expect_json("list networks", request("GET", "/networks", std::nullopt));
}

std::optional<json> DockerClient::inspect_network(std::string_view id_or_name) const {
  auto reply = request("GET", "/networks/" + http::percent_encode(id_or_name), std::nullopt);
  if (reply.status == 404) return std::nullopt;
  return expect_json("inspect network " + std::string(id_or_name), reply);
}

std::string DockerClient::create_network(const json& spec) const {
  const std::string name = spec.value("Name", "");
  auto answer = expect_json("create network " + name, request("POST", "/networks/create", spec));
  if (!answer.contains("Id") || !answer["Id"].is_string()) {
    throw DockerError(200, "docker create network " + name + ": answer has no Id");
  }
  return answer["Id"].get<std::string>();
}

void DockerClient::remove_network(std::string_view id_or_name) const {
  auto reply = request("DELETE", "/networks/" + http::percent_encode(id_or_name), std::nullopt);
  if (reply.status == 404) return;
  if (reply.status < 200 || reply.status >= 300) {
    fail("remove network " + std::string(id_or_name), reply);
  }
}

void DockerClient::disconnect_container(std::string_view network,
                                        std::string_view container) const {
  json body = {{"Container", std::string(container)}, {"Force", true}};
  auto reply = request("POST", "/networks/" + http::percent_encode(network) + "/disconnect", body);
  if (reply.status == 404) return;
  if (reply.status < 200 || reply.status >= 300) {
    fail("disconnect " + std::string(container) + " from " + std::string(network), reply);
  }
}

json DockerClient::list_containers(bool all, const json& filters) const {
  std::string target = std::string("/containers/json?all=") + (all ? "true" : "false");
  if (!filters.is_null() && !filters.empty()) {
    target += "&filters=" + http::percent_encode(filters.dump());
  }
  return expect_json("list containers", request("GET", target, std::nullopt));
}

std::optional<json> DockerClient::inspect_container(std::string_view id_or_name) const {
  auto reply =
      request("GET", "/containers/" + http::percent_encode(id_or_name) + "/json", std::nullopt);
  if (reply.status == 404) return std::nullopt;
  return expect_json("inspect container " + std::string(id_or_name), reply);
}

}  // namespace kohaku::runner
