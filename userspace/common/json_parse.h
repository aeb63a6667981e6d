#pragma once
// The one JSON parser of the daemons and the CLI: HTTP request bodies, HTTP replies and the state
// files all go through parse_json(). nlohmann's parser itself is iterative, but copying, dumping
// and comparing a value recurse once per nesting level, so a document nested 50,000 levels deep
// (100 KB of '[') overflows the stack later, far from the parser. parse_json() refuses such a
// document before anything is built, with a bounded depth and size, and turns every library
// failure (syntax, a number like 1e400 that does not fit a double) into one exception type.
#include <nlohmann/json.hpp>

#include <cstddef>
#include <optional>
#include <stdexcept>
#include <string_view>

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

}  // namespace kohaku
