#include "app/install/config_merge.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace orch::app::install {
namespace {

using nlohmann::ordered_json;
using ::testing::HasSubstr;

const ordered_json kEntry = ordered_json::parse(R"({"command":"/bin/mcp-orchestrator","args":[]})");

TEST(ConfigMerge, AddsToAMissingFile) {
  auto m = merge_server("", "f.json", "mcpServers", "orchestrator", kEntry);
  ASSERT_TRUE(m.ok()) << m.error().message;
  EXPECT_TRUE(m->changed);
  EXPECT_FALSE(m->replaced);
  EXPECT_EQ(ordered_json::parse(m->text), ordered_json::parse(R"({"mcpServers":{"orchestrator":{"command":"/bin/mcp-orchestrator","args":[]}}})"));
  EXPECT_EQ(m->text.back(), '\n');
}

TEST(ConfigMerge, KeepsOtherServersAndMembersInTheirOrder) {
  const std::string before = R"({"zeta":1,"mcpServers":{"other":{"command":"x"},"alpha":{"url":"http://h/mcp"}},"after":[1,2]})";
  auto m = merge_server(before, "f.json", "mcpServers", "orchestrator", kEntry);
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto after = ordered_json::parse(m->text);
  std::vector<std::string> top, servers;
  for (const auto& [k, v] : after.items()) top.push_back(k);
  for (const auto& [k, v] : after["mcpServers"].items()) servers.push_back(k);
  EXPECT_EQ(top, (std::vector<std::string>{"zeta", "mcpServers", "after"}));
  EXPECT_EQ(servers, (std::vector<std::string>{"other", "alpha", "orchestrator"}));
  EXPECT_EQ(after["mcpServers"]["other"], ordered_json::parse(R"({"command":"x"})"));
  EXPECT_EQ(after["after"], ordered_json::parse("[1,2]"));
}

TEST(ConfigMerge, ReplacesItsOwnEntryAndSaysSo) {
  const std::string before = R"({"mcpServers":{"orchestrator":{"command":"/old"}}})";
  auto m = merge_server(before, "f.json", "mcpServers", "orchestrator", kEntry);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->replaced);
  EXPECT_EQ(ordered_json::parse(m->text)["mcpServers"]["orchestrator"], kEntry);
}

TEST(ConfigMerge, TheSameEntryAgainChangesNothing) {
  auto first = merge_server("", "f.json", "mcpServers", "orchestrator", kEntry);
  ASSERT_TRUE(first.ok());
  auto again = merge_server(first->text, "f.json", "mcpServers", "orchestrator", kEntry);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->changed);
  EXPECT_FALSE(again->replaced);
}

TEST(ConfigMerge, RefusesTextThatIsNotJsonNamingTheFile) {
  auto m = merge_server("{\"mcpServers\": {", "/home/u/.cursor/mcp.json", "mcpServers", "orchestrator", kEntry);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.error().message, HasSubstr("/home/u/.cursor/mcp.json: is not valid JSON"));
  EXPECT_THAT(m.error().message, HasSubstr("left it untouched"));
}

TEST(ConfigMerge, RefusesCommentsRatherThanDroppingThem) {
  auto m = merge_server("{\n  // mine\n  \"servers\": {}\n}", "mcp.json", "servers", "orchestrator", kEntry);
  ASSERT_FALSE(m.ok());
  EXPECT_THAT(m.error().message, HasSubstr("comments"));
}

TEST(ConfigMerge, RefusesWrongShapes) {
  EXPECT_THAT(merge_server("[1]", "f", "mcpServers", "o", kEntry).error().message, HasSubstr("not an object"));
  EXPECT_THAT(merge_server(R"({"mcpServers":[]})", "f", "mcpServers", "o", kEntry).error().message,
              HasSubstr("\"mcpServers\" is not an object"));
  EXPECT_THAT(merge_server(R"({"inputs":{}})", "f", "servers", "o", kEntry,
                           ordered_json::parse(R"({"inputs":[{"id":"t"}]})"))
                  .error()
                  .message,
              HasSubstr("\"inputs\" is not an array"));
}

TEST(ConfigMerge, MergesVsCodeInputsById) {
  const std::string before = R"({"inputs":[{"id":"other","type":"promptString"},{"id":"t","old":true}],"servers":{}})";
  auto m = merge_server(before, "f", "servers", "o", kEntry,
                        ordered_json::parse(R"({"inputs":[{"id":"t","type":"promptString"}]})"));
  ASSERT_TRUE(m.ok()) << m.error().message;
  auto inputs = ordered_json::parse(m->text)["inputs"];
  ASSERT_EQ(inputs.size(), 2u);
  EXPECT_EQ(inputs[0]["id"], "other");
  EXPECT_EQ(inputs[1], ordered_json::parse(R"({"id":"t","type":"promptString"})"));
}

TEST(ConfigMerge, WhiteSpaceOnlyCountsAsEmpty) {
  auto m = merge_server(" \n", "f", "mcpServers", "o", kEntry);
  ASSERT_TRUE(m.ok());
  EXPECT_TRUE(m->changed);
}

}  // namespace
}  // namespace orch::app::install
