#include "tools/task_prompts.h"

#include <functional>
#include <map>
#include <vector>

namespace orch::tools {

using nlohmann::json;

namespace {

struct Argument {
  const char* name;
  const char* description;
  bool required;
};

using Args = std::map<std::string, std::string>;

struct Prompt {
  const char* name;
  const char* title;
  const char* description;
  std::vector<Argument> arguments;
  std::function<std::string(const Args&)> text;
};

std::string opt(const Args& a, const std::string& key) {
  auto it = a.find(key);
  return it == a.end() ? std::string() : it->second;
}

std::string cwd_clause(const Args& a) {
  const std::string cwd = opt(a, "cwd");
  return cwd.empty() ? std::string() : ", with cwd \"" + cwd + "\"";
}

const std::vector<Prompt>& prompts() {
  static const std::vector<Prompt> all = {
      {"run-tests", "Run the tests in the background",
       "Run the test suite in the background with submitTask, keep working meanwhile, then report which "
       "tests failed and why.",
       {{"command", "the command that runs the tests, e.g. \"make test\" or \"npm test\"", true},
        {"cwd", "directory to run it in (default: the server's working directory)", false}},
       [](const Args& a) {
         return "Run the test suite in the background with the orchestrator: call submitTask with command \"" +
                opt(a, "command") + "\"" + cwd_clause(a) +
                ", name \"tests\" and tags [\"tests\"]. Do not wait for it in this turn: tell me its taskId and "
                "carry on with what we were doing.\n"
                "When I ask, or when you next have a moment, call getResult with the taskId and waitSec 50 "
                "(repeat while the status is running). Then report in this order: passed or failed, the "
                "exit code and duration; each failing test with the error lines that explain it (read "
                "stdout and stderr with tail: true first; page back with offset if the failure starts "
                "earlier); and one suggested next step per failure. Quote at most a few lines per failure, "
                "never the whole log.";
       }},
      {"compare-agents", "Ask several agents and compare",
       "Fan one request out to several agent CLI profiles at once (submitTask with profile), wait for all "
       "of them, and compare their answers side by side.",
       {{"request", "what to ask every agent", true},
        {"profiles", "comma-separated profile names from the server's config, e.g. \"claude,codex,gemini\"", true},
        {"cwd", "directory the agents work in", false}},
       [](const Args& a) {
         return "Ask several coding agents the same thing in parallel with the orchestrator. For each profile "
                "in [" + opt(a, "profiles") + "], call submitTask with that profile, params {\"prompt\": "
                "<the request below>}" + cwd_clause(a) +
                ", and the same tag \"compare\" so they can be found together. Submit all of them before "
                "waiting on any.\n"
                "Then call getResult with waitSec 50 for each task until all have ended. If a profile is "
                "unknown or a task fails, say so and compare the rest.\n"
                "Finally compare the answers: where they agree, where they differ and who is right, notable "
                "mistakes, and which answer you would use and why. Keep quotes short.\n\n"
                "The request:\n" + opt(a, "request");
       }},
      {"watch-build", "Watch a long build",
       "Start a long build in the background and follow it: short progress reports while it runs, the "
       "first error as soon as it appears, and the outcome when it ends.",
       {{"command", "the build command, e.g. \"cmake --build build -j8\"", true},
        {"cwd", "directory to build in", false}},
       [](const Args& a) {
         return "Start this build in the background with the orchestrator: submitTask with command \"" +
                opt(a, "command") + "\"" + cwd_clause(a) +
                ", name \"build\" and tags [\"build\"]. Then follow it: call getResult with the taskId, "
                "waitSec 50 and tail: true, again and again while the status is running. After each call "
                "give me one line: elapsed time, progress if the task reports it, and what it is doing now. "
                "As soon as the output shows an error, show me those lines and where they come from, and "
                "ask whether to cancel (cancelTask) or let it run on. When it ends, report success or "
                "failure, the exit code, the duration and the first real error, if any.";
       }},
  };
  return all;
}

}  // namespace

json TaskPrompts::list() {
  json out = json::array();
  for (const Prompt& p : prompts()) {
    json args = json::array();
    for (const Argument& a : p.arguments) {
      args.push_back({{"name", a.name}, {"description", a.description}, {"required", a.required}});
    }
    out.push_back({{"name", p.name}, {"title", p.title}, {"description", p.description}, {"arguments", args}});
  }
  return out;
}

Result<json> TaskPrompts::get(const std::string& name, const json& arguments) {
  for (const Prompt& p : prompts()) {
    if (name != p.name) continue;
    Args args;
    for (const auto& [key, value] : arguments.items()) {
      bool known = false;
      for (const Argument& a : p.arguments) known = known || key == a.name;
      if (!known) {
        return make_error(ErrorCode::InvalidArgument, "prompt " + name + " has no argument '" + key + "'");
      }
      if (!value.is_string()) {
        return make_error(ErrorCode::InvalidArgument, "prompt argument '" + key + "' must be a string");
      }
      if (!value.get<std::string>().empty()) args[key] = value.get<std::string>();
    }
    for (const Argument& a : p.arguments) {
      if (a.required && !args.count(a.name)) {
        return make_error(ErrorCode::InvalidArgument,
                          "prompt " + name + " needs the argument '" + a.name + "': " + a.description);
      }
    }
    return json{{"description", p.description},
                {"messages", json::array({{{"role", "user"}, {"content", {{"type", "text"}, {"text", p.text(args)}}}}})}};
  }
  return make_error(ErrorCode::NotFound, "unknown prompt '" + name + "'; prompts/list shows run-tests, "
                                         "compare-agents and watch-build");
}

}  // namespace orch::tools
