#include "app/client/server_endpoint.h"

#include <signal.h>

#include <cerrno>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

namespace orch::app::client {

std::string read_trimmed(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  std::string s = text.str();
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  return s;
}

Result<ServerEndpoint> find_server(const std::filesystem::path& state_dir) {
  const auto file = state_dir / "http.json";
  auto not_found = [&](const std::string& why) -> Error {
    return make_error(ErrorCode::NotFound, "no running server found in " + state_dir.string() + " (" + why +
                                               "): start one with `mcp-orchestrator --http 127.0.0.1:8765` or pass --url");
  };
  auto endpoint = nlohmann::json::parse(read_trimmed(file), nullptr, false);
  if (!endpoint.is_object() || !endpoint.contains("url") || !endpoint.at("url").is_string()) {
    return not_found("no readable http.json");
  }
  // A server that crashed leaves http.json behind; its pid tells.
  if (auto pid = endpoint.find("pid"); pid != endpoint.end() && pid->is_number_integer()) {
    if (::kill(pid->get<pid_t>(), 0) != 0 && errno == ESRCH) {
      return not_found("http.json names pid " + std::to_string(pid->get<long>()) + ", which is not running");
    }
  }
  ServerEndpoint out;
  out.url = endpoint.at("url").get<std::string>();
  out.mcp = endpoint.value("mcp", out.url + "/mcp");
  out.auth = endpoint.value("auth", true);
  out.token_file = state_dir / "http-token";
  return out;
}

}  // namespace orch::app::client
