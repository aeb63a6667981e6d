#include "common/config_file.h"

#include <gtest/gtest.h>

#include <string>

#include "common/daemon_args.h"
#include "config_test_dir.h"

namespace kohaku {
namespace {

using TempDir = test_support::ConfigTestDir;

ConfigSchema test_schema() {
  ConfigSchema s;
  s.add_string("NAME", "default-name")
      .add_int("COUNT", 7)
      .add_bool("ENABLED", false)
      .add_float("RATIO", 0.5)
      .add_optional_string("MAYBE");
  return s;
}

// Parses a file with that text and returns the ConfigError message ("" when none).
std::string error_of(const std::string& text, std::string* path_out = nullptr) {
  TempDir dir;
  std::string path = dir.write("host_config.py", text);
  if (path_out) *path_out = path;
  ConfigFile file(test_schema());
  try {
    file.load(path);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

// The message with the temp path replaced by "host_config.py".
std::string short_error(const std::string& text) {
  std::string path;
  std::string msg = error_of(text, &path);
  if (msg.starts_with(path)) msg = "host_config.py" + msg.substr(path.size());
  return msg;
}

TEST(ConfigFile, DefaultsWithoutAFile) {
  ConfigFile f(test_schema());
  EXPECT_EQ(f.get_string("NAME"), "default-name");
  EXPECT_EQ(f.get_int("COUNT"), 7);
  EXPECT_FALSE(f.get_bool("ENABLED"));
  EXPECT_DOUBLE_EQ(f.get_float("RATIO"), 0.5);
  EXPECT_EQ(f.get_optional_string("MAYBE"), std::nullopt);
  EXPECT_FALSE(f.is_set("COUNT"));
  EXPECT_EQ(f.where("COUNT"), "default");
  EXPECT_TRUE(f.warnings().empty());
}

TEST(ConfigFile, ReadsBothLineFormsCommentsAndEveryLiteral) {
  TempDir dir;
  std::string path = dir.write("host_config.py",
                               "# KohakuRiver host configuration\n"
                               "from kohakuengine import Config\n"
                               "\n"
                               "NAME: str = \"hub # not a comment\"  # trailing comment\n"
                               "COUNT = -1_000  # ints take Python underscores\n"
                               "ENABLED: bool = True\n"
                               "RATIO: float = 2.5e-1\n"
                               "MAYBE: str | None = 'x'\n"
                               "   # an indented comment is still a comment\n"
                               "\n"
                               "def config_gen():\n"
                               "    return Config.from_globals()\n");
  ConfigFile f(test_schema());
  f.load(path);
  EXPECT_EQ(f.get_string("NAME"), "hub # not a comment");
  EXPECT_EQ(f.get_int("COUNT"), -1000);
  EXPECT_TRUE(f.get_bool("ENABLED"));
  EXPECT_DOUBLE_EQ(f.get_float("RATIO"), 0.25);
  EXPECT_EQ(f.get_optional_string("MAYBE"), "x");
  EXPECT_EQ(f.where("COUNT"), path + ":5");
  EXPECT_TRUE(f.is_set("COUNT"));
  EXPECT_TRUE(f.warnings().empty()) << f.warnings().front();
}

TEST(ConfigFile, ToleratesWindowsLineEndingsAndByteOrderMark) {
  ConfigFile f(test_schema());
  f.parse(
      "\xEF\xBB\xBF"
      "COUNT = 3\r\n\r\nNAME = 'x'\r\n",
      "t.py");
  EXPECT_EQ(f.get_int("COUNT"), 3);
  EXPECT_EQ(f.get_string("NAME"), "x");
  EXPECT_EQ(f.where("NAME"), "t.py:3");
}

TEST(ConfigFile, ReadsNumbersTheWayPythonDoes) {
  struct Case {
    std::string literal;
    double expected;
  };
  for (auto [literal, expected] :
       {Case{"3", 3.0}, Case{"+4", 4.0}, Case{"1.", 1.0}, Case{".5", 0.5}, Case{"1_0.2_5", 10.25},
        Case{"1e3", 1000.0}, Case{"-2.5E+2", -250.0}}) {
    ConfigFile f(test_schema());
    f.parse("RATIO = " + literal + "\n", "t.py");
    EXPECT_DOUBLE_EQ(f.get_float("RATIO"), expected) << literal;
  }
  ConfigFile f(test_schema());
  f.parse("COUNT = 0\nCOUNT = 9223372036854775807\n", "t.py");
  EXPECT_EQ(f.get_int("COUNT"), INT64_MAX);
  f.parse("COUNT = 00", "t.py");
  EXPECT_EQ(f.get_int("COUNT"), 0);
}

TEST(ConfigFile, DecodesStringEscapes) {
  ConfigFile f(test_schema());
  f.parse(R"(NAME = 'a\\b\'c\"d\ne\tf')"
          "\n",
          "t.py");
  EXPECT_EQ(f.get_string("NAME"), "a\\b'c\"d\ne\tf");
  f.parse(R"(NAME = "it's \"quoted\"")", "t.py");
  EXPECT_EQ(f.get_string("NAME"), "it's \"quoted\"");
  f.parse("NAME = ''", "t.py");
  EXPECT_EQ(f.get_string("NAME"), "");
  EXPECT_EQ(f.repr("NAME"), "''");
  f.parse(R"(NAME = 'tab\there')", "t.py");
  EXPECT_EQ(f.repr("NAME"), R"('tab\there')");
}

TEST(ConfigFile, NoneOnlyForNullableKeys) {
  ConfigFile f(test_schema());
  f.parse("MAYBE = 'x'\nMAYBE: Optional[str] = None\n", "t.py");
  EXPECT_EQ(f.get_optional_string("MAYBE"), std::nullopt);
  EXPECT_EQ(short_error("NAME = None\n"), "host_config.py:1: NAME expects str, got None");
  EXPECT_EQ(short_error("COUNT = None\n"), "host_config.py:1: COUNT expects int, got None");
  EXPECT_EQ(short_error("MAYBE: str = None\n"),
            "host_config.py:1: MAYBE is annotated str but the value is None");
}

TEST(ConfigFile, WrongTypeNamesExpectedAndGot) {
  EXPECT_EQ(short_error("NAME = 'ok'\nCOUNT = \"8000\"\n"),
            "host_config.py:2: COUNT expects int, got str '8000'");
  EXPECT_EQ(short_error("ENABLED = 1\n"), "host_config.py:1: ENABLED expects bool, got int 1");
  EXPECT_EQ(short_error("COUNT = True\n"), "host_config.py:1: COUNT expects int, got bool True");
  EXPECT_EQ(short_error("COUNT = 1.5\n"), "host_config.py:1: COUNT expects int, got float 1.5");
  EXPECT_EQ(short_error("NAME = 42\n"), "host_config.py:1: NAME expects str, got int 42");
  // Python widens an int where a float is declared; so do we.
  EXPECT_EQ(short_error("RATIO = 2\n"), "");
}

TEST(ConfigFile, AnnotationMustAgreeWithLiteralAndKey) {
  EXPECT_EQ(short_error("\nCOUNT: int = 'x'\n"),
            "host_config.py:2: COUNT is annotated int but the value is str 'x'");
  EXPECT_EQ(short_error("COUNT: str = 'x'\n"),
            "host_config.py:1: COUNT is annotated str but the key's type is int");
  EXPECT_EQ(short_error("COUNT: Port = 1\n"),
            "host_config.py:1: COUNT: unknown type annotation 'Port' (expected int)");
  EXPECT_EQ(short_error("RATIO: float = 1\n"), "");
}

TEST(ConfigFile, MalformedLines) {
  EXPECT_EQ(short_error("COUNT 5\n"),
            "host_config.py:1: malformed line: expected KEY = value or KEY: type = value");
  EXPECT_EQ(short_error("a\nb\n"),
            "host_config.py:1: malformed line: expected KEY = value or KEY: type = value");
  EXPECT_EQ(short_error("COUNT == 5\n"),
            "host_config.py:1: malformed line: expected KEY = value or KEY: type = value");
  EXPECT_EQ(short_error("= 5\n"),
            "host_config.py:1: malformed line: expected KEY = value or KEY: type = value");
  EXPECT_EQ(short_error("COUNT: int\n"),
            "host_config.py:1: malformed line: annotation without '= value'");
  EXPECT_EQ(short_error("COUNT =   # nothing\n"), "host_config.py:1: missing value after '='");
  EXPECT_EQ(short_error("  COUNT = 5\n"), "host_config.py:1: unexpected indentation");
  EXPECT_EQ(short_error("COUNT = 5 6\n"), "host_config.py:1: not a Python literal: 5 6");
  EXPECT_EQ(short_error("COUNT = 1__0\n"), "host_config.py:1: not a Python literal: 1__0");
  EXPECT_EQ(short_error("COUNT = 010\n"),
            "host_config.py:1: leading zeros are not allowed in an int (Python syntax): 010");
  EXPECT_EQ(short_error("COUNT = 99999999999999999999\n"),
            "host_config.py:1: int out of range: 99999999999999999999");
  EXPECT_EQ(short_error("ENABLED = true\n"),
            "host_config.py:1: not a Python literal: true (booleans are True and False)");
  EXPECT_EQ(short_error("NAME = os.environ['X']\n"),
            "host_config.py:1: not a Python literal: os.environ['X'] (expected a quoted string, "
            "a number, True, False or None)");
  EXPECT_EQ(short_error("NAME = 'a' 'b'\n"),
            "host_config.py:1: unexpected text after the string: 'b'");
  EXPECT_EQ(short_error("NAME = 'a' + 'b'\n"),
            "host_config.py:1: unexpected text after the string: + 'b'");
}

TEST(ConfigFile, UnterminatedStringsAndBadEscapes) {
  EXPECT_EQ(short_error("COUNT = 1\nNAME = 'abc\n"), "host_config.py:2: unterminated string");
  EXPECT_EQ(short_error("NAME = \"abc'\n"), "host_config.py:1: unterminated string");
  EXPECT_EQ(short_error("NAME = 'abc\\'\n"), "host_config.py:1: unterminated string");
  // An unknown key's value is not used, but the line must still be well-formed.
  EXPECT_EQ(short_error("OTHER = 'abc # oops\n"), "host_config.py:1: unterminated string");
  EXPECT_EQ(short_error("NAME = 'C:\\dir'\n"),
            "host_config.py:1: unknown escape \\d in string (write \\\\ for a backslash)");
}

TEST(ConfigFile, ErrorLeavesEarlierValuesUntouched) {
  TempDir dir;
  ConfigFile f(test_schema());
  f.load(dir.write("good.py", "COUNT = 1\n"));
  EXPECT_THROW(f.load(dir.write("bad.py", "COUNT = 2\nFOO = 3\nNAME = 4\n")), ConfigError);
  EXPECT_EQ(f.get_int("COUNT"), 1);
  EXPECT_TRUE(f.warnings().empty());
}

TEST(ConfigFile, MissingFileNamesThePath) {
  ConfigFile f(test_schema());
  try {
    f.load("/nonexistent/kohaku/host_config.py");
    FAIL() << "no error";
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(),
                 "/nonexistent/kohaku/host_config.py: cannot open config file: No such file or "
                 "directory");
  }
}

TEST(ConfigFile, OnlyRegularFilesAreConfigFiles) {
  TempDir dir;
  ConfigFile f(test_schema());
  auto message = [&](const std::string& path) {
    try {
      f.load(path);
    } catch (const ConfigError& e) {
      return std::string(e.what());
    }
    return std::string("(accepted)");
  };
  const std::string folder = std::filesystem::path(dir.write("x.py", "")).parent_path().string();
  EXPECT_EQ(message(folder), folder + ": is a directory, not a config file");
  // Once std::bad_alloc after reading forever.
  EXPECT_NE(message("/dev/zero").find("not a regular file"), std::string::npos);
  std::string big = dir.write("big.py", "COUNT = 1\n" + std::string(2 << 20, '#'));
  EXPECT_NE(message(big).find("exceeds the limit"), std::string::npos);
}

TEST(ConfigFile, UnknownAndRepeatedKeysAreWarnings) {
  TempDir dir;
  std::string path = dir.write("host_config.py",
                               "COUNT = 1\n"
                               "LOG_LEVEL: LogLevel = LogLevel.INFO\n"
                               "COUNT = 2\n"
                               "def config_gen():\n"
                               "    x = 1\n"
                               "    return Config.from_globals()\n"
                               "FOO = 'bar'\n");
  ConfigFile f(test_schema());
  f.load(path);
  EXPECT_EQ(f.get_int("COUNT"), 2);
  EXPECT_EQ(f.where("COUNT"), path + ":3");
  ASSERT_EQ(f.warnings().size(), 4u);
  EXPECT_EQ(f.warnings()[0], path + ":2: unknown key LOG_LEVEL (ignored)");
  EXPECT_EQ(f.warnings()[1],
            path + ":3: COUNT set again (first set at line 1); the last value wins");
  EXPECT_EQ(f.warnings()[2], path + ":4: function ignored (only KEY = literal lines are read)");
  EXPECT_EQ(f.warnings()[3], path + ":7: unknown key FOO (ignored)");
}

TEST(ConfigFile, SkipsDocstringsFunctionsAndMultiLineUnknownValues) {
  ConfigFile f(test_schema());
  f.parse(
      "\"\"\"\n"
      "Module docstring: it's free text, # and 'quotes' included.\n"
      "\"\"\"\n"
      "'''One-line docstring'''\n"
      "MOUNTS: list[str] = [\n"
      "    \"/a:/b\",  # comment ]\n"
      "    '/c:/d(',\n"
      "]\n"
      "COUNT = 3\n"
      "EXTRA = {'k': ('\\d', 2),\n"
      "         'm': 3}\n"
      "def config_gen():\n"
      "    \"\"\"Builds the config; don't edit.\n"
      "    x = 1 inside the docstring is text\n"
      "    \"\"\"\n"
      "# a comment between body lines\n"
      "    return Config.from_globals()\n"
      "\n"
      "NAME = 'after'\n",
      "t.py");
  EXPECT_EQ(f.get_int("COUNT"), 3);
  EXPECT_EQ(f.get_string("NAME"), "after");
  EXPECT_EQ(f.warnings(), (std::vector<std::string>{"t.py:5: unknown key MOUNTS (ignored)",
                                                    "t.py:10: unknown key EXTRA (ignored)"}));
}

TEST(ConfigFile, FunctionsThatComputeSomethingAreReported) {
  ConfigFile f(test_schema());
  f.parse("def config_gen():\n    return {'COUNT': 5}\nCOUNT = 1\n", "t.py");
  f.parse("def helper(x):\n    return x\n", "u.py");
  f.parse("def config_gen():\n    \"\"\"Doc.\"\"\"\n", "v.py");
  EXPECT_EQ(f.warnings(), (std::vector<std::string>{
                              "t.py:1: function ignored (only KEY = literal lines are read)",
                              "u.py:1: function ignored (only KEY = literal lines are read)",
                              "v.py:1: function ignored (only KEY = literal lines are read)"}));
}

TEST(ConfigFile, UnclosedPythonConstructsAreErrors) {
  EXPECT_EQ(short_error("COUNT = 1\n\"\"\"\nnever closed\n"),
            "host_config.py:3: unterminated docstring");
  EXPECT_EQ(short_error("OTHER = [\n  1,\n"),
            "host_config.py:2: bracket opened at line 1 is never closed");
  EXPECT_EQ(short_error("def config_gen()\n"), "host_config.py:1: malformed line: def without ':'");
}

TEST(ConfigFile, OverridesAreTyped) {
  ConfigFile f(test_schema());
  f.parse("COUNT = 1\n", "t.py");
  f.apply_override("COUNT=42");
  f.apply_override("ENABLED=True");
  f.apply_override("RATIO=3");
  f.apply_override("NAME='quoted # value'");
  EXPECT_EQ(f.get_int("COUNT"), 42);
  EXPECT_TRUE(f.get_bool("ENABLED"));
  EXPECT_DOUBLE_EQ(f.get_float("RATIO"), 3.0);
  EXPECT_EQ(f.get_string("NAME"), "quoted # value");
  EXPECT_EQ(f.where("COUNT"), "--set COUNT=42");
  // A bare word is the string itself, even one that looks like a number or has '#'.
  f.apply_override("NAME=kernel");
  EXPECT_EQ(f.get_string("NAME"), "kernel");
  f.apply_override("NAME=8000#x");
  EXPECT_EQ(f.get_string("NAME"), "8000#x");
  f.apply_override("NAME=");
  EXPECT_EQ(f.get_string("NAME"), "");
  f.apply_override("MAYBE=None");
  EXPECT_EQ(f.get_optional_string("MAYBE"), std::nullopt);
  f.apply_override("MAYBE=None2");
  EXPECT_EQ(f.get_optional_string("MAYBE"), "None2");
}

TEST(ConfigFile, BadOverridesSayWhich) {
  auto error = [](const std::string& assignment) -> std::string {
    ConfigFile f(test_schema());
    try {
      f.apply_override(assignment);
    } catch (const ConfigError& e) {
      EXPECT_EQ(f.get_int("COUNT"), 7) << "a failed --set changed the value";
      return e.what();
    }
    return "";
  };
  EXPECT_EQ(error("COUNT=abc"),
            "--set COUNT=abc: not a Python literal: abc (expected a quoted string, a number, "
            "True, False or None)");
  EXPECT_EQ(error("COUNT='5'"), "--set COUNT='5': COUNT expects int, got str '5'");
  EXPECT_EQ(error("COUNT="), "--set COUNT=: missing value after '='");
  EXPECT_EQ(error("ENABLED=yes"),
            "--set ENABLED=yes: not a Python literal: yes (expected a quoted string, a number, "
            "True, False or None)");
  EXPECT_EQ(error("NAME='open"), "--set NAME='open: unterminated string");
  EXPECT_EQ(error("COUNT"), "--set COUNT: expected KEY=VALUE");
  EXPECT_EQ(error("NOPE=1"), "--set NOPE=1: unknown key NOPE");
}

TEST(ConfigFile, FailPointsAtWhereTheValueCameFrom) {
  ConfigFile f(test_schema());
  f.parse("\n\nCOUNT = 0\n", "host_config.py");
  try {
    f.fail("COUNT", "must be positive");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "host_config.py:3: COUNT = 0: must be positive");
  }
  f.apply_override("NAME=x'y");
  try {
    f.fail("NAME", "bad");
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_STREQ(e.what(), "--set NAME=x'y: NAME = 'x\\'y': bad");
  }
}

TEST(DaemonArgs, ParsesConfigAndOverrides) {
  auto a = parse_daemon_args({"--config", "/etc/h.py", "--set", "A=1", "--set=B=two"}, "hostd",
                             "host_config.py");
  EXPECT_EQ(a.config_path, "/etc/h.py");
  EXPECT_EQ(a.overrides, (std::vector<std::string>{"A=1", "B=two"}));
  EXPECT_FALSE(a.help);
  auto b = parse_daemon_args({"--config=/x.py"}, "hostd", "host_config.py");
  EXPECT_EQ(b.config_path, "/x.py");
  EXPECT_TRUE(parse_daemon_args({"--help"}, "hostd", "host_config.py").help);
  EXPECT_TRUE(parse_daemon_args({"-h"}, "hostd", "host_config.py").help);
  auto none = parse_daemon_args({}, "hostd", "host_config.py");
  EXPECT_FALSE(none.config_path);
  EXPECT_TRUE(none.overrides.empty());
}

TEST(DaemonArgs, BadCommandLinesCarryUsage) {
  auto error = [](std::vector<std::string> args) -> std::string {
    try {
      parse_daemon_args(args, "kohaku-hostd", "host_config.py");
    } catch (const UsageError& e) {
      EXPECT_NE(e.usage().find("Usage: kohaku-hostd [OPTIONS]"), std::string::npos) << e.usage();
      EXPECT_NE(e.usage().find("--config PATH"), std::string::npos) << e.usage();
      EXPECT_NE(e.usage().find("--set KEY=VALUE"), std::string::npos) << e.usage();
      EXPECT_NE(e.usage().find("~/.kohakuriver/host_config.py"), std::string::npos) << e.usage();
      EXPECT_NE(e.usage().find("host_config.py"), std::string::npos);
      return e.what();
    }
    return "";
  };
  // CLI11's wording, prefixed with the program; each names what is wrong.
  auto says = [&](std::vector<std::string> args, const std::string& needle) {
    const std::string e = error(args);
    EXPECT_TRUE(e.starts_with("kohaku-hostd: ")) << e;
    EXPECT_NE(e.find(needle), std::string::npos) << e;
  };
  says({"--verbose"}, "--verbose");
  says({"--config"}, "--config");
  says({"--set"}, "--set");
  says({"--set", "A"}, "--set: 'A' is not KEY=VALUE");
  says({"--set", "=1"}, "--set: '=1' is not KEY=VALUE");
  says({"--config", "a", "--config", "b"}, "--config");
  says({"stray"}, "stray");
  says({"--configs=x"}, "--configs=x");
  says({"--config="}, "--config");
  says({"--set", "A=1", "B=2"}, "B=2");  // one KEY=VALUE per --set
}

TEST(DaemonArgs, ArgvFormUsesTheProgramBaseName) {
  std::string prog = "/usr/bin/kohaku-runnerd", flag = "--bogus";
  char* argv[] = {prog.data(), flag.data(), nullptr};
  try {
    parse_daemon_args(2, argv, "runner_config.py");
    FAIL();
  } catch (const UsageError& e) {
    EXPECT_TRUE(std::string(e.what()).starts_with("kohaku-runnerd: ")) << e.what();
    EXPECT_NE(std::string(e.what()).find("--bogus"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kohaku
