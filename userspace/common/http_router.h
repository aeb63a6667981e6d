#pragma once
// Transport-independent request routing for the daemons' JSON APIs: verb + path patterns with
// `{param}` segments, query strings, bearer-token checks and the mapping of every failure to a
// JSON `{"detail": ..., "error": ...}` body. Holds no Beast types so callers and tests compile
// fast; the HTTP server (http_server.h) only converts wire messages to Request/Response and back.
#include <nlohmann/json.hpp>

#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>
#include <vector>

#include "common/completion.h"
#include "common/domain_error.h"

namespace kohaku::http {

using Params = std::map<std::string, std::string>;

struct Request {
  std::string method;  // upper case, e.g. "GET"
  std::string target;  // as received: path plus optional "?query"
  std::string body;
  std::map<std::string, std::string> headers;  // names lower-cased

  // Filled by Router::handle before the handler runs.
  std::string path;    // percent-decoded path of target
  Params query;        // percent-decoded query parameters; a repeated key keeps the last value
  Params path_params;  // values of the pattern's {param} segments, percent-decoded

  std::string header(std::string_view lower_name) const;
  // The body as JSON; throws ApiError(kInvalidRequest, 422) when it is not valid JSON. An empty
  // body is `{}` so routes whose fields are all optional accept a bare POST. Parsed once
  // (Router::handle parses every non-empty body, so a malformed one is a 422 also on routes that
  // ignore the body).
  const nlohmann::json& json() const;

 private:
  mutable std::optional<nlohmann::json> parsed_body_;
};

struct Response {
  int status = 200;
  nlohmann::json body = nlohmann::json::object();
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers, e.g. Allow

  static Response error(int status, std::string_view message);
};

// Whether a route needs the bearer token (when one is configured). kOpen: a route that changes
// state but that the operator opened to callers without a token (the host's runner routes with
// ALLOW_RUNNERS_WITHOUT_TOKEN, for KohakuRiver's runners, which send none).
enum class Access { kRead, kMutating, kOpen };

// A plain handler: returns the body of a 200 or throws. It may block (a call to a runner), so
// the server runs it on its handler pool.
using Handler = std::function<nlohmann::json(const Request&)>;
// How a deferred handler answers, from any thread, exactly once: with the body of a 200, or with
// what a plain handler would have thrown (error first, as Asio's completion handlers take it).
using Reply = JsonCompletion;
// A deferred handler answers later through its Reply: for work that waits for something else to
// finish (a journal flush) without holding a thread meanwhile. It must not block: it runs on the
// thread that read the request (an I/O thread). It may reply before it returns; what it throws
// before replying is answered as a plain handler's exception.
using DeferredHandler = std::function<void(const Request&, Reply reply)>;

class Router {
 public:
  // pattern: "/api/heartbeat/{hostname}"; a {name} segment matches one non-empty path segment.
  // Throws std::invalid_argument for a malformed pattern or a duplicate (method, pattern).
  void add(std::string method, std::string_view pattern, Access access, Handler handler);
  void get(std::string_view pattern, Handler h) {
    add("GET", pattern, Access::kRead, std::move(h));
  }
  void post(std::string_view pattern, Handler h) {
    add("POST", pattern, Access::kMutating, std::move(h));
  }
  void put(std::string_view pattern, Handler h) {
    add("PUT", pattern, Access::kMutating, std::move(h));
  }
  void del(std::string_view pattern, Handler h) {
    add("DELETE", pattern, Access::kMutating, std::move(h));
  }
  void add_deferred(std::string method, std::string_view pattern, Access access,
                    DeferredHandler handler);
  void post_deferred(std::string_view pattern, DeferredHandler h) {
    add_deferred("POST", pattern, Access::kMutating, std::move(h));
  }

  // Empty token: no authentication. Otherwise mutating routes need "Authorization: Bearer <t>".
  void set_bearer_token(std::string token);
  // Mutating routes need "Authorization: Bearer <t>" with check(t) true; for a daemon that
  // accepts more than one secret (the runner: the cluster token or its own credential).
  // Unset (the default): no authentication.
  using BearerCheck = std::function<bool(std::string_view presented)>;
  void set_bearer_check(BearerCheck check) { bearer_check_ = std::move(check); }
  // Appended to a 401's message: where the caller finds the token.
  void set_auth_hint(std::string hint) { auth_hint_ = std::move(hint); }

  // Routes, authenticates, runs the handler on this thread (for a deferred one: waits for its
  // reply). Never throws: unknown path 404, known path with
  // another method 405 (+Allow), bad query encoding 400, malformed JSON 422, missing/wrong token
  // 401, ApiError its status, DomainError its kind's status (status_for), anything else 500
  // (logged with the request line).
  Response handle(Request& request) const;

  // Called exactly once with the answer, from whichever thread produced it.
  using Respond = std::function<void(Response)>;
  // Runs a plain handler's work where it may block (the server: its handler pool).
  using RunBlocking = std::function<void(std::function<void()> work)>;
  // handle() without waiting: refusals are answered at once, a plain handler runs through
  // run_blocking, a deferred one right here and answers when its Reply comes. request is kept
  // alive until then. handle() above is this, waiting for the answer.
  void handle(std::shared_ptr<Request> request, Respond respond,
              const RunBlocking& run_blocking) const;

 private:
  struct Segment {
    std::string text;
    bool is_param = false;
  };
  struct Route {
    std::string method;
    std::string pattern;
    std::vector<Segment> segments;
    Access access;
    Handler handler;  // one of the two is set
    DeferredHandler deferred;
  };

  static std::vector<std::string> split_path(std::string_view path);
  static std::optional<int> match(const Route& route, const std::vector<std::string>& parts,
                                  Params* params);
  bool authorized(const Request& request) const;
  void add_route(std::string method, std::string_view pattern, Access access, Handler handler,
                 DeferredHandler deferred);
  // The route request goes to (path and query decoded into it), or the refusal to answer.
  std::variant<const Route*, Response> route_for(Request& request) const;

  std::vector<Route> routes_;
  BearerCheck bearer_check_;
  std::string auth_hint_;
};

// The status a DomainError of this kind is answered with: malformed 422 (FastAPI's request
// validation status, which KohakuRiver's clients see), invalid 400, forbidden 403, not found 404,
// conflict 409, precondition 412, unavailable 503, a peer's failure 502, internal 500.
int status_for(ErrorKind kind);

// "%41+b" -> "A b" (plus_as_space for query strings). nullopt on a truncated or non-hex escape.
std::optional<std::string> percent_decode(std::string_view text, bool plus_as_space);
// Encodes everything but RFC 3986 unreserved characters.
std::string percent_encode(std::string_view text);
// "a=1&b=x%20y" -> {a:1, b:"x y"}; nullopt on a bad escape. A key without '=' maps to "".
std::optional<Params> parse_query(std::string_view query);
// {a:1, b:"x y"} -> "a=1&b=x%20y" (no leading '?').
std::string build_query(const Params& params);

// Length-independent-time comparison for secrets.
bool constant_time_equal(std::string_view a, std::string_view b);

}  // namespace kohaku::http
