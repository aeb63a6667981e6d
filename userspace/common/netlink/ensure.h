#pragma once
// What an ensure_* call did to bring a kernel object to its wanted state.
#include <string_view>

#include "common/enum_names.h"

namespace kohaku::netlink {

enum class EnsureAction {
  kKept,       // already as wanted; untouched
  kCreated,    // was missing
  kRepaired,   // changed in place (MTU, state, master, extra addresses...)
  kRecreated,  // deleted and created again: attributes the kernel cannot change in place differed
};

inline constexpr EnumName<EnsureAction> kEnsureActionNames[] = {
    {EnsureAction::kKept, "kept"},
    {EnsureAction::kCreated, "created"},
    {EnsureAction::kRepaired, "repaired"},
    {EnsureAction::kRecreated, "recreated"}};

constexpr std::string_view to_string(EnsureAction a) {
  return enum_name(kEnsureActionNames, a);
}

}  // namespace kohaku::netlink
