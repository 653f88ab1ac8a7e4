#include "tools/args.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace orch::tools {
namespace {

using ::testing::HasSubstr;

constexpr std::string_view kKeys[] = {"taskId", "waitSec"};

std::string message_of(const Error& e) { return e.message; }

TEST(Args, IntegerRefusesFractionStringAndBoolean) {
  auto fraction = read_integer(json::parse("5.7"), "priority", 0, 10);
  ASSERT_FALSE(fraction);
  EXPECT_EQ(fraction.error().code, ErrorCode::InvalidArgument);
  EXPECT_THAT(message_of(fraction.error()), HasSubstr("priority must be an integer from 0 to 10"));
  EXPECT_THAT(message_of(fraction.error()), HasSubstr("5.7"));

  auto quoted = read_integer(json("5"), "priority", 0, 10);
  ASSERT_FALSE(quoted);
  EXPECT_THAT(message_of(quoted.error()), HasSubstr("without quotes"));

  auto boolean = read_integer(json(true), "priority", 0, 10);
  ASSERT_FALSE(boolean);
  EXPECT_THAT(message_of(boolean.error()), HasSubstr("a boolean"));

  // 5.0 is a JSON number with a fraction part in the text; strict means strict.
  EXPECT_FALSE(read_integer(json::parse("5.0"), "priority", 0, 10));
}

TEST(Args, IntegerChecksRange) {
  auto ok = read_integer(json(7), "priority", 0, 10);
  ASSERT_TRUE(ok);
  EXPECT_EQ(*ok, 7);
  EXPECT_TRUE(read_integer(json(0), "priority", 0, 10));
  EXPECT_TRUE(read_integer(json(10), "priority", 0, 10));
  auto high = read_integer(json(11), "priority", 0, 10);
  ASSERT_FALSE(high);
  EXPECT_THAT(message_of(high.error()), HasSubstr("got 11"));
  EXPECT_FALSE(read_integer(json(-1), "priority", 0, 10));
  // Above INT64_MAX only an unsigned JSON integer fits; it must not wrap.
  EXPECT_FALSE(read_integer(json::parse("18446744073709551615"), "offset", 0,
                            std::numeric_limits<std::int64_t>::max()));
}

TEST(Args, NumberAcceptsIntegersAndFractionsButNotBooleansOrStrings) {
  auto whole = read_number(json(3), "timeoutSec", {.min = 0, .max = 10, .min_exclusive = true});
  ASSERT_TRUE(whole);
  EXPECT_DOUBLE_EQ(*whole, 3);
  auto frac = read_number(json(2.5), "timeoutSec", {.min = 0, .max = 10, .min_exclusive = true});
  ASSERT_TRUE(frac);
  EXPECT_DOUBLE_EQ(*frac, 2.5);
  EXPECT_FALSE(read_number(json(false), "timeoutSec", {.min = 0}));
  auto quoted = read_number(json("2.5"), "timeoutSec", {.min = 0});
  ASSERT_FALSE(quoted);
  EXPECT_THAT(message_of(quoted.error()), HasSubstr("without quotes"));
}

TEST(Args, NumberChecksExclusiveMinimumAndMaximum) {
  NumberRule rule{.min = 0, .max = 50, .min_exclusive = true};
  auto zero = read_number(json(0), "timeoutSec", rule);
  ASSERT_FALSE(zero);
  EXPECT_THAT(message_of(zero.error()), HasSubstr("greater than 0"));
  auto above = read_number(json(50.5), "timeoutSec", rule);
  ASSERT_FALSE(above);
  EXPECT_THAT(message_of(above.error()), HasSubstr("at most 50"));
  EXPECT_TRUE(read_number(json(0), "delaySec", {.min = 0}));
  EXPECT_FALSE(read_number(json(-0.5), "delaySec", {.min = 0}));
}

TEST(Args, BoolIsStrict) {
  EXPECT_TRUE(read_bool(json(true), "tail"));
  EXPECT_FALSE(read_bool(json(1), "tail"));
  auto quoted = read_bool(json("true"), "tail");
  ASSERT_FALSE(quoted);
  EXPECT_THAT(message_of(quoted.error()), HasSubstr("without quotes"));
}

TEST(Args, UnknownKeysAreRefusedListingTheAllowedOnes) {
  EXPECT_TRUE(check_object(json{{"taskId", "x"}}, "getResult arguments", kKeys));
  auto bad = check_object(json{{"taskId", "x"}, {"wait", 5}}, "getResult arguments", kKeys);
  ASSERT_FALSE(bad);
  EXPECT_THAT(message_of(bad.error()), HasSubstr("unknown argument \"wait\""));
  EXPECT_THAT(message_of(bad.error()), HasSubstr("allowed: taskId, waitSec"));
  auto not_object = check_object(json::array(), "getResult arguments", kKeys);
  ASSERT_FALSE(not_object);
  EXPECT_THAT(message_of(not_object.error()), HasSubstr("must be a JSON object"));
}

TEST(Args, FindArgTreatsNullAsAbsent) {
  json args{{"cwd", nullptr}, {"name", "x"}};
  EXPECT_EQ(find_arg(args, "cwd"), nullptr);
  EXPECT_EQ(find_arg(args, "missing"), nullptr);
  ASSERT_NE(find_arg(args, "name"), nullptr);
  EXPECT_EQ(*find_arg(args, "name"), "x");
}

TEST(Args, StringChecksLengthAndNul) {
  EXPECT_TRUE(read_string(json("abc"), "name", {.max_bytes = 3}));
  auto long_name = read_string(json("abcd"), "name", {.max_bytes = 3});
  ASSERT_FALSE(long_name);
  EXPECT_THAT(message_of(long_name.error()), HasSubstr("too long"));
  auto empty = read_string(json(""), "command", {.min_bytes = 1});
  ASSERT_FALSE(empty);
  EXPECT_THAT(message_of(empty.error()), HasSubstr("must not be empty"));
  EXPECT_FALSE(read_string(json(std::string("a\0b", 3)), "command", {}));
  EXPECT_TRUE(read_string(json(std::string("a\0b", 3)), "stdin", {.allow_nul = true}));
  EXPECT_FALSE(read_string(json(5), "name", {}));
}

TEST(Args, EnumListsChoices) {
  constexpr std::string_view kStreams[] = {"stdout", "stderr", "both"};
  EXPECT_TRUE(read_enum(json("both"), "stream", kStreams));
  auto bad = read_enum(json("STDOUT"), "stream", kStreams);
  ASSERT_FALSE(bad);
  EXPECT_THAT(message_of(bad.error()), HasSubstr("one of: stdout, stderr, both"));
}

TEST(Args, StringArrayChecksItemsAndCount) {
  auto ok = read_string_array(json::array({"a", "b"}), "tags", {.max_items = 2});
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->size(), 2u);
  EXPECT_FALSE(read_string_array(json::array({"a", "b", "c"}), "tags", {.max_items = 2}));
  auto mixed = read_string_array(json::array({"a", 1}), "tags", {});
  ASSERT_FALSE(mixed);
  EXPECT_THAT(message_of(mixed.error()), HasSubstr("tags[1] must be a string"));
  auto single = read_string_array(json("ls"), "argv", {.min_items = 1});
  ASSERT_FALSE(single);
  EXPECT_THAT(message_of(single.error()), HasSubstr("wrap a single value in brackets"));
  EXPECT_FALSE(read_string_array(json::array(), "argv", {.min_items = 1}));
}

