#include "tools/submit_task.h"

#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <system_error>

#include "tools/args.h"
#include "tools/task_json.h"

namespace orch::tools {

namespace {

constexpr std::string_view kAllowed[] = {
    "command", "argv", "profile", "params", "input", "name", "tags", "cwd", "env", "stdin",
    "priority", "timeoutSec", "dependsOn", "retry", "idempotencyKey", "runAt", "delaySec"};
constexpr std::string_view kRetryKeys[] = {"maxAttempts", "backoff", "delayMs", "maxDelayMs"};
constexpr std::string_view kBackoffs[] = {"fixed", "exponential"};

// Linux refuses a single argument longer than MAX_ARG_STRLEN (32 pages) with
// E2BIG at spawn; say so at submit, where the caller can still act.
constexpr std::size_t kMaxArgBytes = 128 * 1024 - 1;
constexpr std::size_t kMaxArgvItems = 4096;
constexpr std::size_t kMaxStdinBytes = 16u << 20;
constexpr std::int64_t kWeekSec = 7 * 24 * 3600;
constexpr std::int64_t kWeekMs = kWeekSec * 1000;
constexpr double kMaxDelaySec = 365.0 * 24 * 3600;

Error invalid(std::string message) { return make_error(ErrorCode::InvalidArgument, std::move(message)); }

// Models write "~/project"; the shell is not there to expand it. A relative
// path is taken from the server's working directory (where the editor
// started it) and stored absolute, so it means the same after a restart.
Result<std::string> resolve_cwd(const std::string& raw) {
  std::filesystem::path path = raw;
  if (raw == "~" || raw.starts_with("~/")) {
    const char* home = std::getenv("HOME");
    if (!home || !*home) return invalid("cwd: cannot expand '~' (HOME is not set); give an absolute path");
    path = std::filesystem::path(home) / raw.substr(raw == "~" ? 1 : 2);
  }
  std::error_code ec;
  std::filesystem::path absolute = std::filesystem::absolute(path, ec);
  if (ec) return invalid("cwd " + json(raw).dump() + ": " + ec.message());
  absolute = absolute.lexically_normal();
  auto st = std::filesystem::status(absolute, ec);
  if (ec || !std::filesystem::exists(st)) {
    return invalid("cwd " + json(raw).dump() + " does not exist; give an existing directory");
  }
  if (!std::filesystem::is_directory(st)) {
    return invalid("cwd " + json(raw).dump() + " is not a directory; give the directory to run in");
  }
  std::string out = absolute.string();
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

Status read_retry(const json& value, engine::RetryPolicy& retry) {
  if (auto ok = check_object(value, "retry", kRetryKeys); !ok) return ok;
  if (const json* v = find_arg(value, "maxAttempts")) {
    auto n = read_integer(*v, "retry.maxAttempts", 1, 100);
    if (!n) return n.error();
    retry.max_attempts = static_cast<int>(*n);
  }
  if (const json* v = find_arg(value, "backoff")) {
    auto b = read_enum(*v, "retry.backoff", kBackoffs);
    if (!b) return b.error();
    retry.backoff = *b == "fixed" ? engine::Backoff::Fixed : engine::Backoff::Exponential;
  }
  if (const json* v = find_arg(value, "delayMs")) {
    auto n = read_integer(*v, "retry.delayMs", 0, kWeekMs);
    if (!n) return n.error();
    retry.delay_ms = *n;
  }
  if (const json* v = find_arg(value, "maxDelayMs")) {
    auto n = read_integer(*v, "retry.maxDelayMs", 0, kWeekMs);
    if (!n) return n.error();
    retry.max_delay_ms = *n;
  }
  return {};
}

// The optional fields, applied over the spec the command/argv/profile gave.
Status apply_options(const json& args, engine::TaskSpec& spec, std::int64_t now_ms) {
  if (const json* v = find_arg(args, "name")) {
    auto s = read_string(*v, "name", {.max_bytes = 200});
    if (!s) return s.error();
    spec.name = *s;
  }
  if (const json* v = find_arg(args, "tags")) {
    auto tags = read_string_array(*v, "tags", {.max_items = 32, .item = {.min_bytes = 1, .max_bytes = 100}});
    if (!tags) return tags.error();
    spec.tags = std::move(tags.value());
  }
  if (const json* v = find_arg(args, "cwd")) {
    auto s = read_string(*v, "cwd", {.min_bytes = 1, .max_bytes = 4096});
    if (!s) return s.error();
    auto dir = resolve_cwd(*s);
    if (!dir) return dir.error();
    spec.cwd = std::move(dir.value());
  }
  if (const json* v = find_arg(args, "env")) {
    auto env = read_string_map(*v, "env", {.max_entries = 1000,
                                           .key = {.max_bytes = 1024},
                                           .value = {.max_bytes = kMaxArgBytes},
                                           .env_keys = true});
    if (!env) return env.error();
    for (auto& [key, value] : env.value()) spec.env[key] = std::move(value);
  }
  if (const json* v = find_arg(args, "stdin")) {
    // NUL is fine here: stdin goes through a file, not through execve.
    auto s = read_string(*v, "stdin", {.max_bytes = kMaxStdinBytes, .allow_nul = true});
    if (!s) return make_error(ErrorCode::InvalidArgument,
                              s.error().message + (v->is_string() ? "; write large input to a file and redirect it" : ""));
    spec.stdin_data = std::move(s.value());
  }
  if (const json* v = find_arg(args, "priority")) {
    auto p = read_integer(*v, "priority", 0, 10);
    if (!p) return p.error();
    spec.priority = static_cast<int>(*p);
  }
  if (const json* v = find_arg(args, "timeoutSec")) {
    auto t = read_number(*v, "timeoutSec", {.min = 0, .max = kWeekSec, .min_exclusive = true});
    if (!t) return t.error();
    spec.timeout_ms = std::max<std::int64_t>(1, std::llround(*t * 1000));
  }
  if (const json* v = find_arg(args, "dependsOn")) {
    auto deps = read_string_array(*v, "dependsOn", {.max_items = 1000, .item = {.min_bytes = 1, .max_bytes = 64}});
    if (!deps) return deps.error();
    spec.depends_on = std::move(deps.value());
  }
  if (const json* v = find_arg(args, "retry")) {
    if (auto ok = read_retry(*v, spec.retry); !ok) return ok;
  }
  if (const json* v = find_arg(args, "idempotencyKey")) {
    auto s = read_string(*v, "idempotencyKey", {.min_bytes = 1, .max_bytes = 256});
    if (!s) return s.error();
    spec.idempotency_key = *s;
  }
  const json* run_at = find_arg(args, "runAt");
  const json* delay = find_arg(args, "delaySec");
  if (run_at && delay) {
    return invalid("give runAt (a UTC time) or delaySec (seconds from now), not both");
  }
  if (run_at) {
    auto s = read_string(*run_at, "runAt", {.max_bytes = 64});
    if (!s) return s.error();
    auto ms = parse_utc_timestamp(*s, "runAt");
    if (!ms) return ms.error();
    spec.run_at_ms = *ms;
  }
  if (delay) {
    auto d = read_number(*delay, "delaySec", {.min = 0, .max = kMaxDelaySec});
    if (!d) return d.error();
    spec.run_at_ms = now_ms + std::llround(*d * 1000);
  }
  return {};
}

}  // namespace

Result<engine::TaskSpec> build_submit_spec(const json& args, const ProfileResolver& profiles,
                                           std::int64_t now_ms) {
  if (auto ok = check_object(args, "submitTask arguments", kAllowed); !ok) return ok.error();
  const json* command = find_arg(args, "command");
  const json* argv = find_arg(args, "argv");
  const json* profile = find_arg(args, "profile");
  int forms = (command ? 1 : 0) + (argv ? 1 : 0) + (profile ? 1 : 0);
  if (forms == 0) {
    return invalid("submitTask needs exactly one of: command (a shell command line, run by /bin/sh -c), "
                   "argv (an array: the program and its arguments, run without a shell) or profile "
                   "(a configured profile with params)");
  }
  if (forms > 1) {
    std::string given = std::string(command ? "command " : "") + (argv ? "argv " : "") +
                        (profile ? "profile " : "");
    given.pop_back();
    return invalid("give only one of command, argv or profile (got: " + given + ")");
  }
  if (!profile && (find_arg(args, "params") || find_arg(args, "input"))) {
    return invalid("params and input are only used with profile; with command or argv, put "
                   "the values in the command line, env or stdin");
  }

  engine::TaskSpec spec;
  if (command) {
    auto s = read_string(*command, "command", {.min_bytes = 1, .max_bytes = kMaxArgBytes});
    if (!s) {
      if (command->is_array()) {
        return invalid(s.error().message + "; to pass a program and its arguments as an array, use argv");
      }
      return s.error();
    }
    spec.kind = engine::TaskKind::Command;
    spec.command = std::move(s.value());
  } else if (argv) {
    auto items = read_string_array(*argv, "argv", {.min_items = 1, .max_items = kMaxArgvItems,
                                                   .item = {.max_bytes = kMaxArgBytes}});
    if (!items) {
      if (argv->is_string()) {
        return invalid(items.error().message + "; to run a shell command line, use command");
      }
      return items.error();
    }
    if (items->front().empty()) return invalid("argv[0] (the program to run) must not be empty");
    spec.kind = engine::TaskKind::Argv;
    spec.argv = std::move(items.value());
  } else {
    auto name = read_string(*profile, "profile", {.min_bytes = 1, .max_bytes = 200});
    if (!name) return name.error();
    std::map<std::string, std::string> params;
    if (const json* p = find_arg(args, "params")) {
      auto m = read_string_map(*p, "params", {.max_entries = 100, .value = {.max_bytes = kMaxArgBytes}});
      if (!m) return m.error();
      params = std::move(m.value());
    }
    std::optional<json> input;
    if (const json* in = find_arg(args, "input")) input = *in;
    if (!profiles) {
      return make_error(ErrorCode::NotFound, "unknown profile '" + *name +
                                                 "': no profiles are configured; use command or argv");
    }
    auto resolved = profiles(*name, params, input);
    if (!resolved) return resolved.error();
    spec = std::move(resolved.value());
  }
  if (auto ok = apply_options(args, spec, now_ms); !ok) return ok.error();
  return spec;
}

namespace {

json submit_reply(const Result<engine::SubmitOutcome>& outcome) {
  if (!outcome) return error_result(outcome.error());
  const engine::TaskView& view = outcome->view;
  json out{{"taskId", view.task.id}, {"status", engine::to_string(view.task.status)}};
  if (view.queue_position) out["queuePosition"] = *view.queue_position;
  if (outcome->deduplicated) out["deduplicated"] = true;
  return success_result(std::move(out));
}

}  // namespace

Tool make_submit_task_tool(engine::Engine& engine, ProfileResolver profiles) {
  Tool tool;
  tool.name = "submitTask";
  tool.title = "Submit a background task";
  tool.description =
      "Start a shell command, program or agent CLI in the background and return at once with its "
      "taskId. Use this instead of running a command inline when it may take more than about 10 "
      "seconds (builds, test suites, linters, agent runs such as `claude -p`) or to run several "
      "things in parallel. Give exactly one of `command` (a shell line, run by /bin/sh -c), "
      "`argv` (program and arguments, no shell, no quoting needed) or `profile` with `params` "
      "(only when the server's config defines profiles). The child's stdin is /dev/null unless "
      "`stdin` is given. Optional: name, tags, cwd, env, priority (0-10, higher first), "
      "timeoutSec, dependsOn (task ids that must complete first), retry, idempotencyKey, "
      "runAt or delaySec. Then wait with getResult (taskId, waitSec up to 50) and keep talking "
      "with the user meanwhile.";
  json string_array{{"type", "array"}, {"items", {{"type", "string"}}}};
  tool.input_schema = {
      {"type", "object"},
      {"properties",
       {{"command", {{"type", "string"}, {"description", "shell command line, run by /bin/sh -c"}}},
        {"argv", {{"type", "array"}, {"items", {{"type", "string"}}}, {"minItems", 1},
                  {"description", "program and its arguments, exec'd directly without a shell"}}},
        {"profile", {{"type", "string"}, {"description", "name of a configured profile"}}},
        {"params", {{"type", "object"}, {"additionalProperties", {{"type", "string"}}},
                    {"description", "values for the profile's {placeholders}"}}},
        {"input", {{"description", "JSON input for a pool profile's worker"}}},
        {"name", {{"type", "string"}, {"maxLength", 200}, {"description", "a short label for listings"}}},
        {"tags", {{"type", "array"}, {"items", {{"type", "string"}}}, {"maxItems", 32},
                  {"description", "labels to filter listTasks and cancelTask by"}}},
        {"cwd", {{"type", "string"}, {"description", "existing directory to run in; default: the server's"}}},
        {"env", {{"type", "object"}, {"additionalProperties", {{"type", "string"}}},
                 {"description", "environment variables merged over the server's"}}},
        {"stdin", {{"type", "string"}, {"description", "text fed to the task's stdin (max 16 MiB)"}}},
        {"priority", {{"type", "integer"}, {"minimum", 0}, {"maximum", 10}, {"default", 5},
                      {"description", "higher runs first; FIFO within a level"}}},
        {"timeoutSec", {{"type", "number"}, {"exclusiveMinimum", 0}, {"maximum", kWeekSec},
                        {"description", "kill the task's process group after this many seconds"}}},
        {"dependsOn", {{"type", "array"}, {"items", {{"type", "string"}}},
                       {"description", "task ids that must complete first; if one fails, this one is cancelled"}}},
        {"retry", {{"type", "object"},
                   {"properties",
                    {{"maxAttempts", {{"type", "integer"}, {"minimum", 1}, {"maximum", 100}}},
                     {"backoff", {{"type", "string"}, {"enum", json::array({"fixed", "exponential"})}}},
                     {"delayMs", {{"type", "integer"}, {"minimum", 0}}},
                     {"maxDelayMs", {{"type", "integer"}, {"minimum", 0}}}}},
                   {"additionalProperties", false},
                   {"description", "retry a failed attempt, with jittered back-off"}}},
        {"idempotencyKey", {{"type", "string"}, {"minLength", 1}, {"maxLength", 256},
                            {"description", "a second submit with the same key returns the first task"}}},
        {"runAt", {{"type", "string"}, {"description", "do not start before this UTC time, e.g. 2026-11-23T21:00:00Z"}}},
        {"delaySec", {{"type", "number"}, {"minimum", 0}, {"description", "do not start for this many seconds"}}}}},
      {"additionalProperties", false}};
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"taskId", {{"type", "string"}}},
        {"status", {{"type", "string"}, {"enum", json::array({"queued", "waiting", "running", "completed", "failed", "cancelled"})}}},
        {"queuePosition", {{"type", "integer"}, {"description", "1-based, while queued"}}},
        {"deduplicated", {{"type", "boolean"}, {"description", "true when idempotencyKey matched an earlier task"}}}}},
      {"required", json::array({"taskId", "status"})}};
  tool.annotations = {{"readOnlyHint", false}, {"destructiveHint", false},
                      {"idempotentHint", false}, {"openWorldHint", true}};
  // A store insert and in-memory checks; the task itself starts elsewhere.
  tool.answers_at_once = true;
  tool.call = [&engine, profiles](const json& args, mcp::ToolCallContext&) -> json {
    auto spec = build_submit_spec(args, profiles, to_unix_ms(engine_clock(engine).wall_now()));
    if (!spec) return error_result(spec.error());
    return submit_reply(engine.submit(std::move(spec.value())));
  };
  // A burst of submits read together is stored in one commit.
  tool.call_in_batch = [&engine, profiles = std::move(profiles)](const json& args, mcp::ToolCallContext&,
                                                                 std::function<void(json)> reply) {
    auto spec = build_submit_spec(args, profiles, to_unix_ms(engine_clock(engine).wall_now()));
    if (!spec) {
      reply(error_result(spec.error()));
      return;
    }
    engine.submit_later(std::move(spec.value()), [reply = std::move(reply)](Result<engine::SubmitOutcome> outcome) {
      reply(submit_reply(outcome));
    });
  };
  return tool;
}

}  // namespace orch::tools
