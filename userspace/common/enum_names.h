#pragma once
// The name of an enum value, and the value of a name, from one constexpr table of {value, name}
// pairs: the one way to spell "what this enum value is called" (log levels, config types, device
// actions, express modes, runner states, deny-rule protocols). One table serves both directions,
// so a name that is printed and a name that is parsed cannot drift apart. What a switch gave and
// a table does not: -Wswitch's warning for a new enum value; such a value reads as "?" until its
// table has it, so add the row with the value.
#include <cstddef>
#include <optional>
#include <string_view>

namespace kohaku {

template <class E>
struct EnumName {
  E value;
  std::string_view name;
};

// nullopt for a value the table lacks.
template <class E, size_t N>
constexpr std::optional<std::string_view> find_enum_name(const EnumName<E> (&table)[N], E value) {
  for (const auto& entry : table)
    if (entry.value == value) return entry.name;
  return std::nullopt;
}

// "?" for a value the table lacks (an integer cast into the enum).
template <class E, size_t N>
constexpr std::string_view enum_name(const EnumName<E> (&table)[N], E value) {
  return find_enum_name(table, value).value_or("?");
}

// nullopt for a name the table lacks; names compare exactly (case matters).
template <class E, size_t N>
constexpr std::optional<E> enum_value(const EnumName<E> (&table)[N], std::string_view name) {
  for (const auto& entry : table)
    if (entry.name == name) return entry.value;
  return std::nullopt;
}

}  // namespace kohaku
