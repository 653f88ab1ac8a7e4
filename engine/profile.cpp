#include "engine/profile.h"

#include <algorithm>
#include <cctype>

namespace orch::engine {

namespace {

bool valid_name(const std::string& name) {
  if (name.empty() || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_')) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

Error invalid(std::string message) { return make_error(ErrorCode::InvalidArgument, std::move(message)); }

// One pass over an element: literal text and placeholder names, in order.
// `on_text`/`on_name` receive the pieces; the first error stops the walk.
template <typename Text, typename Name>
Status walk(const std::string& element, std::size_t index, Text on_text, Name on_name) {
  std::size_t i = 0;
  while (i < element.size()) {
    char c = element[i];
    if (c == '{' && i + 1 < element.size() && element[i + 1] == '{') {
      on_text("{");
      i += 2;
    } else if (c == '}' && i + 1 < element.size() && element[i + 1] == '}') {
      on_text("}");
      i += 2;
    } else if (c == '{') {
      auto close = element.find('}', i + 1);
      if (close == std::string::npos) {
        return invalid("argv[" + std::to_string(index) + "] \"" + element +
                       "\": '{' without a closing '}' (write {{ for a literal brace)");
      }
      std::string name = element.substr(i + 1, close - i - 1);
      if (!valid_name(name)) {
        return invalid("argv[" + std::to_string(index) + "] \"" + element + "\": placeholder {" + name +
                       "} is not a name (letters, digits, _ and -, not starting with a digit)");
      }
      if (auto st = on_name(name); !st) return st;
      i = close + 1;
    } else if (c == '}') {
      return invalid("argv[" + std::to_string(index) + "] \"" + element +
                     "\": '}' without an opening '{' (write }} for a literal brace)");
    } else {
      on_text(std::string_view(&element[i], 1));
      ++i;
    }
  }
  return {};
}

std::string list_names(const std::vector<std::string>& names) {
  if (names.empty()) return "none";
  std::string out;
  for (const auto& n : names) out += (out.empty() ? "" : ", ") + n;
  return out;
}

}  // namespace

Result<std::vector<std::string>> argv_placeholders(const std::vector<std::string>& argv) {
  std::vector<std::string> names;
  for (std::size_t i = 0; i < argv.size(); ++i) {
    auto st = walk(argv[i], i, [](std::string_view) {}, [&](const std::string& name) -> Status {
      if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
      return {};
    });
    if (!st) return st.error();
  }
  return names;
}

Result<TaskSpec> expand_profile(const Profile& profile, const std::map<std::string, std::string>& params,
                                const std::optional<std::string>& input_json) {
  const std::string who = "profile '" + profile.name + "'";
  TaskSpec spec;
  spec.profile = profile.name;
  spec.env = profile.env;
  spec.cwd = profile.cwd;
  spec.timeout_ms = profile.timeout_ms;
  if (profile.retry) spec.retry = *profile.retry;
  spec.limits = profile.limits;
  if (profile.mode == ProfileMode::Pool) {
    if (!params.empty()) {
      return invalid(who + " is a worker pool: it takes `input` (any JSON), not params; put the values in input");
    }
    spec.kind = TaskKind::Pool;
    spec.argv = profile.argv;
    spec.input_json = input_json.value_or("null");
    return spec;
  }
  if (input_json) {
    return invalid(who + " runs a command, not a worker pool: it takes params (strings for its {placeholders}), "
                         "not input");
  }
  auto names = argv_placeholders(profile.argv);
  if (!names) return names.error();
  for (const auto& [key, value] : params) {
    if (std::find(names->begin(), names->end(), key) == names->end()) {
      return invalid("params." + key + ": " + who + " has no {" + key + "} placeholder (it takes: " +
                     list_names(*names) + ")");
    }
  }
  for (const auto& name : *names) {
    if (!params.count(name)) {
      return invalid(who + " needs params." + name + " (it takes: " + list_names(*names) +
                     "); e.g. {\"profile\": \"" + profile.name + "\", \"params\": {\"" + name + "\": \"...\"}}");
    }
  }
  spec.kind = TaskKind::Argv;
  for (std::size_t i = 0; i < profile.argv.size(); ++i) {
    std::string out;
    auto st = walk(profile.argv[i], i, [&](std::string_view text) { out += text; },
                   [&](const std::string& name) -> Status {
                     out += params.at(name);
                     return {};
                   });
    if (!st) return st.error();
    spec.argv.push_back(std::move(out));
  }
  if (spec.argv.empty() || spec.argv.front().empty()) {
    return invalid(who + ": the program (argv[0]) is empty after substitution; give a non-empty value");
  }
  return spec;
}

}  // namespace orch::engine
