#include "app/install/registration.h"

namespace orch::app::install {

using nlohmann::ordered_json;

namespace {

struct EditorName {
  Editor editor;
  const char* name;
  const char* title;
};
constexpr EditorName kEditors[] = {
    {Editor::ClaudeCode, "claude-code", "Claude Code"},
    {Editor::Cursor, "cursor", "Cursor"},
    {Editor::VsCode, "vscode", "VS Code"},
    {Editor::ClaudeDesktop, "claude-desktop", "Claude Desktop"},
};

const EditorName& entry_of(Editor editor) {
  for (const auto& e : kEditors) {
    if (e.editor == editor) return e;
  }
  return kEditors[0];
}

// The bearer header in the editor's own reference syntax, so that the token
// stays out of the file (peers.md §4: Claude Code expands ${VAR} in headers,
// Cursor ${env:VAR}, VS Code ${input:id} from a password prompt).
std::string token_reference(Editor editor) {
  switch (editor) {
    case Editor::ClaudeCode: return std::string("${") + kTokenVariable + "}";
    case Editor::Cursor: return std::string("${env:") + kTokenVariable + "}";
    case Editor::VsCode: return std::string("${input:") + kVsCodeTokenInput + "}";
    case Editor::ClaudeDesktop: break;
  }
  return {};
}

std::filesystem::path mac_support(const Places& places) {
  return places.home / "Library" / "Application Support";
}

}  // namespace

Result<Editor> parse_editor(const std::string& name) {
  std::string known;
  for (const auto& e : kEditors) {
    if (name == e.name) return e.editor;
    known += (known.empty() ? "" : ", ") + std::string(e.name);
  }
  return make_error(ErrorCode::InvalidArgument, "unknown editor \"" + name + "\" (known: " + known + ")");
}

const char* editor_name(Editor editor) { return entry_of(editor).name; }
const char* editor_title(Editor editor) { return entry_of(editor).title; }

Result<Scope> parse_scope(const std::string& name) {
  if (name == "user") return Scope::User;
  if (name == "project") return Scope::Project;
  return make_error(ErrorCode::InvalidArgument, "--scope must be user or project, got \"" + name + "\"");
}

const char* scope_name(Scope scope) { return scope == Scope::User ? "user" : "project"; }

Result<std::filesystem::path> config_file(Editor editor, Scope scope, const Places& places) {
  const bool mac = places.platform == Platform::MacOs;
  switch (editor) {
    case Editor::ClaudeCode:
      if (scope == Scope::Project) return places.project / ".mcp.json";
      return (places.claude_config_dir.empty() ? places.home : places.claude_config_dir) / ".claude.json";
    case Editor::Cursor:
      return (scope == Scope::Project ? places.project : places.home) / ".cursor" / "mcp.json";
    case Editor::VsCode:
      if (scope == Scope::Project) return places.project / ".vscode" / "mcp.json";
      return (mac ? mac_support(places) : places.config_home) / "Code" / "User" / "mcp.json";
    case Editor::ClaudeDesktop:
      if (scope == Scope::Project) {
        return make_error(ErrorCode::InvalidArgument,
                          "Claude Desktop has no project config; use --scope user (the default)");
      }
      return (mac ? mac_support(places) : places.config_home) / "Claude" / "claude_desktop_config.json";
  }
  return make_error(ErrorCode::Internal, "unknown editor");
}

const char* servers_key(Editor editor) { return editor == Editor::VsCode ? "servers" : "mcpServers"; }

Result<ordered_json> server_entry(Editor editor, const Target& target) {
  ordered_json entry = ordered_json::object();
  if (target.url) {
    if (editor == Editor::ClaudeDesktop) {
      return make_error(ErrorCode::InvalidArgument,
                        "Claude Desktop's config file takes stdio servers only (an entry with a URL is "
                        "dropped); register without --http, or install the .mcpb bundle");
    }
    // Cursor tells HTTP from stdio by the presence of "url"; the others want a type.
    if (editor != Editor::Cursor) entry["type"] = "http";
    entry["url"] = *target.url;
    if (target.auth) entry["headers"] = {{"Authorization", "Bearer " + token_reference(editor)}};
    return entry;
  }
  if (editor == Editor::ClaudeCode || editor == Editor::VsCode) entry["type"] = "stdio";
  entry["command"] = target.binary.string();
  entry["args"] = target.args;
  if (editor == Editor::ClaudeCode || !target.env.empty()) entry["env"] = target.env;
  return entry;
}

ordered_json companion_members(Editor editor, const Target& target) {
  ordered_json out = ordered_json::object();
  if (editor == Editor::VsCode && target.url && target.auth) {
    out["inputs"] = ordered_json::array({{{"type", "promptString"},
                                         {"id", kVsCodeTokenInput},
                                         {"description", "mcp-orchestrator bearer token (the http-token file in its state directory)"},
                                         {"password", true}}});
  }
  return out;
}

}  // namespace orch::app::install
