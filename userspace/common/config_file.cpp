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

namespace kohaku {
namespace {

// A literal could not be read; the caller adds "file:line: ".
struct LiteralError {
  std::string what;
};

bool is_ident_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}
bool is_ident_char(char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9');
}
bool is_digit(char c) {
  return c >= '0' && c <= '9';
}
bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_space(s.back())) s.remove_suffix(1);
  return s;
}

std::string_view take_identifier(std::string_view& s) {
  size_t n = 0;
  if (!s.empty() && is_ident_start(s[0]))
    while (n < s.size() && is_ident_char(s[n])) ++n;
  auto id = s.substr(0, n);
  s.remove_prefix(n);
  return id;
}

// Removes a trailing `# comment`, leaving '#' inside string literals alone.
std::string_view strip_comment(std::string_view line) {
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quote) {
      if (c == '\\')
        ++i;
      else if (c == quote)
        quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '#') {
      return line.substr(0, i);
    }
  }
  if (quote) throw LiteralError{"unterminated string"};
  return line;
}

// Reads a quoted string at the front of s (s[0] is the quote), consuming it.
std::string take_string(std::string_view& s) {
  char quote = s[0];
  std::string out;
  size_t i = 1;
  for (; i < s.size(); ++i) {
    char c = s[i];
    if (c == quote) break;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++i == s.size()) break;
    switch (s[i]) {
      case '\\':
        out += '\\';
        break;
      case '\'':
        out += '\'';
        break;
      case '"':
        out += '"';
        break;
      case 'n':
        out += '\n';
        break;
      case 't':
        out += '\t';
        break;
      case 'r':
        out += '\r';
        break;
      case '0':
        out += '\0';
        break;
      default:
        // Python would keep the backslash (with a warning); an explicit refusal avoids
        // silently different paths.
        throw LiteralError{std::string("unknown escape \\") + s[i] +
                           " in string (write \\\\ for a backslash)"};
    }
  }
  if (i >= s.size()) throw LiteralError{"unterminated string"};
  s.remove_prefix(i + 1);
  return out;
}

// Python digit group: digits with single underscores between them.
bool valid_digit_group(std::string_view s) {
  if (s.empty() || !is_digit(s.front()) || !is_digit(s.back())) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '_') {
      if (!is_digit(s[i + 1])) return false;
    } else if (!is_digit(s[i])) {
      return false;
    }
  }
  return true;
}

std::string without_underscores(std::string_view s) {
  std::string out;
  for (char c : s)
    if (c != '_') out += c;
  return out;
}

// Number literal (the whole text): int or float, Python syntax, optional sign.
ConfigValue parse_number(std::string_view text) {
  std::string_view body = text;
  if (!body.empty() && (body[0] == '-' || body[0] == '+')) body.remove_prefix(1);
  size_t e = body.find_first_of("eE");
  std::string_view mantissa = body.substr(0, e);
  std::string_view exponent = e == std::string_view::npos ? "" : body.substr(e + 1);
  size_t dot = mantissa.find('.');
  bool is_float = dot != std::string_view::npos || e != std::string_view::npos;

  if (!is_float) {
    if (!valid_digit_group(body)) throw LiteralError{"not a Python literal"};
    if (body.size() > 1 && body[0] == '0' && body.find_first_not_of("0_") != std::string::npos)
      throw LiteralError{"leading zeros are not allowed in an int (Python syntax)"};
    std::string digits = without_underscores(text);
    if (digits[0] == '+') digits.erase(0, 1);
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec == std::errc::result_out_of_range) throw LiteralError{"int out of range"};
    if (ec != std::errc() || ptr != digits.data() + digits.size())
      throw LiteralError{"not a Python literal"};
    return v;
  }

  std::string_view int_part = mantissa.substr(0, dot);
  std::string_view frac_part =
      dot == std::string_view::npos ? std::string_view{} : mantissa.substr(dot + 1);
  bool ok = (!int_part.empty() || !frac_part.empty()) &&
            (int_part.empty() || valid_digit_group(int_part)) &&
            (frac_part.empty() || valid_digit_group(frac_part));
  if (e != std::string_view::npos) {
    std::string_view exp_digits = exponent;
    if (!exp_digits.empty() && (exp_digits[0] == '-' || exp_digits[0] == '+'))
      exp_digits.remove_prefix(1);
    ok = ok && valid_digit_group(exp_digits);
  }
  if (!ok) throw LiteralError{"not a Python literal"};
  std::string digits = without_underscores(text);
  errno = 0;
  char* end = nullptr;
  double v = std::strtod(digits.c_str(), &end);
  if (errno == ERANGE && std::isinf(v)) throw LiteralError{"float out of range"};
  return v;
}

