#include "http_client.h"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <mutex>
#include <optional>

#include "common/http_beast.h"
#include "common/http_router.h"
#include "common/json_parse.h"
#include "common/wire/names.h"

namespace kohaku::http {
namespace {

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
  // FastAPI's field (a KohakuRiver host, or anything behind one); ours carry both.
  if (parsed.is_object() && parsed.contains("detail") && parsed["detail"].is_string())
    return parsed["detail"].get<std::string>();
  std::string trimmed = body;
  while (!trimmed.empty() && std::isspace(static_cast<unsigned char>(trimmed.back())))
    trimmed.pop_back();
  return trimmed.empty() ? "HTTP " + std::to_string(status) : trimmed;
}

struct HttpClient::Connection {
  std::mutex mu;  // one request at a time on the connection
  net::io_context ioc;
  std::optional<beast::tcp_stream> stream;
};

HttpClient::HttpClient(std::string_view base_url, ClientOptions options)
    : base_(BaseUrl::parse(base_url)), options_(std::move(options)) {
  if (options_.keep_alive) connection_ = std::make_shared<Connection>();
}

namespace {

struct Exchange {
  error_code ec;
  const char* failed_step = nullptr;  // "cannot connect to", "cannot send request to", ...
  bool nothing_read = false;          // the peer closed before a byte of the reply
};

ClientError transport_error(const Exchange& x, const std::string& url,
                            std::chrono::milliseconds timeout) {
  if (x.ec == beast::error::timeout)
    return ClientError(std::string(x.failed_step) + " " + url + ": timed out after " +
                       std::to_string(timeout.count()) + " ms");
  return ClientError(std::string(x.failed_step) + " " + url + ": " + x.ec.message());
}

Exchange connect(net::io_context& ioc, beast::tcp_stream& stream, const BaseUrl& base) {
  Exchange x;
  tcp::resolver resolver(ioc);
  auto endpoints = resolver.resolve(base.host, std::to_string(base.port), x.ec);
  if (x.ec) {
    x.failed_step = "cannot resolve";
    return x;
  }
  x.ec = run_step(ioc, [&](auto handler) { stream.async_connect(endpoints, handler); });
  if (x.ec) x.failed_step = "cannot connect to";
  return x;
}

// Writes the request and reads the reply into `parser`.
Exchange send_and_read(net::io_context& ioc, beast::tcp_stream& stream,
                       bhttp::request<bhttp::string_body>& req,
                       bhttp::response_parser<bhttp::string_body>& parser) {
  Exchange x;
  x.ec = run_step(ioc, [&](auto handler) { bhttp::async_write(stream, req, handler); });
  // A server may answer early (413) and stop reading: its answer can still be read.
  if (x.ec && x.ec != net::error::broken_pipe && x.ec != net::error::connection_reset) {
    x.failed_step = "cannot send request to";
    return x;
  }
  beast::flat_buffer buffer;
  x.ec = run_step(ioc, [&](auto handler) { bhttp::async_read(stream, buffer, parser, handler); });
  if (x.ec) {
    x.failed_step = "no valid reply from";
    x.nothing_read = buffer.size() == 0 && !parser.got_some() &&
                     (x.ec == bhttp::error::end_of_stream || x.ec == net::error::eof ||
                      x.ec == net::error::connection_reset);
  }
  return x;
}

}  // namespace

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
  req.keep_alive(connection_ != nullptr);
  req.body() = std::move(body);
  req.prepare_payload();

  std::optional<bhttp::response_parser<bhttp::string_body>> parser;
  auto new_parser = [&parser] {
    parser.emplace();
    parser->body_limit(kResponseBodyLimit);
  };
  new_parser();
  if (connection_ == nullptr) {
    net::io_context ioc;
    beast::tcp_stream stream(ioc);
    stream.expires_after(options_.timeout);
    Exchange x = connect(ioc, stream, base_);
    if (!x.ec) x = send_and_read(ioc, stream, req, *parser);
    if (x.ec) throw transport_error(x, url, options_.timeout);
    error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
  } else {
    Connection& c = *connection_;
    std::lock_guard lock(c.mu);
    const bool reused = c.stream.has_value();
    auto fresh = [&]() -> Exchange {
      c.stream.emplace(c.ioc);
      c.stream->expires_after(options_.timeout);
      return connect(c.ioc, *c.stream, base_);
    };
    Exchange x = reused ? Exchange{} : fresh();
    if (!x.ec) {
      c.stream->expires_after(options_.timeout);
      x = send_and_read(c.ioc, *c.stream, req, *parser);
    }
    // A kept connection the server closed while it was idle (it closes idle ones after its
    // timeout) ends before a byte of the reply: sent once more on a new connection, as HTTP
    // clients with a pool do. Any other failure is reported.
    if (x.ec && reused && x.nothing_read) {
      new_parser();
      x = fresh();
      if (!x.ec) x = send_and_read(c.ioc, *c.stream, req, *parser);
    }
    if (x.ec) {
      c.stream.reset();
      throw transport_error(x, url, options_.timeout);
    }
    if (!parser->get().keep_alive()) c.stream.reset();
  }

  auto& res = parser->get();
  ClientResponse out;
  out.status = static_cast<int>(res.result_int());
  out.body = std::move(res.body());
  out.headers = lower_cased_fields(res);
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
