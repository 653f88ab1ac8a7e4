#include "app/install/registration.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace orch::app::install {
namespace {

using nlohmann::ordered_json;
using ::testing::HasSubstr;

Target stdio_target() {
  Target t;
  t.binary = "/opt/orch/bin/mcp-orchestrator";
  return t;
}

Target http_target() {
  Target t;
  t.url = "http://127.0.0.1:8765/mcp";
  return t;
}

Places places() {
  Places p;
  p.home = "/home/u";
  p.config_home = "/home/u/.config";
  p.project = "/src/app";
  return p;
}

TEST(Registration, ParsesTheFourEditorsAndListsThemOnAMistake) {
  EXPECT_EQ(*parse_editor("claude-code"), Editor::ClaudeCode);
  EXPECT_EQ(*parse_editor("cursor"), Editor::Cursor);
  EXPECT_EQ(*parse_editor("vscode"), Editor::VsCode);
  EXPECT_EQ(*parse_editor("claude-desktop"), Editor::ClaudeDesktop);
  auto bad = parse_editor("emacs");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.error().message, HasSubstr("claude-code, cursor, vscode, claude-desktop"));
}

TEST(Registration, FilesPerEditorAndScope) {
  const Places p = places();
  EXPECT_EQ(*config_file(Editor::ClaudeCode, Scope::User, p), "/home/u/.claude.json");
  EXPECT_EQ(*config_file(Editor::ClaudeCode, Scope::Project, p), "/src/app/.mcp.json");
  EXPECT_EQ(*config_file(Editor::Cursor, Scope::User, p), "/home/u/.cursor/mcp.json");
  EXPECT_EQ(*config_file(Editor::Cursor, Scope::Project, p), "/src/app/.cursor/mcp.json");
  EXPECT_EQ(*config_file(Editor::VsCode, Scope::User, p), "/home/u/.config/Code/User/mcp.json");
  EXPECT_EQ(*config_file(Editor::VsCode, Scope::Project, p), "/src/app/.vscode/mcp.json");
  EXPECT_EQ(*config_file(Editor::ClaudeDesktop, Scope::User, p), "/home/u/.config/Claude/claude_desktop_config.json");
  EXPECT_FALSE(config_file(Editor::ClaudeDesktop, Scope::Project, p).ok());
}

TEST(Registration, MacOsKeepsVsCodeAndDesktopUnderApplicationSupport) {
  Places p = places();
  p.platform = Platform::MacOs;
  EXPECT_EQ(*config_file(Editor::VsCode, Scope::User, p), "/home/u/Library/Application Support/Code/User/mcp.json");
  EXPECT_EQ(*config_file(Editor::ClaudeDesktop, Scope::User, p),
            "/home/u/Library/Application Support/Claude/claude_desktop_config.json");
}

TEST(Registration, ClaudeConfigDirMovesClaudeCodesUserFile) {
  Places p = places();
  p.claude_config_dir = "/tmp/claude";
  EXPECT_EQ(*config_file(Editor::ClaudeCode, Scope::User, p), "/tmp/claude/.claude.json");
  EXPECT_EQ(*config_file(Editor::ClaudeCode, Scope::Project, p), "/src/app/.mcp.json");
}

TEST(Registration, StdioShapes) {
  const Target t = stdio_target();
  EXPECT_EQ(*server_entry(Editor::ClaudeCode, t),
            ordered_json::parse(R"({"type":"stdio","command":"/opt/orch/bin/mcp-orchestrator","args":[],"env":{}})"));
  EXPECT_EQ(*server_entry(Editor::Cursor, t),
            ordered_json::parse(R"({"command":"/opt/orch/bin/mcp-orchestrator","args":[]})"));
  EXPECT_EQ(*server_entry(Editor::VsCode, t),
            ordered_json::parse(R"({"type":"stdio","command":"/opt/orch/bin/mcp-orchestrator","args":[]})"));
  EXPECT_EQ(*server_entry(Editor::ClaudeDesktop, t),
            ordered_json::parse(R"({"command":"/opt/orch/bin/mcp-orchestrator","args":[]})"));
  EXPECT_EQ(servers_key(Editor::VsCode), std::string("servers"));
  EXPECT_EQ(servers_key(Editor::Cursor), std::string("mcpServers"));
}

TEST(Registration, StdioCarriesArgsAndEnv) {
  Target t = stdio_target();
  t.args = {"--state-dir", "/var/orch"};
  t.env["PATH"] = "/usr/bin:/bin";
  auto entry = *server_entry(Editor::ClaudeDesktop, t);
  EXPECT_EQ(entry.at("args"), ordered_json::parse(R"(["--state-dir","/var/orch"])"));
  EXPECT_EQ(entry.at("env").at("PATH"), "/usr/bin:/bin");
}

TEST(Registration, HttpNamesTheTokenByReferenceInEachEditorsSyntax) {
  const Target t = http_target();
  EXPECT_EQ(*server_entry(Editor::ClaudeCode, t),
            ordered_json::parse(R"({"type":"http","url":"http://127.0.0.1:8765/mcp",
                                    "headers":{"Authorization":"Bearer ${ORCH_TOKEN}"}})"));
  EXPECT_EQ(*server_entry(Editor::Cursor, t),
            ordered_json::parse(R"({"url":"http://127.0.0.1:8765/mcp",
                                    "headers":{"Authorization":"Bearer ${env:ORCH_TOKEN}"}})"));
  EXPECT_EQ(*server_entry(Editor::VsCode, t),
            ordered_json::parse(R"({"type":"http","url":"http://127.0.0.1:8765/mcp",
                                    "headers":{"Authorization":"Bearer ${input:orchestrator-token}"}})"));
  auto inputs = companion_members(Editor::VsCode, t);
  ASSERT_TRUE(inputs.contains("inputs"));
  EXPECT_EQ(inputs["inputs"][0]["id"], "orchestrator-token");
  EXPECT_EQ(inputs["inputs"][0]["password"], true);
  EXPECT_TRUE(companion_members(Editor::Cursor, t).empty());
  EXPECT_TRUE(companion_members(Editor::VsCode, stdio_target()).empty());
}

TEST(Registration, HttpWithoutAuthSendsNoHeader) {
  Target t = http_target();
  t.auth = false;
  EXPECT_FALSE(server_entry(Editor::ClaudeCode, t)->contains("headers"));
  EXPECT_TRUE(companion_members(Editor::VsCode, t).empty());
}

TEST(Registration, ClaudeDesktopRefusesHttp) {
  auto entry = server_entry(Editor::ClaudeDesktop, http_target());
  ASSERT_FALSE(entry.ok());
  EXPECT_THAT(entry.error().message, HasSubstr("stdio servers only"));
}

}  // namespace
}  // namespace orch::app::install
