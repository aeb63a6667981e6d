#include "config_file.h"

#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/config_python.h"

namespace kohaku {
namespace {

using namespace config_python;

std::optional<ConfigType> type_of(const ConfigValue& v) {
  if (std::holds_alternative<std::string>(v)) return ConfigType::kString;
  if (std::holds_alternative<int64_t>(v)) return ConfigType::kInt;
  if (std::holds_alternative<bool>(v)) return ConfigType::kBool;
  if (std::holds_alternative<double>(v)) return ConfigType::kFloat;
  return std::nullopt;
}

std::string type_and_value(const ConfigValue& v) {
  auto t = type_of(v);
  return t ? std::string(config_type_name(*t)) + " " + config_value_repr(v) : "None";
}

// Converts a literal to the key's type or says why it cannot; Python's own widening (an int
// where a float is declared) is allowed, nothing else.
ConfigValue coerce(const ConfigKeySpec& spec, ConfigValue value) {
  if (std::holds_alternative<std::monostate>(value)) {
    if (spec.nullable) return value;
    throw LiteralError{spec.name + " expects " + std::string(config_type_name(spec.type)) +
                       ", got None"};
  }
  if (spec.type == ConfigType::kFloat && std::holds_alternative<int64_t>(value))
    return static_cast<double>(std::get<int64_t>(value));
  if (type_of(value) != spec.type)
    throw LiteralError{spec.name + " expects " + std::string(config_type_name(spec.type)) +
                       ", got " + type_and_value(value)};
  return value;
}

}  // namespace

std::string_view config_type_name(ConfigType type) {
  return enum_name(kConfigTypeNames, type);
}

std::string config_value_repr(const ConfigValue& value) {
  struct Repr {
    std::string operator()(std::monostate) const { return "None"; }
    std::string operator()(const std::string& s) const {
      std::string out = "'";
      for (char c : s) {
        switch (c) {
          case '\\':
            out += "\\\\";
            break;
          case '\'':
            out += "\\'";
            break;
          case '\n':
            out += "\\n";
            break;
          case '\t':
            out += "\\t";
            break;
          case '\r':
            out += "\\r";
            break;
          case '\0':
            out += "\\0";
            break;
          default:
            out += c;
        }
      }
      return out + "'";
    }
    std::string operator()(int64_t v) const { return std::to_string(v); }
    std::string operator()(bool v) const { return v ? "True" : "False"; }
    std::string operator()(double v) const {
      std::ostringstream os;
      os.precision(17);
      os << v;
      std::string s = os.str();
      if (s.find_first_of(".eE") == std::string::npos && s.find_first_of("ni") == std::string::npos)
        s += ".0";
      return s;
    }
  };
  return std::visit(Repr{}, value);
}

ConfigSchema& ConfigSchema::add(ConfigKeySpec spec) {
  if (find(spec.name)) throw std::logic_error("config key declared twice: " + spec.name);
  keys_.push_back(std::move(spec));
  return *this;
}
ConfigSchema& ConfigSchema::add_string(std::string name, std::string default_value, bool nullable) {
  return add({std::move(name), ConfigType::kString, std::move(default_value), nullable});
}
ConfigSchema& ConfigSchema::add_optional_string(std::string name) {
  return add({std::move(name), ConfigType::kString, std::monostate{}, true});
}
ConfigSchema& ConfigSchema::add_int(std::string name, int64_t default_value) {
  return add({std::move(name), ConfigType::kInt, default_value});
}
ConfigSchema& ConfigSchema::add_bool(std::string name, bool default_value) {
  return add({std::move(name), ConfigType::kBool, default_value});
}
ConfigSchema& ConfigSchema::add_float(std::string name, double default_value) {
  return add({std::move(name), ConfigType::kFloat, default_value});
}
const ConfigKeySpec* ConfigSchema::find(std::string_view name) const {
  for (const auto& k : keys_)
    if (k.name == name) return &k;
  return nullptr;
}

ConfigFile::ConfigFile(ConfigSchema schema) : schema_(std::move(schema)) {
  for (const auto& k : schema_.keys()) entries_.emplace(k.name, Entry{k, k.default_value});
}

void ConfigFile::load(const std::string& path) {
  // A config file is a small regular file: a directory "opens" as an empty stream and
  // /dev/zero never ends (std::bad_alloc), so both are refused by what they are.
  constexpr std::uintmax_t kMaxConfigBytes = 1u << 20;
  std::error_code ec;
  auto status = std::filesystem::status(path, ec);
  if (ec) throw ConfigError(path + ": cannot open config file: " + ec.message());
  if (std::filesystem::is_directory(status))
    throw ConfigError(path + ": is a directory, not a config file");
  if (!std::filesystem::is_regular_file(status))
    throw ConfigError(path + ": is not a regular file (a device, socket or pipe)");
  auto size = std::filesystem::file_size(path, ec);
  if (!ec && size > kMaxConfigBytes)
    throw ConfigError(path + ": config file of " + std::to_string(size) +
                      " bytes exceeds the limit of " + std::to_string(kMaxConfigBytes));
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError(path + ": cannot open config file: " + std::strerror(errno));
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError(path + ": cannot read config file: " + std::strerror(errno));
  parse(text.str(), path);
}

void ConfigFile::parse(std::string_view text, const std::string& source_name) {
  // Applied to a copy so that a file with an error changes nothing.
  auto entries = entries_;
  auto warnings = warnings_;
  std::map<std::string, int, std::less<>> first_line;

  // Editors on other systems save with a byte-order mark; it is not part of the first key.
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);

