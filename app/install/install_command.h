// `mcp-orchestrator install claude-code|cursor|vscode|claude-desktop
//  [--scope user|project] [--http] [--write] …` (SPEC §9): prints, and with
// --write merges into the editor's config file, the registration of this very
// binary (stdio, by its absolute path) or of a running HTTP server (its /mcp
// URL from <state-dir>/http.json, the token by reference). Exit codes: 0 done,
// 2 usage, 1 refused (unparsable file, no running server, Desktop over HTTP).
#pragma once

namespace orch::app::install {

// argv[1] is "install". Returns the process exit code.
int run(int argc, char** argv);

}  // namespace orch::app::install
