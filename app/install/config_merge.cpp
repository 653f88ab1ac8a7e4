#include "app/install/config_merge.h"

#include <algorithm>

namespace orch::app::install {

using nlohmann::ordered_json;

namespace {

bool blank(const std::string& text) {
  return std::all_of(text.begin(), text.end(), [](unsigned char c) { return std::isspace(c) != 0; });
}

Error refuse(const std::string& origin, const std::string& what) {
  return make_error(ErrorCode::InvalidArgument,
                    origin + ": " + what + "; left it untouched. Fix it, or add the entry by hand (run without --write to print it)");
}

// Appends the inputs `extra` brings that `inputs` lacks (by id); replaces those with the same id.
Result<void> merge_inputs(ordered_json& inputs, const ordered_json& extra, const std::string& origin) {
  if (!inputs.is_array()) return refuse(origin, "\"inputs\" is not an array");
  for (const ordered_json& input : extra) {
    auto same = std::find_if(inputs.begin(), inputs.end(), [&](const ordered_json& i) {
      return i.is_object() && i.contains("id") && i.at("id") == input.at("id");
    });
    if (same == inputs.end()) inputs.push_back(input);
    else *same = input;
  }
  return {};
}

}  // namespace

Result<Merged> merge_server(const std::string& existing, const std::string& origin, const std::string& servers_key,
                            const std::string& name, const ordered_json& entry, const ordered_json& extra) {
  ordered_json root = ordered_json::object();
  if (!blank(existing)) {
    root = ordered_json::parse(existing, nullptr, /*allow_exceptions=*/false);
    if (root.is_discarded()) {
      ordered_json with_comments = ordered_json::parse(existing, nullptr, false, /*ignore_comments=*/true);
      if (!with_comments.is_discarded()) {
        return refuse(origin, "holds comments, which rewriting the file would drop");
      }
      return refuse(origin, "is not valid JSON");
    }
    if (!root.is_object()) return refuse(origin, "is JSON but not an object");
  }
  const ordered_json before = root;
  Merged out;
  ordered_json& servers = root[servers_key];
  if (servers.is_null()) servers = ordered_json::object();
  if (!servers.is_object()) return refuse(origin, "\"" + servers_key + "\" is not an object");
  if (servers.contains(name) && servers.at(name) != entry) out.replaced = true;
  servers[name] = entry;
  for (const auto& [key, value] : extra.items()) {
    if (key == "inputs" && root.contains("inputs")) {
      if (auto st = merge_inputs(root["inputs"], value, origin); !st) return st.error();
    } else {
      root[key] = value;
    }
  }
  out.changed = root != before;
  out.text = root.dump(2) + "\n";
  return out;
}

std::string fresh_file(const std::string& servers_key, const std::string& name, const ordered_json& entry,
                       const ordered_json& extra) {
  auto merged = merge_server("", "", servers_key, name, entry, extra);
  return merged ? merged->text : std::string();
}

}  // namespace orch::app::install
