#pragma once
// KohakuRiver-style Python config files (host_config.py, runner_config.py) read against a schema.
//
// Each daemon declares its keys (name, type, default); a file and any number of `--set KEY=VALUE`
// overrides then produce typed values, each remembering where it was set so that a later check
// can point at the exact line. Accepted lines:
//   KEY: type = literal        KEY = literal        # comment        (blank)
//   import x / from x import y              (ignored: KohakuRiver templates start with one)
//   """docstring"""                         (ignored, also over several lines)
//   def config_gen(): + indented body       (ignored; a warning unless it only returns globals)
//   UNKNOWN_KEY = [ ... several lines ... ] (ignored with the "unknown key" warning)
// Literals: 'str' / "str" with \\ \' \" \n \t \r \0 escapes, ints (Python underscores, sign),
// floats, True/False, None (only for keys declared nullable). Anything computed is refused.
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/enum_names.h"

namespace kohaku {

// Every parse or validation failure; what() is "file:line: what is wrong" (or
// "--set KEY=VALUE: what is wrong" for an override).
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class ConfigType { kString, kInt, kBool, kFloat };
// The Python annotation names, which config_python also reads back.
inline constexpr EnumName<ConfigType> kConfigTypeNames[] = {{ConfigType::kString, "str"},
                                                            {ConfigType::kInt, "int"},
                                                            {ConfigType::kBool, "bool"},
                                                            {ConfigType::kFloat, "float"}};
std::string_view config_type_name(ConfigType type);

// std::monostate is Python's None.
using ConfigValue = std::variant<std::monostate, std::string, int64_t, bool, double>;
// Python repr of a value: 'text', 42, True, 1.5, None.
std::string config_value_repr(const ConfigValue& value);

struct ConfigKeySpec {
  std::string name;
  ConfigType type;
  ConfigValue default_value;
  bool nullable = false;  // accepts None (string keys only)
};

class ConfigSchema {
 public:
  ConfigSchema& add_string(std::string name, std::string default_value, bool nullable = false);
  // A string key whose default is None (the daemon computes it, e.g. RUNNER_HOSTNAME).
  ConfigSchema& add_optional_string(std::string name);
  ConfigSchema& add_int(std::string name, int64_t default_value);
  ConfigSchema& add_bool(std::string name, bool default_value);
  ConfigSchema& add_float(std::string name, double default_value);

  const ConfigKeySpec* find(std::string_view name) const;
  const std::vector<ConfigKeySpec>& keys() const { return keys_; }

 private:
  ConfigSchema& add(ConfigKeySpec spec);
  std::vector<ConfigKeySpec> keys_;
};

class ConfigFile {
 public:
  explicit ConfigFile(ConfigSchema schema);

  // Reads and applies a file; the path as given is the "file" of every message.
  void load(const std::string& path);
  // Applies config text; `source_name` stands for the file name in messages.
  void parse(std::string_view text, const std::string& source_name);
  // "KEY=VALUE" from --set. VALUE is a Python literal; for a string key a bare word (no quotes)
  // is taken as the string itself. Unknown keys are an error here: a typo on the command line
  // is never what the operator meant.
  void apply_override(std::string_view assignment);

  // Unknown keys, repeated keys, ignored Python: "file:line: ..." lines, in order.
  const std::vector<std::string>& warnings() const { return warnings_; }

  // Typed access; the key must be in the schema with that type (std::logic_error otherwise).
  const std::string& get_string(std::string_view key) const;  // None -> std::logic_error
  std::optional<std::string> get_optional_string(std::string_view key) const;
  int64_t get_int(std::string_view key) const;
  bool get_bool(std::string_view key) const;
  double get_float(std::string_view key) const;

  // True when a file line or an override set the key.
  bool is_set(std::string_view key) const;
  // Where the key's value came from: "file:line", "--set KEY=VALUE", or "default".
  const std::string& where(std::string_view key) const;
  // Python repr of the key's current value.
  std::string repr(std::string_view key) const;
  // Throws ConfigError "<where(key)>: KEY = <repr>: why" — for checks after loading.
  [[noreturn]] void fail(std::string_view key, std::string_view why) const;

 private:
  struct Entry {
    ConfigKeySpec spec;
    ConfigValue value;
    std::string where = "default";
  };
  const Entry& entry(std::string_view key, ConfigType type) const;
  const Entry& entry(std::string_view key) const;

  ConfigSchema schema_;
  std::map<std::string, Entry, std::less<>> entries_;
  std::vector<std::string> warnings_;
};

}  // namespace kohaku
