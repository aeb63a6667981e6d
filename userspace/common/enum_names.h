#pragma once
// The name of an enum value, and the value of a name, from one constexpr table of {value, name}
// pairs: the one way to spell "what this enum value is called" (log levels, config types, device
// actions, express modes, runner states...). One table serves both directions, so a name that is
// printed and a name that is parsed cannot drift apart, and a value added to the enum but not to
// its table shows as "?" rather than as a compiler-silenced gap in a switch.
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
