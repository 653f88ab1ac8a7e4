// The three prompts: listed with their arguments, filled in, and each bad
// request refused with a message that says what to send.
#include "tools/task_prompts.h"

#include <gtest/gtest.h>

namespace orch::tools {
namespace {

using nlohmann::json;

std::string text_of(const json& got) { return got.at("messages").at(0).at("content").at("text").get<std::string>(); }

TEST(TaskPrompts, ListsThreeWithDescribedArguments) {
  TaskPrompts p;
  json list = p.list();
  ASSERT_EQ(list.size(), 3u);
  std::vector<std::string> names;
  for (const json& prompt : list) {
    names.push_back(prompt.at("name"));
    EXPECT_GT(prompt.at("description").get<std::string>().size(), 30u);
    EXPECT_FALSE(prompt.at("title").get<std::string>().empty());
    for (const json& a : prompt.at("arguments")) {
      EXPECT_FALSE(a.at("description").get<std::string>().empty());
      EXPECT_TRUE(a.at("required").is_boolean());
    }
  }
  EXPECT_EQ(names, (std::vector<std::string>{"run-tests", "compare-agents", "watch-build"}));
}

TEST(TaskPrompts, FillsInTheArguments) {
  TaskPrompts p;
  auto tests = p.get("run-tests", {{"command", "ctest -j2"}, {"cwd", "/src"}});
  ASSERT_TRUE(tests) << tests.error().message;
  EXPECT_NE(text_of(*tests).find("\"ctest -j2\""), std::string::npos);
  EXPECT_NE(text_of(*tests).find("cwd \"/src\""), std::string::npos);
  EXPECT_NE(text_of(*tests).find("submitTask"), std::string::npos);
  EXPECT_EQ(tests->at("messages").at(0).at("role"), "user");
  auto compare = p.get("compare-agents", {{"request", "Why is the sky blue?"}, {"profiles", "claude,codex"}});
  ASSERT_TRUE(compare);
  EXPECT_NE(text_of(*compare).find("[claude,codex]"), std::string::npos);
  EXPECT_NE(text_of(*compare).find("Why is the sky blue?"), std::string::npos);
  auto build = p.get("watch-build", {{"command", "make -j8"}});
  ASSERT_TRUE(build);
  EXPECT_NE(text_of(*build).find("\"make -j8\""), std::string::npos);
  EXPECT_EQ(text_of(*build).find("cwd"), std::string::npos) << "no cwd given, none mentioned";
}

TEST(TaskPrompts, RefusesWhatCannotBeFilledIn) {
  TaskPrompts p;
  EXPECT_EQ(p.get("nope", json::object()).error().code, ErrorCode::NotFound);
  auto missing = p.get("run-tests", json::object());
  ASSERT_FALSE(missing);
  EXPECT_EQ(missing.error().code, ErrorCode::InvalidArgument);
  EXPECT_NE(missing.error().message.find("command"), std::string::npos);
  EXPECT_EQ(p.get("run-tests", {{"command", ""}}).error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(p.get("run-tests", {{"command", 5}}).error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(p.get("run-tests", {{"command", "x"}, {"extra", "y"}}).error().code, ErrorCode::InvalidArgument);
  EXPECT_EQ(p.get("compare-agents", {{"request", "x"}}).error().code, ErrorCode::InvalidArgument);
}

}  // namespace
}  // namespace orch::tools
