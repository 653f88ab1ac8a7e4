#include "app/install/claude_lines.h"

#include <gtest/gtest.h>

namespace orch::app::install {
namespace {

TEST(ClaudeLines, QuotesOnlyWhatTheShellWouldChange) {
  EXPECT_EQ(shell_quote("/usr/bin/mcp-orchestrator"), "/usr/bin/mcp-orchestrator");
  EXPECT_EQ(shell_quote("/a b/x"), "'/a b/x'");
  EXPECT_EQ(shell_quote("it's"), "'it'\\''s'");
  EXPECT_EQ(shell_quote("${HOME}"), "'${HOME}'");
  EXPECT_EQ(shell_quote(""), "''");
}

TEST(ClaudeLines, StdioAdd) {
  Target t;
  t.binary = "/opt/my tools/mcp-orchestrator";
  t.args = {"--state-dir", "/var/orch"};
  EXPECT_EQ(claude_mcp_add(t, Scope::User),
            "claude mcp add --scope user orchestrator -- '/opt/my tools/mcp-orchestrator' --state-dir /var/orch");
  EXPECT_EQ(claude_mcp_add_json(t, Scope::Project),
            "claude mcp add-json --scope project orchestrator "
            "'{\"type\":\"stdio\",\"command\":\"/opt/my tools/mcp-orchestrator\","
            "\"args\":[\"--state-dir\",\"/var/orch\"],\"env\":{}}'");
}

TEST(ClaudeLines, HttpAddKeepsTheTokenReferenceFromTheShell) {
  Target t;
  t.url = "http://127.0.0.1:8765/mcp";
  EXPECT_EQ(claude_mcp_add(t, Scope::User),
            "claude mcp add --scope user --transport http orchestrator http://127.0.0.1:8765/mcp "
            "--header 'Authorization: Bearer ${ORCH_TOKEN}'");
  t.auth = false;
  EXPECT_EQ(claude_mcp_add(t, Scope::Project),
            "claude mcp add --scope project --transport http orchestrator http://127.0.0.1:8765/mcp");
}

}  // namespace
}  // namespace orch::app::install
