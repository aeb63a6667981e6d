#pragma once
// What kohakuctl expects a reply to look like. A reply of another shape (a proxy's page, an
// older or newer daemon, a hostile server) is an error naming the field, exit 1, never a
// half-printed success or a raw library type error.
#include <nlohmann/json.hpp>

#include <initializer_list>
#include <string_view>

#include "common/json_kind.h"

namespace kohakuctl {

using kohaku::JsonKind;

struct FieldShape {
  const char* name;
  JsonKind type;
  bool nullable = false;
};

// Throws CommandError "unexpected reply to WHAT: ..." unless j is an object whose listed fields
// exist with the listed types. Returns j.
const nlohmann::json& expect_reply(const nlohmann::json& j, std::string_view what,
                                   std::initializer_list<FieldShape> fields);

}  // namespace kohakuctl
