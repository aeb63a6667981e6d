#include "reply_shape.h"

#include <string>

#include "commands.h"

namespace kohakuctl {

const nlohmann::json& expect_reply(const nlohmann::json& j, std::string_view what,
                                   std::initializer_list<FieldShape> fields) {
  const std::string prefix = "unexpected reply to " + std::string(what) + ": ";
  if (!j.is_object())
    throw CommandError(prefix + "expected a JSON object, got " + std::string(j.type_name()));
  for (const auto& f : fields) {
    auto it = j.find(f.name);
    if (it == j.end()) throw CommandError(prefix + "field '" + f.name + "' is missing");
    if (it->is_null() && f.nullable) continue;
    if (!kohaku::has_json_kind(*it, f.type))
      throw CommandError(prefix + "field '" + f.name + "' is " + std::string(it->type_name()) +
                         ", expected " + std::string(kohaku::json_kind_name(f.type)));
  }
  return j;
}

}  // namespace kohakuctl
