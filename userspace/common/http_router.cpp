#include "http_router.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <future>
#include <stdexcept>

#include "api_error.h"
#include "json_parse.h"
#include "log.h"

namespace kohaku::http {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::string request_line(const Request& r) {
  return r.method + " " + r.target;
}

// What a handler's exception is answered with.
Response error_response(const Request& request, std::exception_ptr error) {
  try {
    std::rethrow_exception(std::move(error));
  } catch (const ApiError& e) {
    return Response::error(e.status(), e.what());
  } catch (const DomainError& e) {
    return Response::error(status_for(e.kind()), e.what());
  } catch (const nlohmann::json::type_error& e) {
    // A field of the wrong JSON type that a handler read without checking: the client's fault.
    log::warn("http", request_line(request) + ": " + e.what());
    return Response::error(kInvalidRequest, std::string("invalid field type: ") + e.what());
  } catch (const std::exception& e) {
    log::error("http", request_line(request) + " failed: " + e.what());
    return Response::error(500, "internal error");
  } catch (...) {
    log::error("http", request_line(request) + " failed with a non-standard exception");
    return Response::error(500, "internal error");
  }
}

}  // namespace

std::optional<std::string> percent_decode(std::string_view text, bool plus_as_space) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '%') {
      if (i + 2 >= text.size()) return std::nullopt;
      int hi = hex_value(text[i + 1]);
      int lo = hex_value(text[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out.push_back(static_cast<char>(hi * 16 + lo));
      i += 2;
    } else if (c == '+' && plus_as_space) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string percent_encode(std::string_view text) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : text) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                      c == '-' || c == '.' || c == '_' || c == '~';
    if (unreserved) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 0xf]);
    }
  }
  return out;
}

std::optional<Params> parse_query(std::string_view query) {
  Params params;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view{} : query.substr(amp + 1);
    if (pair.empty()) continue;
    size_t eq = pair.find('=');
    auto key = percent_decode(pair.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? "" : pair.substr(eq + 1), true);
    if (!key || !value) return std::nullopt;
    params[*key] = *value;
  }
  return params;
}

std::string build_query(const Params& params) {
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out.push_back('&');
    out += percent_encode(k);
    out.push_back('=');
    out += percent_encode(v);
  }
  return out;
}

bool constant_time_equal(std::string_view a, std::string_view b) {
  // Walk the longer input fully whatever the contents so timing reveals at most the lengths.
  size_t n = std::max(a.size(), b.size());
  unsigned diff = a.size() == b.size() ? 0u : 1u;
  for (size_t i = 0; i < n; ++i) {
    unsigned char x = i < a.size() ? static_cast<unsigned char>(a[i]) : 0;
    unsigned char y = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned>(x ^ y);
  }
  return diff == 0;
}

std::string Request::header(std::string_view lower_name) const {
  auto it = headers.find(std::string(lower_name));
  return it == headers.end() ? std::string{} : it->second;
}

const nlohmann::json& Request::json() const {
  if (parsed_body_) return *parsed_body_;
  if (body.find_first_not_of(" \t\r\n") == std::string::npos) {
    parsed_body_ = nlohmann::json::object();
    return *parsed_body_;
  }
  try {
    parsed_body_ = parse_json(body, kRequestJsonLimits);
  } catch (const JsonParseError& e) {
    throw ApiError(kInvalidRequest, std::string("malformed JSON body: ") + e.what());
  }
  return *parsed_body_;
}

Response Response::error(int status, std::string_view message) {
  Response r;
  r.status = status;
  // `detail` is what FastAPI (KohakuRiver's host) and so its clients use; `error` is what this
  // project's clients and scripts have read so far. Both, always, with the same text.
  r.body = nlohmann::json{{"detail", std::string(message)}, {"error", std::string(message)}};
  return r;
}