  SkippedPython skipped(source_name, warnings);
  int line_no = 0;
  while (!text.empty()) {
    ++line_no;
    auto nl = text.find('\n');
    std::string_view raw = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    std::string at = source_name + ":" + std::to_string(line_no);

    try {
      if (skipped.consume(raw, line_no)) continue;
      std::string_view line = trim(strip_comment(raw));
      if (line.empty()) continue;
      if (is_space(raw[0])) throw LiteralError{"unexpected indentation"};

      std::string_view rest = line;
      std::string_view key = take_identifier(rest);
      rest = trim(rest);
      std::optional<std::string_view> annotation;
      if (!key.empty() && rest.starts_with(':')) {
        auto eq = rest.find('=');
        if (eq == std::string_view::npos)
          throw LiteralError{"malformed line: annotation without '= value'"};
        annotation = trim(rest.substr(1, eq - 1));
        rest = rest.substr(eq);
      }
      if (key.empty() || !rest.starts_with('=') || rest.starts_with("=="))
        throw LiteralError{"malformed line: expected KEY = value or KEY: type = value"};
      rest = trim(rest.substr(1));
      if (rest.empty()) throw LiteralError{"missing value after '='"};

      auto it = entries.find(key);
      if (it == entries.end()) {
        warnings.push_back(at + ": unknown key " + std::string(key) + " (ignored)");
        skipped.skip_value(rest, line_no);
        continue;
      }
      const ConfigKeySpec& spec = it->second.spec;
      ConfigValue value = parse_literal(rest);
      if (annotation) {
        auto ann = parse_annotation(*annotation);
        if (!ann)
          throw LiteralError{spec.name + ": unknown type annotation '" + std::string(*annotation) +
                             "' (expected " + std::string(config_type_name(spec.type)) + ")"};
        if (ann->type != spec.type)
          throw LiteralError{spec.name + " is annotated " + std::string(*annotation) +
                             " but the key's type is " + std::string(config_type_name(spec.type))};
        bool none = std::holds_alternative<std::monostate>(value);
        bool fits = none ? ann->nullable
                         : type_of(value) == ann->type || (ann->type == ConfigType::kFloat &&
                                                           type_of(value) == ConfigType::kInt);
        if (!fits)
          throw LiteralError{spec.name + " is annotated " + std::string(*annotation) +
                             " but the value is " + type_and_value(value)};
      }
      it->second.value = coerce(spec, std::move(value));
      if (auto [f, inserted] = first_line.emplace(spec.name, line_no); !inserted)
        warnings.push_back(at + ": " + spec.name + " set again (first set at line " +
                           std::to_string(f->second) + "); the last value wins");
      it->second.where = at;
    } catch (const LiteralError& e) {
      throw ConfigError(at + ": " + e.what);
    }
  }
  try {
    skipped.finish();
  } catch (const LiteralError& e) {
    throw ConfigError(source_name + ":" + std::to_string(line_no) + ": " + e.what);
  }
  entries_ = std::move(entries);
  warnings_ = std::move(warnings);
}

