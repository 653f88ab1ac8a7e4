#include "engine/process_spawn.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>

#include "tests/support/temp_dir.h"

namespace orch::engine {
namespace {

TEST(ResolveExecutable, SearchesThePathInTheGivenEnvironment) {
  test::TempDir dir;
  const auto a = dir.path() / "a";
  const auto b = dir.path() / "b";
  std::filesystem::create_directories(a);
  std::filesystem::create_directories(b / "tool");  // a directory named like the tool
  std::ofstream(a / "tool") << "#!/bin/sh\n";
  ::chmod((a / "tool").c_str(), 0755);
  const std::string path = "PATH=" + b.string() + ":" + a.string();

  auto found = resolve_executable("tool", {"HOME=/nowhere", path});
  ASSERT_TRUE(found.ok()) << found.error().message;
  EXPECT_EQ(*found, (a / "tool").string());

  EXPECT_EQ(resolve_executable("./tool", {path}).value(), "./tool");  // has a slash: as is
  auto fallback = resolve_executable("sh", {});  // no PATH: /usr/local/bin:/usr/bin:/bin
  ASSERT_TRUE(fallback.ok()) << fallback.error().message;
  EXPECT_TRUE(fallback->ends_with("/bin/sh")) << *fallback;
}

TEST(ResolveExecutable, ExplainsWhatIsWrong) {
  test::TempDir dir;
  std::ofstream(dir.path() / "plain") << "data";
  ::chmod((dir.path() / "plain").c_str(), 0644);

  auto not_executable = resolve_executable("plain", {"PATH=" + dir.path().string()});
  ASSERT_FALSE(not_executable.ok());
  EXPECT_NE(not_executable.error().message.find("is not executable"), std::string::npos);

  auto missing = resolve_executable("nope", {"PATH=/nonexistent-dir"});
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.error().code, ErrorCode::NotFound);
  EXPECT_NE(missing.error().message.find("PATH=/nonexistent-dir"), std::string::npos);

  EXPECT_FALSE(resolve_executable("", {}).ok());
}

TEST(ResolveExecutable, IgnoresRelativePathEntries) {
  // "" and "." would mean the server's directory, not the task's.
  test::TempDir dir;
  std::ofstream(dir.path() / "tool") << "#!/bin/sh\n";
  ::chmod((dir.path() / "tool").c_str(), 0755);
  const auto previous = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  auto found = resolve_executable("tool", {"PATH=:.:bin"});
  std::filesystem::current_path(previous);
  EXPECT_FALSE(found.ok());
}

}  // namespace
}  // namespace orch::engine
