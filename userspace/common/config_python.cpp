#include "common/config_python.h"

#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>

namespace kohaku::config_python {

namespace {

bool is_ident_start(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || c == '_';
}

bool is_ident_char(char c) {
  return is_ident_start(c) || (c >= '0' && c <= '9');
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

}  // namespace
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

namespace {

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

}  // namespace

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

namespace {

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

}  // namespace
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
  if (auto t = enum_value(kConfigTypeNames, inner)) return Annotation{*t, nullable};
  return std::nullopt;
}

// True when `raw` belongs to a construct being skipped (or starts one).
bool SkippedPython::consume(std::string_view raw, int line_no) {
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
void SkippedPython::skip_value(std::string_view value, int line_no) {
  open_brackets_ = bracket_balance(value);
  if (open_brackets_ > 0) bracket_line_ = line_no;
}

// At end of input: anything still open is an error; a finished def may warn.
void SkippedPython::finish() {
  if (!docstring_quote_.empty()) throw LiteralError{"unterminated docstring"};
  if (open_brackets_ > 0)
    throw LiteralError{"bracket opened at line " + std::to_string(bracket_line_) +
                       " is never closed"};
  end_def();
}

// KohakuRiver's template body is a docstring, comments and `return Config.from_globals()`;
// anything else may compute settings we would not see, so the operator is told.
void SkippedPython::note_def_body(std::string_view line) {
  bool doc_line = def_docstring_ || opens_docstring(line);
  if (count_triple_quotes(line) % 2) def_docstring_ = !def_docstring_;
  if (line.empty() || doc_line || line.starts_with('#')) return;
  if (line == "return Config.from_globals()")
    def_returns_globals_ = true;
  else
    def_is_template_ = false;
}

void SkippedPython::end_def() {
  if (def_line_ && !(def_is_template_ && def_returns_globals_))
    warnings_.push_back(source_name_ + ":" + std::to_string(def_line_) +
                        ": function ignored (only KEY = literal lines are read)");
  def_line_ = 0;
}

}  // namespace kohaku::config_python
