// The shared JSON parser refuses what would crash or mislead the code after it.
#include "common/json_parse.h"

#include <gtest/gtest.h>

#include <string>

namespace kohaku {
namespace {

constexpr JsonLimits kSmall{4, 100};

std::string message_of(std::string_view text, const JsonLimits& limits) {
  try {
    parse_json(text, limits);
  } catch (const JsonParseError& e) {
    return e.what();
  }
  return "(accepted)";
}

TEST(ParseJson, AcceptsDocumentsWithinTheLimits) {
  EXPECT_EQ(parse_json(R"({"a": [[[1]]]})", kSmall)["a"][0][0][0], 1);
  EXPECT_EQ(parse_json("  7 ", kSmall), 7);
  // Brackets inside strings (escaped quotes too) are text, not nesting.
  EXPECT_EQ(parse_json(R"(["[[[[[[\"[[[[[", "{{{{{{{"])", kSmall)[1], "{{{{{{{");
}

TEST(ParseJson, RefusesDepthBeforeBuildingAnything) {
  EXPECT_NE(message_of("[[[[[1]]]]]", kSmall).find("deeper than 4"), std::string::npos);
  // 100,000 open brackets: refused quickly, no stack overflow, no matching ']' needed.
  std::string deep(100000, '[');
  EXPECT_NE(message_of(deep, kRequestJsonLimits).find("deeper than 32"), std::string::npos);
  EXPECT_NE(message_of(std::string(40, '{'), kRequestJsonLimits).find("deeper"), std::string::npos);
}

TEST(ParseJson, RefusesSize) {
  EXPECT_NE(message_of("\"" + std::string(200, 'x') + "\"", kSmall).find("exceeds the limit"),
            std::string::npos);
}

TEST(ParseJson, NumberOutOfRangeIsAParseError) {
  // nlohmann reports this as out_of_range, not parse_error; callers must see one error type.
  EXPECT_NE(message_of("[1e400]", kSmall).find("1e400"), std::string::npos);
  EXPECT_NE(message_of("-1e400", kSmall).find("number overflow"), std::string::npos);
}

TEST(ParseJson, SyntaxErrorsNameThePosition) {
  EXPECT_NE(message_of("{\"a\": ", kSmall).find("parse error"), std::string::npos);
  EXPECT_FALSE(try_parse_json("{]", kSmall).has_value());
  EXPECT_TRUE(try_parse_json("{}", kSmall).has_value());
}

}  // namespace
}  // namespace kohaku
