#pragma once
// The Python that a KohakuRiver config file is written in, as far as kohaku reads it: the
// literals of `KEY = value` lines (strings with escapes, numbers with '_' groups, True, False,
// None), the `KEY: type = value` annotations, and the constructs skipped so that a stock file
// loads unchanged (docstrings, imports, `def config_gen()`, multi-line values of unknown keys).
// Used by ConfigFile (common/config_file.h); a LiteralError carries no position, the caller
// adds "file:line: ".
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/config_file.h"

namespace kohaku::config_python {

struct LiteralError {
  std::string what;
};

bool is_space(char c);
std::string_view trim(std::string_view s);
// Removes and returns a leading Python identifier ("" when there is none).
std::string_view take_identifier(std::string_view& s);
// The line without a trailing `# comment` (a '#' inside a string literal is kept).
std::string_view strip_comment(std::string_view line);
// A quoted string, a number, True, False or None; throws LiteralError.
ConfigValue parse_literal(std::string_view text);

// The annotation of `KEY: annotation = value`: the four basic types, optionally with None.
struct Annotation {
  ConfigType type;
  bool nullable;
};
// nullopt when the annotation is not one of them.
std::optional<Annotation> parse_annotation(std::string_view text);

// The parts of a KohakuRiver config that are Python but not settings: docstrings, the
// `def config_gen()` block, and multi-line values of keys we do not know (lists, dicts). They
// are skipped line by line so that a stock KohakuRiver file loads unchanged.
class SkippedPython {
 public:
  SkippedPython(const std::string& source_name, std::vector<std::string>& warnings)
      : source_name_(source_name), warnings_(warnings) {}

  // True when `raw` belongs to a construct being skipped (or starts one).
  bool consume(std::string_view raw, int line_no);

  // After an unknown key's value: if it opens brackets, its continuation lines are skipped.
  void skip_value(std::string_view value, int line_no);

  // At end of input: anything still open is an error; a finished def may warn.
  void finish();

 private:
  // KohakuRiver's template body is a docstring, comments and `return Config.from_globals()`;
  // anything else may compute settings we would not see, so the operator is told.
  void note_def_body(std::string_view line);

  void end_def();

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

}  // namespace kohaku::config_python