// One Python literal making up all of `text` (already trimmed, comment removed).
ConfigValue parse_literal(std::string_view text) {
  if (text.empty()) throw LiteralError{"missing value after '='"};
  if (text[0] == '\'' || text[0] == '"') {
    std::string value = take_string(text);
    if (!trim(text).empty())
      throw LiteralError{"unexpected text after the string: " + std::string(trim(text))};
    return value;
  }
  if (text == "True") return true;
  if (text == "False") return false;
  if (text == "None") return std::monostate{};
  if (text == "true" || text == "false")
    throw LiteralError{"not a Python literal: " + std::string(text) +
                       " (booleans are True and False)"};
  if (is_digit(text[0]) || text[0] == '-' || text[0] == '+' || text[0] == '.') {
    try {
      return parse_number(text);
    } catch (const LiteralError& e) {
      throw LiteralError{e.what + ": " + std::string(text)};
    }
  }
  throw LiteralError{"not a Python literal: " + std::string(text) +
                     " (expected a quoted string, a number, True, False or None)"};
}

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

// The annotation of `KEY: annotation = value`: the four basic types, optionally with None.
struct Annotation {
  ConfigType type;
  bool nullable;
};
std::optional<Annotation> parse_annotation(std::string_view text) {
  text = trim(text);
  bool nullable = false;
  std::string_view inner = text;
  if (text.starts_with("Optional[") && text.ends_with("]")) {
    inner = trim(text.substr(9, text.size() - 10));
    nullable = true;
  } else if (auto bar = text.find('|'); bar != std::string_view::npos) {
    auto left = trim(text.substr(0, bar)), right = trim(text.substr(bar + 1));
    if (right == "None")
      inner = left;
    else if (left == "None")
      inner = right;
    else
      return std::nullopt;
    nullable = true;
  }
  for (ConfigType t :
       {ConfigType::kString, ConfigType::kInt, ConfigType::kBool, ConfigType::kFloat})
    if (inner == config_type_name(t)) return Annotation{t, nullable};
  return std::nullopt;
}

bool starts_with_word(std::string_view line, std::string_view word) {
  return line.starts_with(word) && line.size() > word.size() && is_space(line[word.size()]);
}

// Net count of ( [ { minus ) ] } outside string literals (comment already removed).
int bracket_balance(std::string_view code) {
  int depth = 0;
  for (size_t i = 0; i < code.size(); ++i) {
    char c = code[i];
    if (c == '\'' || c == '"') {
      // Skipped leniently: this is a value we ignore, its escapes are not ours to judge.
      for (++i; i < code.size() && code[i] != c; ++i)
        if (code[i] == '\\') ++i;
    } else if (c == '(' || c == '[' || c == '{') {
      ++depth;
    } else if (c == ')' || c == ']' || c == '}') {
      --depth;
    }
  }
  return depth;
}

bool opens_docstring(std::string_view line) {
  return line.starts_with("\"\"\"") || line.starts_with("'''");
}

size_t count_triple_quotes(std::string_view line) {
  size_t n = 0;
  for (std::string_view q : {"\"\"\"", "'''"})
    for (auto at = line.find(q); at != std::string_view::npos; at = line.find(q, at + 3)) ++n;
  return n;
}

