// Registration: what each editor wants in its MCP config file to start or
// reach this server (shared research/peers.md §4). Pure functions of their
// arguments: no files, no environment; thread-safe.
//
//   editor          file (user scope / project scope)            servers key
//   claude-code     ~/.claude.json / .mcp.json                    mcpServers
//                   ($CLAUDE_CONFIG_DIR/.claude.json when that is set)
//   cursor          ~/.cursor/mcp.json / .cursor/mcp.json         mcpServers
//   vscode          <config>/Code/User/mcp.json / .vscode/mcp.json servers (+ inputs)
//   claude-desktop  <config>/Claude/claude_desktop_config.json    mcpServers (stdio only)
//
// Over HTTP the bearer token is never written into a file: each entry names
// it by the editor's own reference syntax (Claude Code `${ORCH_TOKEN}`, Cursor
// `${env:ORCH_TOKEN}`, VS Code a password prompt `${input:…}`), and Claude
// Desktop, whose file takes stdio servers only, is refused over HTTP.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace orch::app::install {

enum class Editor { ClaudeCode, Cursor, VsCode, ClaudeDesktop };
enum class Scope { User, Project };
enum class Platform { Linux, MacOs };

// "claude-code" → Editor::ClaudeCode; unknown names list the known ones.
Result<Editor> parse_editor(const std::string& name);
const char* editor_name(Editor editor);         // "claude-code"
const char* editor_title(Editor editor);        // "Claude Code"
Result<Scope> parse_scope(const std::string& name);
const char* scope_name(Scope scope);

// The environment variable that holds the bearer token for HTTP entries.
inline constexpr const char* kTokenVariable = "ORCH_TOKEN";

// What to register: the stdio server (the binary and its arguments), or a
// running HTTP server's /mcp URL.
struct Target {
  std::string name = "orchestrator";   // key under the servers object
  std::filesystem::path binary;        // absolute; stdio only
  std::vector<std::string> args;       // stdio only
  nlohmann::ordered_json env = nlohmann::ordered_json::object();  // stdio only
  std::optional<std::string> url;      // set: HTTP; ".../mcp"
  bool auth = true;                    // HTTP: send the bearer token
};

// Where the editor keeps its config file. `home` is $HOME, `config_home` the
// XDG config directory (Linux) — both passed in so tests choose them.
struct Places {
  std::filesystem::path home;
  std::filesystem::path config_home;   // Linux: $XDG_CONFIG_HOME or ~/.config
  std::filesystem::path project;       // the project root (project scope)
  std::filesystem::path claude_config_dir;  // $CLAUDE_CONFIG_DIR; empty: unset
  Platform platform = Platform::Linux;
};
Result<std::filesystem::path> config_file(Editor editor, Scope scope, const Places& places);

// The top-level key that holds the servers: "servers" for VS Code, else "mcpServers".
const char* servers_key(Editor editor);

// The object the editor wants under servers_key()[target.name]. Refused:
// Claude Desktop over HTTP.
Result<nlohmann::ordered_json> server_entry(Editor editor, const Target& target);

// Other top-level members the entry needs (VS Code's password prompt for the
// token: {"inputs":[…]}); an empty object when none.
nlohmann::ordered_json companion_members(Editor editor, const Target& target);

// The id of VS Code's token prompt.
inline constexpr const char* kVsCodeTokenInput = "orchestrator-token";

}  // namespace orch::app::install
