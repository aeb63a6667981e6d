#pragma once
// The one JSON parser of the daemons and the CLI: HTTP request bodies, HTTP replies and the state
// files all go through parse_json(). nlohmann's parser itself is iterative, but copying, dumping
// and comparing a value recurse once per nesting level, so a document nested 50,000 levels deep
// (100 KB of '[') overflows the stack later, far from the parser. parse_json() refuses such a
// document before anything is built, with a bounded depth and size, and turns every library
// failure (syntax, a number like 1e400 that does not fit a double) into one exception type.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <cstdint>
#include <limits>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>

namespace kohaku {

struct JsonLimits {
  size_t max_depth;  // arrays/objects nested deeper than this are refused
  size_t max_bytes;  // longer documents are refused
};

// Request bodies a client sends: the deepest legitimate one (a KohakuRiver registration with its
// numa_topology and gpu_info) nests 4 levels.
inline constexpr JsonLimits kRequestJsonLimits{32, 1u << 20};
// Replies embed stored request fields a few levels down (/api/nodes lists registration details).
inline constexpr JsonLimits kReplyJsonLimits{64, 64u << 20};
// Files the daemons wrote themselves (snapshots embed registration details 4 levels down).
inline constexpr JsonLimits kFileJsonLimits{128, 1u << 30};

// Invalid JSON, too deep, too large or a number out of range. what() says which and where.
class JsonParseError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Throws JsonParseError. Never builds a value deeper than limits.max_depth.
nlohmann::json parse_json(std::string_view text, const JsonLimits& limits);
// The same, for callers that only need to know whether the text was acceptable JSON: nullopt
// instead of an exception.
std::optional<nlohmann::json> try_parse_json(std::string_view text, const JsonLimits& limits);

// j as the integer type T. It must be a JSON integer that fits T: nlohmann's get<T>() converts
// whatever number it finds, wrapping a negative or too large integer and, for a float out of
// T's range, with undefined behaviour (fuzz.runner_replies found it with a VNI of 5e95).
// Throws std::invalid_argument naming `what`.
template <class T>
T json_integer(const nlohmann::json& j, std::string_view what) {
  static_assert(std::is_integral_v<T>);
  using limits = std::numeric_limits<T>;
  bool fits = false;
  if (j.is_number_unsigned())
    fits = j.get<uint64_t>() <= static_cast<uint64_t>(limits::max());
  else if (j.is_number_integer())
    fits = j.get<int64_t>() >= static_cast<int64_t>(limits::min()) &&
           (j.get<int64_t>() < 0 ||
            static_cast<uint64_t>(j.get<int64_t>()) <= static_cast<uint64_t>(limits::max()));
  if (!fits)
    throw std::invalid_argument("'" + std::string(what) + "' must be an integer in " +
                                std::to_string(limits::min()) + ".." +
                                std::to_string(limits::max()));
  return j.is_number_unsigned() ? static_cast<T>(j.get<uint64_t>())
                                : static_cast<T>(j.get<int64_t>());
}

// The field `key` of object j as T (see json_integer), or `fallback` when it is absent.
template <class T>
T json_integer_or(const nlohmann::json& j, const char* key, T fallback) {
  auto it = j.find(key);
  return it == j.end() ? fallback : json_integer<T>(*it, key);
}

// The field `key` of object j as T; std::invalid_argument when it is absent.
template <class T>
T json_integer_at(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) throw std::invalid_argument("'" + std::string(key) + "' is missing");
  return json_integer<T>(*it, key);
}

}  // namespace kohaku
