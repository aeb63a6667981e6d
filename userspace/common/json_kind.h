#pragma once
// The JSON types a field may be required to have, named as the error messages of the host's
// request checks and kohakuctl's reply checks say them ("'x' must be an integer", "field 'x' is
// string, expected a number"): one list of kinds, one test, one wording.
#include <nlohmann/json.hpp>

#include <string_view>

namespace kohaku {

enum class JsonKind { kInteger, kNumber, kBool, kString, kObject, kArray };

// "an integer", "a number", "true or false", "a string", "an object", "an array".
std::string_view json_kind_name(JsonKind kind);
// kNumber admits integers; kInteger only integers (signed or unsigned).
bool has_json_kind(const nlohmann::json& value, JsonKind kind);

}  // namespace kohaku
