#include "http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>

#include "http_router.h"
#include "json_parse.h"
#include "wire_names.h"

namespace kohaku::http {
namespace {

namespace beast = boost::beast;
namespace bhttp = boost::beast::http;
namespace net = boost::asio;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

constexpr size_t kResponseBodyLimit = 64u << 20;
constexpr size_t kMaxUrlLength = 2048;

// Whether text can go into a request line or a Host header as is: no CR/LF (header
// injection), no space, no other control or non-ASCII byte.
bool wire_safe(std::string_view text) {
  for (unsigned char c : text)
    if (c <= ' ' || c >= 0x7f) return false;
  return true;
}

// Runs one asynchronous step to completion; the stream's deadline bounds it.
template <typename Start>
error_code run_step(net::io_context& ioc, Start&& start) {
  error_code result = net::error::would_block;
  start([&result](error_code ec, auto&&...) { result = ec; });
  ioc.restart();
  ioc.run();
  return result;
}

}  // namespace

BaseUrl BaseUrl::parse(std::string_view url) {
  auto bad = [&](const std::string& why) {
    return ClientError("invalid URL " + printable(url) + ": " + why);
  };
  if (url.size() > kMaxUrlLength)
    throw bad("longer than " + std::to_string(kMaxUrlLength) + " characters");
  if (!wire_safe(url)) throw bad("it holds a space, a control character or a non-ASCII byte");
  constexpr std::string_view kScheme = "http://";
  if (url.substr(0, kScheme.size()) == kScheme) {
    url.remove_prefix(kScheme.size());
  } else if (url.find("://") != std::string_view::npos) {
    throw bad("only http:// is supported");
  }
  BaseUrl out;
  size_t slash = url.find('/');
  std::string_view authority = url.substr(0, slash);
  if (slash != std::string_view::npos) {
    out.prefix = std::string(url.substr(slash));
    while (!out.prefix.empty() && out.prefix.back() == '/') out.prefix.pop_back();
  }
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    size_t close = authority.find(']');
    if (close == std::string_view::npos) throw bad("unterminated [IPv6] host");
    out.host = std::string(authority.substr(1, close - 1));
    std::string_view rest = authority.substr(close + 1);
    if (!rest.empty()) {
      if (rest.front() != ':') throw bad("junk after ]");
      port_text = rest.substr(1);
      if (port_text.empty()) throw bad("empty port");
    }
  } else {
    size_t colon = authority.rfind(':');
    out.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) {
      port_text = authority.substr(colon + 1);
      if (port_text.empty()) throw bad("empty port");
    }
  }
  if (out.host.empty()) throw bad("no host");
  if (!port_text.empty()) {
    unsigned port = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc{} || end != port_text.data() + port_text.size() || port == 0 ||
        port > 65535)
      throw bad("port must be 1..65535");
    out.port = static_cast<uint16_t>(port);
  }
  return out;
}

std::string BaseUrl::to_string() const {
  bool v6 = host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port) + prefix;
}

nlohmann::json ClientResponse::json() const {
  try {
    return parse_json(body, kReplyJsonLimits);
  } catch (const JsonParseError& e) {
    throw ClientError("HTTP " + std::to_string(status) + " reply is not JSON: " + e.what());
  }
}

std::string ClientResponse::error_message() const {
  nlohmann::json parsed;
  try {
    parsed = parse_json(body, kReplyJsonLimits);
  } catch (const JsonParseError&) {
    // Not JSON (a proxy's HTML page, say): the raw body below is the best message.
  }
  if (parsed.is_object() && parsed.contains("error") && parsed["error"].is_string())
    return parsed["error"].get<std::string>();
  std::string trimmed = body;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back())))
    trimmed.pop_back();
  return trimmed.empty() ? "HTTP " + std::to_string(status) : trimmed;
}

HttpClient::HttpClient(std::string_view base_url, ClientOptions options)
    : base_(BaseUrl::parse(base_url)), options_(std::move(options)) {}

ClientResponse HttpClient::request(
    std::string_view method, std::string_view target, std::string body,
    std::string_view content_type,
    const std::vector<std::pair<std::string, std::string>>& headers) const {
  const std::string url = base_.to_string();
  std::string full_target = base_.prefix + std::string(target);
  if (full_target.empty()) full_target = "/";
  if (!wire_safe(full_target))
    throw ClientError("refusing to send request target " + printable(full_target) + " to " + url +
                      ": it holds a space, a control character or a non-ASCII byte");
  net::io_context ioc;
  beast::tcp_stream stream(ioc);
  stream.expires_after(options_.timeout);
  auto fail = [&](std::string_view what, const error_code& ec) -> ClientError {
    if (ec == beast::error::timeout)
      return ClientError(std::string(what) + " " + url + ": timed out after " +
                         std::to_string(options_.timeout.count()) + " ms");
    return ClientError(std::string(what) + " " + url + ": " + ec.message());
  };

  tcp::resolver resolver(ioc);
  error_code ec;
  auto endpoints = resolver.resolve(base_.host, std::to_string(base_.port), ec);
  if (ec) throw fail("cannot resolve", ec);
  ec = run_step(ioc, [&](auto handler) { stream.async_connect(endpoints, handler); });
  if (ec) throw fail("cannot connect to", ec);

  bhttp::request<bhttp::string_body> req;
  req.method_string(beast::string_view(method.data(), method.size()));
  req.target(full_target);
  req.version(11);
  bool v6 = base_.host.find(':') != std::string::npos;
  req.set(bhttp::field::host,
          (v6 ? "[" + base_.host + "]" : base_.host) + ":" + std::to_string(base_.port));
  req.set(bhttp::field::user_agent, "kohaku-overlay");
  req.set(bhttp::field::accept, "application/json");
  if (!options_.bearer_token.empty())
    req.set(bhttp::field::authorization, "Bearer " + options_.bearer_token);
  if (!content_type.empty())
    req.set(bhttp::field::content_type,
            beast::string_view(content_type.data(), content_type.size()));
  for (const auto& [name, value] : headers) req.set(name, value);
  req.keep_alive(false);
  req.body() = std::move(body);
  req.prepare_payload();

  ec = run_step(ioc, [&](auto handler) { bhttp::async_write(stream, req, handler); });
  // A server may answer early (413) and stop reading: its answer can still be read.
  bool write_failed = ec && ec != net::error::broken_pipe && ec != net::error::connection_reset;
  if (write_failed) throw fail("cannot send request to", ec);

  beast::flat_buffer buffer;
  bhttp::response_parser<bhttp::string_body> parser;
  parser.body_limit(kResponseBodyLimit);
  ec = run_step(ioc, [&](auto handler) { bhttp::async_read(stream, buffer, parser, handler); });
  if (ec) throw fail("no valid reply from", ec);

  auto& res = parser.get();
  ClientResponse out;
  out.status = static_cast<int>(res.result_int());
  out.body = std::move(res.body());
  for (const auto& field : res) {
    std::string name(field.name_string());
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    out.headers[name] = std::string(field.value());
  }
  error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  return out;
}

std::string with_query(std::string_view path,
                       const std::vector<std::pair<std::string, std::optional<std::string>>>& q) {
  std::string out(path);
  char sep = out.find('?') == std::string::npos ? '?' : '&';
  for (const auto& [key, value] : q) {
    if (!value) continue;
    out.push_back(sep);
    sep = '&';
    out += percent_encode(key);
    out.push_back('=');
    out += percent_encode(*value);
  }
  return out;
}

}  // namespace kohaku::http