// The parts of a KohakuRiver config that are Python but not settings: docstrings, the
// `def config_gen()` block, and multi-line values of keys we do not know (lists, dicts). They
// are skipped line by line so that a stock KohakuRiver file loads unchanged.
class SkippedPython {
 public:
  SkippedPython(const std::string& source_name, std::vector<std::string>& warnings)
      : source_name_(source_name), warnings_(warnings) {}

  // True when `raw` belongs to a construct being skipped (or starts one).
  bool consume(std::string_view raw, int line_no) {
    std::string_view line = trim(raw);
    if (!docstring_quote_.empty()) {
      if (line.find(docstring_quote_) != std::string_view::npos) docstring_quote_ = {};
      return true;
    }
    if (def_line_) {
      if (line.empty() || line.starts_with('#') || is_space(raw[0])) {
        note_def_body(line);
        return true;
      }
      end_def();
    }
    if (open_brackets_ > 0) {
      open_brackets_ += bracket_balance(strip_comment(raw));
      return true;
    }
    if (opens_docstring(line)) {
      // A bare string statement (the module docstring); it may close on the same line.
      if (line.find(line.substr(0, 3), 3) == std::string_view::npos)
        docstring_quote_ = line.substr(0, 3);
      return true;
    }
    if (starts_with_word(line, "import") || starts_with_word(line, "from")) return true;
    if (starts_with_word(line, "def")) {
      if (!trim(strip_comment(line)).ends_with(":"))
        throw LiteralError{"malformed line: def without ':'"};
      def_line_ = line_no;
      def_is_template_ = line.starts_with("def config_gen(");
      def_returns_globals_ = false;
      def_docstring_ = false;
      return true;
    }
    return false;
  }

  // After an unknown key's value: if it opens brackets, its continuation lines are skipped.
  void skip_value(std::string_view value, int line_no) {
    open_brackets_ = bracket_balance(value);
    if (open_brackets_ > 0) bracket_line_ = line_no;
  }

  // At end of input: anything still open is an error; a finished def may warn.
  void finish() {
    if (!docstring_quote_.empty()) throw LiteralError{"unterminated docstring"};
    if (open_brackets_ > 0)
      throw LiteralError{"bracket opened at line " + std::to_string(bracket_line_) +
                         " is never closed"};
    end_def();
  }

 private:
  // KohakuRiver's template body is a docstring, comments and `return Config.from_globals()`;
  // anything else may compute settings we would not see, so the operator is told.
  void note_def_body(std::string_view line) {
    bool doc_line = def_docstring_ || opens_docstring(line);
    if (count_triple_quotes(line) % 2) def_docstring_ = !def_docstring_;
    if (line.empty() || doc_line || line.starts_with('#')) return;
    if (line == "return Config.from_globals()")
      def_returns_globals_ = true;
    else
      def_is_template_ = false;
  }

  void end_def() {
    if (def_line_ && !(def_is_template_ && def_returns_globals_))
      warnings_.push_back(source_name_ + ":" + std::to_string(def_line_) +
                          ": function ignored (only KEY = literal lines are read)");
    def_line_ = 0;
  }

  const std::string& source_name_;
  std::vector<std::string>& warnings_;
  std::string_view docstring_quote_;  // """ or ''' while inside a docstring
  int def_line_ = 0;                  // line of the `def` being skipped, 0 when none
  bool def_is_template_ = false;
  bool def_returns_globals_ = false;
  bool def_docstring_ = false;
  int open_brackets_ = 0;
  int bracket_line_ = 0;
};

}  // namespace

std::string_view config_type_name(ConfigType type) {
  switch (type) {
    case ConfigType::kString:
      return "str";
    case ConfigType::kInt:
      return "int";
    case ConfigType::kBool:
      return "bool";
    case ConfigType::kFloat:
      return "float";
  }
  return "?";
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
