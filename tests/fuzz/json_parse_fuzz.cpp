// Fuzz target: parse_json, the one JSON parser for requests, replies and state files. Any input
// is refused with JsonParseError or gives a value within the depth limit that can be dumped
// (which recurses per level: the crash parse_json exists to prevent) and parsed back equal.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/json_parse.h"

namespace {

size_t depth_of(const nlohmann::json& j) {
  size_t deepest = 0;
  if (j.is_structured())
    for (const auto& v : j) deepest = std::max(deepest, depth_of(v));
  return (j.is_structured() ? 1 : 0) + deepest;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  nlohmann::json j;
  try {
    j = kohaku::parse_json(text, kohaku::kRequestJsonLimits);
  } catch (const kohaku::JsonParseError&) {
    return 0;
  }
  if (depth_of(j) > kohaku::kRequestJsonLimits.max_depth) std::abort();
  std::string dumped = j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  try {
    auto back = kohaku::parse_json(dumped, kohaku::kFileJsonLimits);
    if (back.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) != dumped) std::abort();
  } catch (const kohaku::JsonParseError&) {
    std::abort();  // what the parser accepted and the dumper wrote must parse again
  }
  return 0;
}
