// Finding a running HTTP server from its state directory: the http.json it
// writes while serving ({"url","mcp","pid","auth"}) and its http-token file
// (app/http_service.h). Used by the client subcommands and by `install
// --http`. Reads files only; thread-safe.
#pragma once

#include <filesystem>
#include <string>

#include "common/result.h"

namespace orch::app::client {

struct ServerEndpoint {
  std::string url;                   // "http://127.0.0.1:8765"
  std::string mcp;                   // url + "/mcp"
  bool auth = true;                  // false: started with --no-auth
  std::filesystem::path token_file;  // <state-dir>/http-token
};

// NotFound when there is no http.json, it is unreadable, or the server that
// wrote it is gone (a crash leaves the file behind).
Result<ServerEndpoint> find_server(const std::filesystem::path& state_dir);

// The file's first line without trailing white space; empty when unreadable.
std::string read_trimmed(const std::filesystem::path& path);

}  // namespace orch::app::client