void ConfigFile::apply_override(std::string_view assignment) {
  std::string at = "--set " + std::string(assignment);
  auto eq = assignment.find('=');
  if (eq == std::string_view::npos) throw ConfigError(at + ": expected KEY=VALUE");
  std::string_view key = trim(assignment.substr(0, eq));
  std::string_view text = trim(assignment.substr(eq + 1));
  auto it = entries_.find(key);
  if (it == entries_.end()) throw ConfigError(at + ": unknown key " + std::string(key));
  const ConfigKeySpec& spec = it->second.spec;
  try {
    ConfigValue value;
    bool quoted = !text.empty() && (text[0] == '\'' || text[0] == '"');
    if (spec.type == ConfigType::kString && !quoted && !(spec.nullable && text == "None"))
      value = std::string(text);  // a bare word is the string itself
    else
      value = coerce(spec, parse_literal(text));
    it->second.value = std::move(value);
    it->second.where = at;
  } catch (const LiteralError& e) {
    throw ConfigError(at + ": " + e.what);
  }
}

const ConfigFile::Entry& ConfigFile::entry(std::string_view key) const {
  auto it = entries_.find(key);
  if (it == entries_.end()) throw std::logic_error("config key not in schema: " + std::string(key));
  return it->second;
}

const ConfigFile::Entry& ConfigFile::entry(std::string_view key, ConfigType type) const {
  const Entry& e = entry(key);
  if (e.spec.type != type)
    throw std::logic_error("config key " + std::string(key) + " is " +
                           std::string(config_type_name(e.spec.type)) + ", read as " +
                           std::string(config_type_name(type)));
  return e;
}

const std::string& ConfigFile::get_string(std::string_view key) const {
  const Entry& e = entry(key, ConfigType::kString);
  if (!std::holds_alternative<std::string>(e.value))
    throw std::logic_error("config key " + std::string(key) + " is None");
  return std::get<std::string>(e.value);
}
std::optional<std::string> ConfigFile::get_optional_string(std::string_view key) const {
  const Entry& e = entry(key, ConfigType::kString);
  if (auto* s = std::get_if<std::string>(&e.value)) return *s;
  return std::nullopt;
}
int64_t ConfigFile::get_int(std::string_view key) const {
  return std::get<int64_t>(entry(key, ConfigType::kInt).value);
}
bool ConfigFile::get_bool(std::string_view key) const {
  return std::get<bool>(entry(key, ConfigType::kBool).value);
}
double ConfigFile::get_float(std::string_view key) const {
  return std::get<double>(entry(key, ConfigType::kFloat).value);
}
bool ConfigFile::is_set(std::string_view key) const {
  return entry(key).where != "default";
}
const std::string& ConfigFile::where(std::string_view key) const {
  return entry(key).where;
}
std::string ConfigFile::repr(std::string_view key) const {
  return config_value_repr(entry(key).value);
}
void ConfigFile::fail(std::string_view key, std::string_view why) const {
  throw ConfigError(where(key) + ": " + std::string(key) + " = " + repr(key) + ": " +
                    std::string(why));
}

}  // namespace kohaku