std::vector<std::string> Router::split_path(std::string_view path) {
  std::vector<std::string> parts;
  // "/a/b" -> {"a","b"}; "/" -> {}; "/a/" -> {"a",""} so a trailing slash is a different path.
  if (!path.empty() && path.front() == '/') path.remove_prefix(1);
  if (path.empty()) return parts;
  while (true) {
    size_t slash = path.find('/');
    parts.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

void Router::add(std::string method, std::string_view pattern, Access access, Handler handler) {
  add_route(std::move(method), pattern, access, std::move(handler), nullptr);
}

void Router::add_deferred(std::string method, std::string_view pattern, Access access,
                          DeferredHandler handler) {
  add_route(std::move(method), pattern, access, nullptr, std::move(handler));
}

void Router::add_route(std::string method, std::string_view pattern, Access access, Handler handler,
                       DeferredHandler deferred) {
  if (pattern.empty() || pattern.front() != '/')
    throw std::invalid_argument("route pattern must start with '/': " + std::string(pattern));
  Route route{method, std::string(pattern), {}, access, std::move(handler), std::move(deferred)};
  for (auto& part : split_path(pattern)) {
    Segment seg;
    if (part.size() >= 2 && part.front() == '{' && part.back() == '}') {
      seg.text = part.substr(1, part.size() - 2);
      seg.is_param = true;
    } else if (part.find_first_of("{}") != std::string::npos) {
      throw std::invalid_argument("route pattern has a malformed {param}: " + std::string(pattern));
    } else {
      seg.text = part;
    }
    route.segments.push_back(std::move(seg));
  }
  for (const auto& r : routes_)
    if (r.method == route.method && r.pattern == route.pattern)
      throw std::invalid_argument("duplicate route " + method + " " + std::string(pattern));
  routes_.push_back(std::move(route));
}

// Returns the number of literal segments matched (more = more specific), nullopt if no match.
std::optional<int> Router::match(const Route& route, const std::vector<std::string>& parts,
                                 Params* params) {
  if (route.segments.size() != parts.size()) return std::nullopt;
  int literal = 0;
  Params found;
  for (size_t i = 0; i < parts.size(); ++i) {
    const Segment& seg = route.segments[i];
    if (seg.is_param) {
      if (parts[i].empty()) return std::nullopt;
      auto decoded = percent_decode(parts[i], false);
      if (!decoded) return std::nullopt;
      found[seg.text] = *decoded;
    } else {
      if (parts[i] != seg.text) return std::nullopt;
      ++literal;
    }
  }
  if (params) *params = std::move(found);
  return literal;
}

bool Router::authorized(const Request& request) const {
  std::string auth = request.header("authorization");
  constexpr std::string_view kScheme = "bearer ";
  if (auth.size() < kScheme.size()) return false;
  for (size_t i = 0; i < kScheme.size(); ++i)
    if (std::tolower(static_cast<unsigned char>(auth[i])) != kScheme[i]) return false;
  std::string_view presented = std::string_view(auth).substr(kScheme.size());
  while (!presented.empty() && presented.front() == ' ') presented.remove_prefix(1);
  while (!presented.empty() && presented.back() == ' ') presented.remove_suffix(1);
  return bearer_check_(presented);
}

void Router::set_bearer_token(std::string token) {
  if (token.empty()) {
    bearer_check_ = nullptr;
    return;
  }
  bearer_check_ = [token = std::move(token)](std::string_view presented) {
    return constant_time_equal(presented, token);
  };
}

std::variant<const Router::Route*, Response> Router::route_for(Request& request) const {
  std::string_view target = request.target;
  // Only origin-form ("/path?query"): "healthz", "*" or an absolute URL are not ours to serve.
  if (target.empty() || target.front() != '/')
    return Response::error(400, "request target must be an absolute path starting with '/'");
  size_t qmark = target.find('?');
  std::string_view raw_path = target.substr(0, qmark);
  auto decoded_path = percent_decode(raw_path, false);
  if (!decoded_path) return Response::error(400, "malformed percent-encoding in request path");
  request.path = *decoded_path;
  if (qmark != std::string_view::npos) {
    auto query = parse_query(target.substr(qmark + 1));
    if (!query) return Response::error(400, "malformed percent-encoding in query string");
    request.query = std::move(*query);
  }

  auto parts = split_path(raw_path);
  const Route* best = nullptr;
  int best_score = -1;
  std::vector<std::string> allowed;
  for (const auto& route : routes_) {
    auto score = match(route, parts, nullptr);
    if (!score) continue;
    if (route.method != request.method) {
      if (std::find(allowed.begin(), allowed.end(), route.method) == allowed.end())
        allowed.push_back(route.method);
      continue;
    }
    if (*score > best_score) {
      best = &route;
      best_score = *score;
    }
  }
  if (!best) {
    if (allowed.empty()) return Response::error(404, "no route for " + request.path);
    std::string allow;
    for (const auto& m : allowed) allow += (allow.empty() ? "" : ", ") + m;
    auto r = Response::error(405, "method " + request.method + " not allowed on " + request.path +
                                      " (allowed: " + allow + ")");
    r.headers.emplace_back("Allow", allow);
    return r;
  }
  match(*best, parts, &request.path_params);

  if (best->access == Access::kMutating && bearer_check_ && !authorized(request)) {
    std::string message = request.header("authorization").empty()
                              ? "missing bearer token (Authorization: Bearer <token>)"
                              : "invalid bearer token";
    if (!auth_hint_.empty()) message += "; " + auth_hint_;
    auto r = Response::error(401, message);
    r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
  }

  return best;
}

Response Router::handle(Request& request) const {
  // Non-owning: the caller's request outlives the wait below.
  std::shared_ptr<Request> borrowed(&request, [](Request*) {});
  std::promise<Response> answer;
  auto result = answer.get_future();
  handle(
      borrowed, [&answer](Response r) { answer.set_value(std::move(r)); },
      [](std::function<void()> work) { work(); });
  return result.get();
}

void Router::handle(std::shared_ptr<Request> request, Respond respond,
                    const RunBlocking& run_blocking) const {
  auto routed = route_for(*request);
  if (auto* refusal = std::get_if<Response>(&routed)) return respond(std::move(*refusal));
  const Route* route = std::get<const Route*>(routed);
  if (!route->deferred) {
    run_blocking([route, request = std::move(request), respond = std::move(respond)] {
      Response r;
      try {
        // A body that is there must be JSON, also where the route reads nothing from it: a
        // truncated request is a client bug to report, not to answer 200.
        request->json();
        r.body = route->handler(*request);
      } catch (...) {
        r = error_response(*request, std::current_exception());
      }
      respond(std::move(r));
    });
    return;
  }
  // Whichever comes first answers: the reply, or an exception thrown before it.
  auto answered = std::make_shared<std::atomic<bool>>(false);
  Reply reply = [request, respond, answered](std::exception_ptr error, nlohmann::json body) {
    if (answered->exchange(true)) return;
    Response r;
    if (error)
      r = error_response(*request, error);
    else
      r.body = std::move(body);
    respond(std::move(r));
  };
  try {
    request->json();
    route->deferred(*request, std::move(reply));
  } catch (...) {
    if (answered->exchange(true)) {
      log::error("http", request_line(*request) + ": a deferred handler threw after it replied");
      return;
    }
    respond(error_response(*request, std::current_exception()));
  }
}

int status_for(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kMalformed:
      return kInvalidRequest;
    case ErrorKind::kInvalid:
      return 400;
    case ErrorKind::kForbidden:
      return 403;
    case ErrorKind::kNotFound:
      return 404;
    case ErrorKind::kConflict:
      return 409;
    case ErrorKind::kPreconditionFailed:
      return 412;
    case ErrorKind::kUnavailable:
      return 503;
    case ErrorKind::kUpstreamFailed:
      return 502;
    case ErrorKind::kInternal:
      return 500;
  }
  return 500;
}

}  // namespace kohaku::http
