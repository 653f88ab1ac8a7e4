// `mcp-orchestrator install <editor> [--write]` (SPEC §9) run as its own
// process against real files in a throwaway HOME: merging into a file that
// holds other servers, the backup, and the refusal to touch a file it cannot
// parse.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "tests/support/server_process.h"

namespace orch::test {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void spit(const fs::path& p, const std::string& text) {
  fs::create_directories(p.parent_path());
  std::ofstream(p, std::ios::binary) << text;
}

int code(const RunResult& r) { return r.status && r.status->exited ? r.status->code : -1; }

class Install : public IntegrationTest {
 protected:
  RunResult install(std::vector<std::string> args) {
    args.insert(args.begin(), "install");
    return run_binary(std::move(args), {"HOME=" + home_.path().string(),
                                        "XDG_CONFIG_HOME=" + (home_.path() / ".config").string(),
                                        "CLAUDE_CONFIG_DIR="});
  }
  fs::path home() const { return home_.path(); }
  TempDir home_;
};

TEST_F(Install, WriteMergesBesideOtherServersAndKeepsABackup) {
  const fs::path file = home() / ".cursor" / "mcp.json";
  const std::string original =
      R"({"mcpServers": {"other": {"command": "/usr/bin/other", "args": ["--x"]}}, "keep": {"me": true}})";
  spit(file, original);

  RunResult r = install({"cursor", "--write"});
  ASSERT_EQ(code(r), 0) << r.err;
  EXPECT_NE(r.out.find("added \"orchestrator\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(file.string() + ".bak"), std::string::npos) << r.out;

  json after = json::parse(slurp(file));
  EXPECT_EQ(after["mcpServers"]["other"], json::parse(R"({"command": "/usr/bin/other", "args": ["--x"]})"));
  EXPECT_EQ(after["keep"], json::parse(R"({"me": true})"));
  EXPECT_EQ(after["mcpServers"]["orchestrator"]["command"], fs::canonical(ORCH_BINARY).string());
  EXPECT_EQ(after["mcpServers"]["orchestrator"]["args"], json::array());
  EXPECT_EQ(slurp(file.string() + ".bak"), original);

  // Again: nothing changes, and no second backup appears.
  RunResult again = install({"cursor", "--write"});
  ASSERT_EQ(code(again), 0) << again.err;
  EXPECT_NE(again.out.find("nothing to do"), std::string::npos) << again.out;
  EXPECT_FALSE(fs::exists(file.string() + ".bak.1"));
}

TEST_F(Install, RefusesAFileItCannotParseAndLeavesItUntouched) {
  const fs::path file = home() / ".config" / "Claude" / "claude_desktop_config.json";
  const std::string broken = "{\"mcpServers\": {\"other\": {\"command\": \"x\"},}\n";
  spit(file, broken);
  const auto mtime = fs::last_write_time(file);

  RunResult r = install({"claude-desktop", "--write"});
  EXPECT_EQ(code(r), 1);
  EXPECT_NE(r.err.find(file.string() + ": is not valid JSON"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("left it untouched"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(file), broken);
  EXPECT_EQ(fs::last_write_time(file), mtime);
  for (const auto& entry : fs::directory_iterator(file.parent_path())) {
    EXPECT_EQ(entry.path(), file) << "install left " << entry.path() << " behind";
  }
}

TEST_F(Install, RefusesCommentsInsteadOfDroppingThem) {
  const fs::path file = home() / "proj" / ".vscode" / "mcp.json";
  const std::string jsonc = "{\n  // my servers\n  \"servers\": {}\n}\n";
  spit(file, jsonc);
  RunResult r = install({"vscode", "--scope", "project", "--project-dir", (home() / "proj").string(), "--write"});
  EXPECT_EQ(code(r), 1);
  EXPECT_NE(r.err.find("comments"), std::string::npos) << r.err;
  EXPECT_EQ(slurp(file), jsonc);
}

TEST_F(Install, PrintingWritesNothing) {
  RunResult r = install({"vscode"});
  ASSERT_EQ(code(r), 0) << r.err;
  EXPECT_NE(r.out.find("\"servers\""), std::string::npos) << r.out;
  EXPECT_NE(r.out.find(fs::canonical(ORCH_BINARY).string()), std::string::npos) << r.out;
  EXPECT_FALSE(fs::exists(home() / ".config" / "Code"));

  RunResult claude = install({"claude-code"});
  ASSERT_EQ(code(claude), 0) << claude.err;
  EXPECT_NE(claude.out.find("\nclaude mcp add --scope user orchestrator -- " + fs::canonical(ORCH_BINARY).string() + "\n"),
            std::string::npos)
      << claude.out;
  EXPECT_NE(claude.out.find("\nclaude mcp add-json --scope user orchestrator '{\"type\":\"stdio\""), std::string::npos)
      << claude.out;
  EXPECT_FALSE(fs::exists(home() / ".claude.json"));
}

TEST_F(Install, HttpNamesTheRunningServerAndNeverWritesTheToken) {
  ServerProcess& server = start_server(std::vector<std::string>{"--http", "127.0.0.1:0"});
  const std::string url = server.http_url();
  ASSERT_FALSE(url.empty());
  const std::string token = server.http_token();
  ASSERT_FALSE(token.empty());
  const fs::path project = home() / "proj";
  RunResult r = install({"vscode", "--http", "--scope", "project", "--project-dir", project.string(), "--state-dir",
                         server.state_dir().string(), "--write"});
  ASSERT_EQ(code(r), 0) << r.err;
  const std::string text = slurp(project / ".vscode" / "mcp.json");
  EXPECT_EQ(text.find(token), std::string::npos) << "the token is in the project's file";
  json file = json::parse(text);
  EXPECT_EQ(file["servers"]["orchestrator"]["type"], "http");
  EXPECT_EQ(file["servers"]["orchestrator"]["url"], url + "/mcp");
  EXPECT_EQ(file["servers"]["orchestrator"]["headers"]["Authorization"], "Bearer ${input:orchestrator-token}");
  EXPECT_EQ(file["inputs"][0]["id"], "orchestrator-token");
  EXPECT_EQ(r.out.find(token), std::string::npos) << "the token was printed";

  RunResult desktop = install({"claude-desktop", "--http", "--state-dir", server.state_dir().string(), "--write"});
  EXPECT_EQ(code(desktop), 1);
  EXPECT_NE(desktop.err.find("stdio servers only"), std::string::npos) << desktop.err;
  EXPECT_FALSE(fs::exists(home() / ".config" / "Claude"));
}

TEST_F(Install, HttpWithoutARunningServerSaysHowToStartOne) {
  TempDir empty;
  RunResult r = install({"cursor", "--http", "--state-dir", empty.path().string()});
  EXPECT_EQ(code(r), 1);
  EXPECT_NE(r.err.find("no running server"), std::string::npos) << r.err;
}

TEST_F(Install, UsageErrors) {
  EXPECT_EQ(code(install({})), 2);
  EXPECT_EQ(code(install({"cursor", "--scope", "global"})), 2);
  RunResult unknown = install({"emacs"});
  EXPECT_EQ(code(unknown), 2);
  EXPECT_NE(unknown.err.find("claude-code, cursor, vscode, claude-desktop"), std::string::npos) << unknown.err;
  RunResult help = install({"--help"});
  EXPECT_EQ(code(help), 0);
  EXPECT_NE(help.out.find("--write"), std::string::npos);
}

}  // namespace
}  // namespace orch::test
