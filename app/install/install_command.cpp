#include "app/install/install_command.h"

#include <unistd.h>

#include <CLI/CLI.hpp>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <vector>

#include "app/client/server_endpoint.h"
#include "app/config.h"
#include "app/install/backup_write.h"
#include "app/install/claude_lines.h"
#include "app/install/config_merge.h"
#include "app/install/registration.h"

namespace orch::app::install {

namespace fs = std::filesystem;
using nlohmann::ordered_json;

namespace {

struct Options {
  std::string editor;
  std::string scope = "user";
  bool http = false;
  bool write = false;
  std::string url;
  std::string name = "orchestrator";
  std::string state_dir;
  std::string config;
  std::string project_dir;
  std::string file;
  std::vector<std::string> words;  // the command line after "install", to print back with --write
};

int refuse(const std::string& message) {
  std::fprintf(stderr, "mcp-orchestrator install: %s\n", message.c_str());
  return 1;
}

int usage_error(const std::string& message) {
  refuse(message);
  return 2;
}

std::string env_or(const char* name, const std::string& fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::string(v) : fallback;
}

// This very binary, so an editor starts the same build that printed the line.
Result<fs::path> own_binary() {
  std::error_code ec;
  fs::path self = fs::read_symlink("/proc/self/exe", ec);
  if (ec) return make_error(ErrorCode::Io, "cannot tell where this binary is (/proc/self/exe): " + ec.message());
  return self;
}

Places places_from_environment(const Options& o) {
  Places p;
  p.home = env_or("HOME", ".");
  const std::string xdg = env_or("XDG_CONFIG_HOME", "");
  p.config_home = !xdg.empty() && xdg.front() == '/' ? fs::path(xdg) : p.home / ".config";
  p.claude_config_dir = env_or("CLAUDE_CONFIG_DIR", "");
  std::error_code ec;
  p.project = fs::absolute(o.project_dir.empty() ? fs::current_path(ec) : fs::path(o.project_dir), ec);
#ifdef __APPLE__
  p.platform = Platform::MacOs;
#endif
  return p;
}

Result<Target> make_target(const Options& o, Editor editor, fs::path* token_file) {
  Target t;
  t.name = o.name;
  const fs::path state = o.state_dir.empty() ? default_state_dir() : fs::absolute(o.state_dir);
  if (o.http) {
    if (!o.url.empty()) {
      t.url = o.url;
    } else {
      auto server = client::find_server(state);
      if (!server) return server.error();
      t.url = server->mcp;
      t.auth = server->auth;
      *token_file = server->token_file;
    }
    return t;
  }
  auto binary = own_binary();
  if (!binary) return binary.error();
  t.binary = *binary;
  if (!o.state_dir.empty()) t.args = {"--state-dir", state.string()};
  if (!o.config.empty()) {
    t.args.push_back("--config");
    t.args.push_back(fs::absolute(o.config).string());
  }
  // Claude Desktop is a GUI app: it starts servers with the login session's
  // PATH, not the shell's, so `npm test` in a task would not be found.
  if (editor == Editor::ClaudeDesktop) t.env["PATH"] = env_or("PATH", "/usr/local/bin:/usr/bin:/bin");
  return t;
}

void print_token_hint(Editor editor, const Target& t, const fs::path& token_file) {
  if (!t.url || !t.auth) return;
  const std::string file = token_file.empty() ? std::string("<state-dir>/http-token") : token_file.string();
  if (editor == Editor::VsCode) {
    std::cout << "# VS Code asks for the token once (input \"" << kVsCodeTokenInput << "\"); it is in " << file << "\n";
    return;
  }
  std::cout << "# The token is not in the file: the editor reads $" << kTokenVariable
            << " when it connects. Start the editor from a shell that has\n"
            << "#   export " << kTokenVariable << "=\"$(cat " << shell_quote(file) << ")\"\n";
}

int run_install(const Options& o) {
  auto editor = parse_editor(o.editor);
  if (!editor) return usage_error(editor.error().message);
  auto scope = parse_scope(o.scope);
  if (!scope) return usage_error(scope.error().message);
  fs::path token_file;
  auto target = make_target(o, *editor, &token_file);
  if (!target) return refuse(target.error().message);
  auto entry = server_entry(*editor, *target);
  if (!entry) return refuse(entry.error().message);
  const ordered_json extra = companion_members(*editor, *target);
  const Places places = places_from_environment(o);
  auto file = o.file.empty() ? config_file(*editor, *scope, places) : Result<fs::path>(fs::absolute(o.file));
  if (!file) return refuse(file.error().message);
  const std::string how = target->url ? "Streamable HTTP at " + *target->url : "stdio (the editor starts " +
                                                                                   target->binary.string() + ")";

  if (!o.write) {
    std::cout << "# " << editor_title(*editor) << ", " << scope_name(*scope) << " scope, " << how << "\n";
    if (*editor == Editor::ClaudeCode) {
      std::cout << "# Register it with:\n" << claude_mcp_add(*target, *scope) << "\n"
                << "# or, the same as JSON:\n" << claude_mcp_add_json(*target, *scope) << "\n";
    }
    std::string again = "mcp-orchestrator install";
    for (const std::string& word : o.words) again += " " + shell_quote(word);
    std::cout << "# " << (*editor == Editor::ClaudeCode ? "Or write" : "Write") << " it into " << file->string()
              << " (merged with what is there; the old file is kept as a backup):\n"
              << "#   " << again << " --write\n"
              << "# which puts this under \"" << servers_key(*editor) << "\":\n"
              << fresh_file(servers_key(*editor), target->name, *entry, extra);
    print_token_hint(*editor, *target, token_file);
    return 0;
  }

  auto existing = read_config_text(*file);
  if (!existing) return refuse(existing.error().message);
  auto merged = merge_server(*existing, file->string(), servers_key(*editor), target->name, *entry, extra);
  if (!merged) return refuse(merged.error().message);
  if (!merged->changed) {
    std::cout << file->string() << " already registers \"" << target->name << "\" this way; nothing to do\n";
    print_token_hint(*editor, *target, token_file);
    return 0;
  }
  // ~/.claude.json also holds Claude Code's own account state.
  const Privacy privacy = *editor == Editor::ClaudeCode && *scope == Scope::User ? Privacy::Private : Privacy::Normal;
  auto written = write_with_backup(*file, merged->text, privacy);
  if (!written) return refuse(written.error().message);
  std::cout << (merged->replaced ? "updated \"" : "added \"") << target->name << "\" (" << how << ") in "
            << written->file.string() << "\n";
  if (written->backup) std::cout << "backup of the previous file: " << written->backup->string() << "\n";
  print_token_hint(*editor, *target, token_file);
  return 0;
}

}  // namespace

int run(int argc, char** argv) {
  CLI::App app{"Print the registration of this server for an editor; with --write, merge it into the editor's\n"
               "config file (other servers are kept, the old file is backed up, an unparsable file is left alone).",
               "mcp-orchestrator install"};
  Options o;
  app.add_option("editor", o.editor, "claude-code, cursor, vscode or claude-desktop")->required();
  app.add_option("--scope", o.scope, "user (the default: every project) or project (a file in --project-dir)")
      ->check(CLI::IsMember({"user", "project"}));
  app.add_flag("--http", o.http,
               "Register the running HTTP server (found by <state-dir>/http.json) instead of stdio; "
               "the token is named by reference, never written");
  app.add_flag("--write", o.write, "Write the entry into the editor's config file instead of printing it");
  app.add_option("--url", o.url, "With --http: the server's /mcp URL, when it is not the one in http.json");
  app.add_option("--name", o.name, "The server's name in the editor (default orchestrator)");
  app.add_option("--state-dir", o.state_dir,
                 "stdio: the state directory the editor's server should use; --http: where the running server's "
                 "http.json is (default: the server's default)");
  app.add_option("--config", o.config, "stdio: the config file the editor's server should read");
  app.add_option("--project-dir", o.project_dir, "With --scope project: the project root (default: the current directory)");
  app.add_option("--file", o.file, "Use this config file instead of the editor's usual one");
  o.words.assign(argv + 2, argv + argc);
  try {
    app.parse(argc - 1, argv + 1);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  return run_install(o);
}

}  // namespace orch::app::install
