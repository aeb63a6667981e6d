#include "common/json_kind.h"

namespace kohaku {

namespace {

// One row a kind: its name in messages and nlohmann's test for it.
struct KindRow {
  JsonKind kind;
  std::string_view name;
  bool (nlohmann::json::*test)() const noexcept;
};

constexpr KindRow kKinds[] = {
    {JsonKind::kInteger, "an integer", &nlohmann::json::is_number_integer},
    {JsonKind::kNumber, "a number", &nlohmann::json::is_number},
    {JsonKind::kBool, "true or false", &nlohmann::json::is_boolean},
    {JsonKind::kString, "a string", &nlohmann::json::is_string},
    {JsonKind::kObject, "an object", &nlohmann::json::is_object},
    {JsonKind::kArray, "an array", &nlohmann::json::is_array},
};

const KindRow* row_of(JsonKind kind) {
  for (const auto& row : kKinds)
    if (row.kind == kind) return &row;
  return nullptr;
}

}  // namespace

std::string_view json_kind_name(JsonKind kind) {
  const KindRow* row = row_of(kind);
  return row ? row->name : "?";
}

bool has_json_kind(const nlohmann::json& value, JsonKind kind) {
  const KindRow* row = row_of(kind);
  return row && (value.*(row->test))();
}

}  // namespace kohaku
