#pragma once
// What an ensure_* call did to bring a kernel object to its wanted state.
#include <string_view>

namespace kohaku::netlink {

enum class EnsureAction {
  kKept,       // already as wanted; untouched
  kCreated,    // was missing
  kRepaired,   // changed in place (MTU, state, master, extra addresses...)
  kRecreated,  // deleted and created again: attributes the kernel cannot change in place differed
};

constexpr std::string_view to_string(EnsureAction a) {
  switch (a) {
    case EnsureAction::kKept:
      return "kept";
    case EnsureAction::kCreated:
      return "created";
    case EnsureAction::kRepaired:
      return "repaired";
    case EnsureAction::kRecreated:
      return "recreated";
  }
  return "?";
}

}  // namespace kohaku::netlink
