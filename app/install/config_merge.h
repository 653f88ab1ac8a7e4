// Merging one server entry into an editor's existing MCP config file, as
// text in and text out: other servers and every other member stay as they
// were, in their order. Pure; thread-safe.
//
// Refused, with a message that names the file and what to do: text that is
// not JSON (also JSON with comments, which writing back would lose), a root
// that is not an object, a servers member that is not an object. An
// "inputs" member (VS Code) is merged by input id.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace orch::app::install {

struct Merged {
  std::string text;         // the new file, 2-space indented, ending in a newline
  bool changed = false;     // false: the file already holds exactly this
  bool replaced = false;    // an entry of the same name was there and differed
};

// `existing`: the file's text, or empty for a missing or empty file.
// `origin` names the file in messages. `extra`: other top-level members to
// merge (see registration.h, companion_members).
Result<Merged> merge_server(const std::string& existing, const std::string& origin, const std::string& servers_key,
                            const std::string& name, const nlohmann::ordered_json& entry,
                            const nlohmann::ordered_json& extra = nlohmann::ordered_json::object());

// The file as it would be with only this entry (what --write makes when
// there is no file), for printing.
std::string fresh_file(const std::string& servers_key, const std::string& name, const nlohmann::ordered_json& entry,
                       const nlohmann::ordered_json& extra = nlohmann::ordered_json::object());

}  // namespace orch::app::install
