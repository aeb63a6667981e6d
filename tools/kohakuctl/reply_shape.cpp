#include "reply_shape.h"

#include <string>

#include "commands.h"

namespace kohakuctl {
namespace {

const char* name_of(JsonType t) {
  switch (t) {
    case JsonType::kString:
      return "a string";
    case JsonType::kNumber:
      return "a number";
    case JsonType::kBool:
      return "true or false";
    case JsonType::kArray:
      return "an array";
    case JsonType::kObject:
      return "an object";
  }
  return "?";
}

bool has_type(const nlohmann::json& v, JsonType t) {
  switch (t) {
    case JsonType::kString:
      return v.is_string();
    case JsonType::kNumber:
      return v.is_number();
    case JsonType::kBool:
      return v.is_boolean();
    case JsonType::kArray:
      return v.is_array();
    case JsonType::kObject:
      return v.is_object();
  }
  return false;
}

}  // namespace

const nlohmann::json& expect_reply(const nlohmann::json& j, std::string_view what,
                                   std::initializer_list<FieldShape> fields) {
  const std::string prefix = "unexpected reply to " + std::string(what) + ": ";
  if (!j.is_object())
    throw CommandError(prefix + "expected a JSON object, got " + std::string(j.type_name()));
  for (const auto& f : fields) {
    auto it = j.find(f.name);
    if (it == j.end()) throw CommandError(prefix + "field '" + f.name + "' is missing");
    if (it->is_null() && f.nullable) continue;
    if (!has_type(*it, f.type))
      throw CommandError(prefix + "field '" + f.name + "' is " + std::string(it->type_name()) +
                         ", expected " + name_of(f.type));
  }
  return j;
}

}  // namespace kohakuctl
