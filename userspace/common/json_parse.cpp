#include "json_parse.h"

#include <string>

namespace kohaku {
namespace {

// Depth of the deepest array/object, stopping as soon as it exceeds `limit`. Brackets inside
// strings do not count; a malformed document is left for the real parser to describe.
bool deeper_than(std::string_view text, size_t limit, size_t* offset) {
  size_t depth = 0;
  bool in_string = false, escaped = false;
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (in_string) {
      if (escaped)
        escaped = false;
      else if (c == '\\')
        escaped = true;
      else if (c == '"')
        in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
    } else if (c == '[' || c == '{') {
      if (++depth > limit) {
        *offset = i;
        return true;
      }
    } else if ((c == ']' || c == '}') && depth > 0) {
      --depth;
    }
  }
  return false;
}

}  // namespace

nlohmann::json parse_json(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes)
    throw JsonParseError("JSON document of " + std::to_string(text.size()) +
                         " bytes exceeds the limit of " + std::to_string(limits.max_bytes));
  size_t offset = 0;
  if (deeper_than(text, limits.max_depth, &offset))
    throw JsonParseError("JSON nested deeper than " + std::to_string(limits.max_depth) +
                         " levels (at byte " + std::to_string(offset) + ")");
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // parse_error for syntax, out_of_range for numbers such as 1e400.
    throw JsonParseError(e.what());
  }
}

std::optional<nlohmann::json> try_parse_json(std::string_view text, const JsonLimits& limits) {
  try {
    return parse_json(text, limits);
  } catch (const JsonParseError&) {
    return std::nullopt;
  }
}

}  // namespace kohaku
