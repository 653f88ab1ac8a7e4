// The config file's "profiles" and "security" sections (SPEC §5, §7) into
// engine values. Part of loading the config (app/config.h): every error
// names the JSON path and what is wrong, and nothing is half-read.
#pragma once

#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "engine/profile.h"

namespace orch::app {

// `where` prefixes messages ("config.json: "). Fills `out` only on success.
Status parse_profiles(const nlohmann::json& section, const std::string& where, std::vector<engine::Profile>& out);

struct SecurityConfig {
  std::vector<std::string> allow_commands{"*"};  // "*", names or absolute paths
  std::vector<std::string> allowed_dirs;         // absolute (~ expanded); empty: any
};
Status parse_security(const nlohmann::json& section, const std::string& where, SecurityConfig& out);

// "~" and "~/x" against $HOME; other paths unchanged.
std::string expand_home(const std::string& path);

}  // namespace orch::app
