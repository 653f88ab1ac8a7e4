#include "engine/profile.h"

#include <gtest/gtest.h>

namespace orch::engine {
namespace {

Profile agent() {
  Profile p;
  p.name = "claude";
  p.argv = {"claude", "-p", "{prompt}", "--model={model}", "{{literal}}"};
  p.env = {{"A", "1"}};
  p.cwd = "/tmp";
  p.timeout_ms = 5000;
  p.limits.memory_mb = 100;
  return p;
}

TEST(Profile, FindsPlaceholdersOnceInOrder) {
  auto names = argv_placeholders({"x", "{a}-{b}", "{a}", "{{not}}"});
  ASSERT_TRUE(names.ok()) << names.error().message;
  EXPECT_EQ(*names, (std::vector<std::string>{"a", "b"}));
}

TEST(Profile, RefusesBrokenPlaceholdersNamingTheElement) {
  for (const char* bad : {"{open", "close}", "{}", "{1x}", "{a b}"}) {
    auto names = argv_placeholders({"prog", bad});
    ASSERT_FALSE(names.ok()) << bad;
    EXPECT_NE(names.error().message.find("argv[1]"), std::string::npos) << names.error().message;
  }
}

TEST(Profile, SubstitutesElementByElementWithoutAShell) {
  const std::string prompt = "it's \"quoted\"; rm -rf / $(whoami)\nsecond line";
  auto spec = expand_profile(agent(), {{"prompt", prompt}, {"model", "x y"}}, std::nullopt);
  ASSERT_TRUE(spec.ok()) << spec.error().message;
  EXPECT_EQ(spec->kind, TaskKind::Argv);
  EXPECT_EQ(spec->argv, (std::vector<std::string>{"claude", "-p", prompt, "--model=x y", "{literal}"}));
  EXPECT_EQ(spec->profile, "claude");
  EXPECT_EQ(spec->env.at("A"), "1");
  EXPECT_EQ(spec->cwd, "/tmp");
  EXPECT_EQ(spec->timeout_ms, 5000);
  EXPECT_EQ(spec->limits.memory_mb, 100);
}

TEST(Profile, MissingAndUnknownParamsAreClearErrors) {
  auto missing = expand_profile(agent(), {{"prompt", "p"}}, std::nullopt);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.error().message.find("needs params.model"), std::string::npos) << missing.error().message;
  auto unknown = expand_profile(agent(), {{"prompt", "p"}, {"model", "m"}, {"extra", "e"}}, std::nullopt);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.error().message.find("params.extra"), std::string::npos);
  EXPECT_NE(unknown.error().message.find("prompt, model"), std::string::npos) << "names what it takes";
  auto input = expand_profile(agent(), {{"prompt", "p"}, {"model", "m"}}, std::string("{}"));
  ASSERT_FALSE(input.ok());
  EXPECT_NE(input.error().message.find("not input"), std::string::npos);
}

TEST(Profile, AnEmptyProgramAfterSubstitutionIsRefused) {
  Profile p;
  p.name = "any";
  p.argv = {"{program}"};
  EXPECT_FALSE(expand_profile(p, {{"program", ""}}, std::nullopt).ok());
  EXPECT_TRUE(expand_profile(p, {{"program", "ls"}}, std::nullopt).ok());
}

TEST(Profile, APoolProfileTakesInputNotParams) {
  Profile p;
  p.name = "echo";
  p.mode = ProfileMode::Pool;
  p.argv = {"python3", "worker.py"};
  auto spec = expand_profile(p, {}, std::string(R"({"x":1})"));
  ASSERT_TRUE(spec.ok());
  EXPECT_EQ(spec->kind, TaskKind::Pool);
  EXPECT_EQ(spec->input_json, R"({"x":1})");
  EXPECT_EQ(expand_profile(p, {}, std::nullopt)->input_json, "null");
  EXPECT_FALSE(expand_profile(p, {{"a", "b"}}, std::nullopt).ok());
}

}  // namespace
}  // namespace orch::engine