TEST(Args, EnvMapRefusesBadKeysAndNonStringValues) {
  MapRule env{.env_keys = true};
  auto ok = read_string_map(json{{"A", "1"}, {"B_2", ""}}, "env", env);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->at("A"), "1");
  auto equals = read_string_map(json{{"A=B", "1"}}, "env", env);
  ASSERT_FALSE(equals);
  EXPECT_THAT(message_of(equals.error()), HasSubstr("must not contain '='"));
  EXPECT_FALSE(read_string_map(json{{"", "1"}}, "env", env));
  auto number = read_string_map(json{{"PORT", 8080}}, "env", env);
  ASSERT_FALSE(number);
  EXPECT_THAT(message_of(number.error()), HasSubstr("quote it: \"8080\""));
  EXPECT_FALSE(read_string_map(json::array({"A=1"}), "env", env));
}

TEST(Args, UtcTimestampParses) {
  auto t = parse_utc_timestamp("1970-01-01T00:00:00Z", "runAt");
  ASSERT_TRUE(t);
  EXPECT_EQ(*t, 0);
  auto u = parse_utc_timestamp("2026-11-23T21:00:00Z", "runAt");
  ASSERT_TRUE(u);
  EXPECT_EQ(*u, 1795467600000);
  auto frac = parse_utc_timestamp("2026-11-23T21:00:00.25Z", "runAt");
  ASSERT_TRUE(frac);
  EXPECT_EQ(*frac, 1795467600250);
  auto micro = parse_utc_timestamp("2026-11-23T21:00:00.123456Z", "runAt");
  ASSERT_TRUE(micro);
  EXPECT_EQ(*micro, 1795467600123);
  auto leap = parse_utc_timestamp("2024-02-29T12:00:00Z", "runAt");
  EXPECT_TRUE(leap);
}

TEST(Args, UtcTimestampRefusesBadFormats) {
  for (const char* bad : {"", "2026-11-23", "2026-11-23 21:00:00Z", "2026-11-23T21:00:00",
                          "2026-11-23T21:00Z", "2026-11-23T21:00:00.Z", "2026-11-23T21:00:00ZZ",
                          "26-11-23T21:00:00Z", "2026/11/23T21:00:00Z", "tomorrow", "2026-11-23t21:00:00z",
                          "2026-1-23T21:00:00Z"}) {
    auto r = parse_utc_timestamp(bad, "runAt");
    ASSERT_FALSE(r) << bad;
    EXPECT_THAT(message_of(r.error()), HasSubstr("2026-11-23T21:00:00Z")) << bad;
  }
  auto offset = parse_utc_timestamp("2026-11-23T21:00:00+02:00", "runAt");
  ASSERT_FALSE(offset);
  EXPECT_THAT(message_of(offset.error()), HasSubstr("convert the time to UTC"));
}

TEST(Args, UtcTimestampRefusesDatesThatDoNotExist) {
  for (const char* bad : {"2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-02-29T00:00:00Z",
                          "2026-04-31T00:00:00Z", "2026-11-23T24:00:00Z", "2026-11-23T23:60:00Z",
                          "2026-11-23T23:59:60Z", "1969-12-31T23:59:59Z"}) {
    auto r = parse_utc_timestamp(bad, "runAt");
    ASSERT_FALSE(r) << bad;
    EXPECT_EQ(r.error().code, ErrorCode::InvalidArgument);
  }
}

TEST(Args, DescribeValueNamesTheType) {
  EXPECT_EQ(describe_value(json(true)), "a boolean (true)");
  EXPECT_EQ(describe_value(json(5)), "an integer (5)");
  EXPECT_EQ(describe_value(json(5.7)), "a number with a fraction (5.7)");
  EXPECT_EQ(describe_value(json("5")), "a string (\"5\")");
  EXPECT_EQ(describe_value(json(nullptr)), "null");
  // A huge string is not echoed back whole.
  EXPECT_LT(describe_value(json(std::string(100000, 'x'))).size(), 100u);
}

}  // namespace
}  // namespace orch::tools
