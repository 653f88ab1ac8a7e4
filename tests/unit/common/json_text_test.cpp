#include "common/json_text.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace orch {
namespace {

using nlohmann::json;

std::string reference(const json& value) {
  return value.dump(-1, ' ', false, json::error_handler_t::replace);
}

TEST(JsonText, MatchesNlohmannForEveryKindOfValue) {
  json value = {
      {"null", nullptr},
      {"bools", {true, false}},
      {"ints", {0, -1, 42, INT64_MIN, INT64_MAX}},
      {"unsigned", UINT64_MAX},
      {"floats", {0.5, -2.25, 1e300, 3.0, 0.1}},
      {"empty", {{"object", json::object()}, {"array", json::array()}, {"string", ""}}},
      {"text", "plain ASCII long enough to take the eight-byte path, twice over"},
      {"escapes", "quote \" backslash \\ newline \n tab \t cr \r bell \x07 del \x7f nul " + std::string(1, '\0')},
      {"utf8", "h\xC3\xA9llo \xE2\x82\xAC \xF0\x9F\x98\x80"},
      {"nested", {{"b", {1, {{"c", "d"}}}}, {"a", json::array({"x", nullptr})}}},
  };
  EXPECT_EQ(json_text(value), reference(value));
}

TEST(JsonText, EscapesSpecialBytesAtEveryPositionOfAnEightByteBlock) {
  for (char special : {'"', '\\', '\n', '\x01', '\x1f'}) {
    for (std::size_t at = 0; at < 20; ++at) {
      std::string s(20, 'a');
      s[at] = special;
      EXPECT_EQ(json_text(json(s)), reference(json(s))) << "byte " << int(special) << " at " << at;
    }
  }
}

TEST(JsonText, AgreesWithNlohmannOnRandomValidText) {
  std::mt19937 rng(7);
  const std::string pieces[] = {"a", "Z", " ", "\"", "\\", "\n", "\x02", "\xC3\xA9", "\xE2\x82\xAC",
                                "\xF0\x9F\x98\x80", "0123456789abcdef"};
  for (int round = 0; round < 500; ++round) {
    std::string s;
    int n = static_cast<int>(rng() % 40);
    for (int i = 0; i < n; ++i) s += pieces[rng() % std::size(pieces)];
    ASSERT_EQ(json_text(json(s)), reference(json(s))) << s;
  }
}

TEST(JsonText, ReplacesEachBrokenSequenceWithOneReplacementCharacter) {
  const std::string fffd = "\xEF\xBF\xBD";
  EXPECT_EQ(json_text(json("a\xFF" "b")), "\"a" + fffd + "b\"");
  EXPECT_EQ(json_text(json("ok\xE2\x82")), "\"ok" + fffd + "\"");
  EXPECT_EQ(json_text(json("\xED\xA0\x80")), "\"" + fffd + fffd + fffd + "\"");
  // The result always parses back.
  std::string junk;
  for (int b = 0; b < 256; ++b) junk.push_back(static_cast<char>(b));
  EXPECT_TRUE(json::accept(json_text(json(junk + junk))));
}

TEST(JsonText, SanitizeKeepsValidTextAndReplacesTheRest) {
  const std::string fffd = "\xEF\xBF\xBD";
  std::string valid = "h\xC3\xA9llo \xF0\x9F\x98\x80 " + std::string(64, 'x');
  EXPECT_EQ(sanitize_utf8(valid), valid);
  EXPECT_EQ(sanitize_utf8("\x82\xAC!"), fffd + fffd + "!");
  EXPECT_EQ(sanitize_utf8("\xF4\x90\x80\x80"), fffd + fffd + fffd + fffd);
}

// Byte at a time, as the fast paths must agree with.
std::string sanitize_slowly(std::string_view bytes) {
  std::string out;
  for (std::size_t i = 0; i < bytes.size();) {
    if (static_cast<unsigned char>(bytes[i]) < 0x80) {
      out.push_back(bytes[i++]);
      continue;
    }
    std::size_t skip = 0;
    if (std::size_t len = utf8_sequence_length(bytes, i, skip); len > 0) {
      out.append(bytes.substr(i, len));
      i += len;
    } else {
      out += "\xEF\xBF\xBD";
      i += skip;
    }
  }
  return out;
}

TEST(JsonText, SanitizeFindsABrokenByteAtEveryPositionOfAnEightByteBlock) {
  const std::string breakers[] = {"\xFF", "\xC3", "\xE2\x82", "\xED\xA0\x80", "\xC3\xA9"};
  for (const std::string& b : breakers) {
    for (std::size_t at = 0; at < 20; ++at) {
      std::string s = std::string(at, 'a') + b + std::string(19 - at, 'z');
      EXPECT_EQ(sanitize_utf8(s), sanitize_slowly(s)) << at;
      EXPECT_EQ(sanitize_utf8_owned(s), sanitize_slowly(s)) << at;
    }
  }
}

TEST(JsonText, OwnedSanitizeHandsValidTextBackUnchanged) {
  std::string valid = std::string(1 << 16, 'x') + "\xE2\x82\xAC" + std::string(100, 'y');
  const std::string copy = valid;
  EXPECT_EQ(sanitize_utf8_owned(std::move(valid)), copy);
  std::mt19937 rng(11);
  for (int round = 0; round < 300; ++round) {
    std::string s;
    const int n = static_cast<int>(rng() % 48);
    for (int i = 0; i < n; ++i) s.push_back(static_cast<char>(rng() % 3 == 0 ? rng() % 256 : 'a' + rng() % 26));
    ASSERT_EQ(sanitize_utf8(s), sanitize_slowly(s));
    ASSERT_EQ(sanitize_utf8_owned(s), sanitize_slowly(s));
  }
}

}  // namespace
}  // namespace orch
