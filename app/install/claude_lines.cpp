#include "app/install/claude_lines.h"

namespace orch::app::install {

std::string shell_quote(const std::string& word) {
  const bool safe = !word.empty() && word.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                             "0123456789@%+=:,./_-") == std::string::npos;
  if (safe) return word;
  std::string out = "'";
  for (char c : word) {
    if (c == '\'') out += "'\\''";
    else out += c;
  }
  return out + "'";
}

std::string claude_mcp_add(const Target& target, Scope scope) {
  std::string line = "claude mcp add --scope " + std::string(scope_name(scope));
  if (target.url) {
    line += " --transport http " + shell_quote(target.name) + " " + shell_quote(*target.url);
    if (target.auth) {
      line += " --header " + shell_quote(std::string("Authorization: Bearer ${") + kTokenVariable + "}");
    }
    return line;
  }
  for (const auto& [key, value] : target.env.items()) {
    line += " -e " + shell_quote(key + "=" + value.get<std::string>());
  }
  line += " " + shell_quote(target.name) + " -- " + shell_quote(target.binary.string());
  for (const std::string& arg : target.args) line += " " + shell_quote(arg);
  return line;
}

std::string claude_mcp_add_json(const Target& target, Scope scope) {
  auto entry = server_entry(Editor::ClaudeCode, target);
  return "claude mcp add-json --scope " + std::string(scope_name(scope)) + " " + shell_quote(target.name) + " " +
         shell_quote(entry ? entry->dump() : std::string("{}"));
}

}  // namespace orch::app::install
