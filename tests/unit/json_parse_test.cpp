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

namespace kohaku {
namespace {

// get<uint32_t>() of 5e95 is undefined behaviour and of -1 wraps; json_integer refuses both
// (fuzz.runner_replies found the first in a named-network view's "vni").
TEST(JsonIntegerTest, OnlyIntegersThatFitAreTaken) {
  using nlohmann::json;
  EXPECT_EQ(json_integer<uint32_t>(json(5), "vni"), 5u);
  EXPECT_EQ(json_integer<int64_t>(json(-7), "ms"), -7);
  EXPECT_EQ(json_integer<uint64_t>(json(UINT64_MAX), "revision"), UINT64_MAX);
  for (const json& bad : {json(5e95), json(-1), json(4294967296ull), json(1.5), json("5"), json()})
    EXPECT_THROW(json_integer<uint32_t>(bad, "vni"), std::invalid_argument) << bad.dump();
  EXPECT_THROW(json_integer<int64_t>(json(UINT64_MAX), "ms"), std::invalid_argument);
  EXPECT_EQ(json_integer_or<uint16_t>(json::object(), "port", 4789), 4789);
  EXPECT_THROW(json_integer_or<uint16_t>(json{{"port", 70000}}, "port", 4789),
               std::invalid_argument);
  EXPECT_THROW(json_integer_at<uint32_t>(json::object(), "vni"), std::invalid_argument);
}

}  // namespace
}  // namespace kohaku
