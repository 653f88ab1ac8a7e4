#include "tools/get_result.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <optional>

#include "tools/args.h"
#include "tools/task_json.h"

namespace orch::tools {

namespace {

constexpr std::string_view kAllowed[] = {"taskId", "waitSec", "stream", "offset", "maxBytes", "tail"};
constexpr std::string_view kStreams[] = {"stdout", "stderr", "both"};
constexpr std::int64_t kMaxWindowBytes = 1 << 20;
constexpr std::int64_t kDefaultWindowBytes = 16384;

struct Request {
  std::string task_id;
  double wait_sec = 0;
  bool want_stdout = true;
  bool want_stderr = true;
  engine::ReadRequest read;
};

Result<Request> parse(const json& args) {
  if (auto ok = check_object(args, "getResult arguments", kAllowed); !ok) return ok.error();
  Request req;
  const json* id = find_arg(args, "taskId");
  if (!id) return make_error(ErrorCode::InvalidArgument, "getResult needs taskId (the id submitTask returned)");
  auto s = read_string(*id, "taskId", {.min_bytes = 1, .max_bytes = 256});
  if (!s) return s.error();
  req.task_id = *s;
  if (const json* v = find_arg(args, "waitSec")) {
    auto w = read_number(*v, "waitSec", {.min = 0});
    if (!w) return w.error();
    if (*w > kMaxWaitSec) {
      return make_error(ErrorCode::InvalidArgument,
                        "waitSec is capped at " + std::to_string(kMaxWaitSec) + " seconds (got " +
                            v->dump() + "); wait up to " + std::to_string(kMaxWaitSec) +
                            " and call getResult again to keep waiting");
    }
    req.wait_sec = *w;
  }
  if (const json* v = find_arg(args, "stream")) {
    auto st = read_enum(*v, "stream", kStreams);
    if (!st) return st.error();
    req.want_stdout = *st != "stderr";
    req.want_stderr = *st != "stdout";
  }
  const json* offset = find_arg(args, "offset");
  if (offset) {
    auto o = read_integer(*offset, "offset", 0, std::numeric_limits<std::int64_t>::max());
    if (!o) return o.error();
    req.read.offset = static_cast<std::uint64_t>(*o);
  }
  req.read.max_bytes = kDefaultWindowBytes;
  if (const json* v = find_arg(args, "maxBytes")) {
    auto m = read_integer(*v, "maxBytes", 1, kMaxWindowBytes);
    if (!m) return m.error();
    req.read.max_bytes = static_cast<std::uint64_t>(*m);
  }
  if (const json* v = find_arg(args, "tail")) {
    auto t = read_bool(*v, "tail");
    if (!t) return t.error();
    if (*t && offset) {
      return make_error(ErrorCode::InvalidArgument,
                        "tail reads the last maxBytes of output, so it cannot be combined with "
                        "offset; drop one of them");
    }
    req.read.tail = *t;
  }
  return req;
}

std::string format_count(double v) {
  if (std::trunc(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<std::int64_t>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%g", v);
  return buf;
}

// Progress for one long-poll. MCP requires each value to exceed the last for
// the same token (MCP-NOTES §8), but a task's own `current` may stall, go
// back (a retry starts again at 0/3) or appear only after a while. So the
// value is seconds waited — it always grows — and the task's own
// current/total/message ride in the message, where the user sees them.
class WaitProgress {
 public:
  explicit WaitProgress(mcp::ToolCallContext& ctx) : ctx_(ctx), start_(std::chrono::steady_clock::now()) {}

  void report(const engine::TaskView& view) {
    if (!ctx_.has_progress_token || !ctx_.report_progress) return;
    double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    double value = std::max(std::round(elapsed * 1000) / 1000, last_ + 0.001);
    last_ = value;
    ctx_.report_progress(value, std::nullopt, message(view, elapsed));
  }

 private:
  static std::string message(const engine::TaskView& view, double elapsed) {
    const engine::TaskRecord& t = view.task;
    std::string waited = std::to_string(static_cast<std::int64_t>(elapsed)) + " s";
    switch (t.status) {
      case engine::TaskStatus::Queued:
        return view.queue_position ? "queued (position " + std::to_string(*view.queue_position) + ") for " + waited
                                   : "queued for " + waited;
      case engine::TaskStatus::Waiting:
        return t.message.empty() ? "waiting for " + waited : "waiting: " + t.message;
      case engine::TaskStatus::Running: {
        std::string run = "running for " + waited;
        if (!t.progress) return run;
        std::string own = format_count(t.progress->current);
        if (t.progress->total) own += "/" + format_count(*t.progress->total);
        if (!t.progress->message.empty()) own += " " + t.progress->message;
        return own + " (" + run + ")";
      }
      default:
        return std::string(engine::to_string(t.status)) +
               (t.message.empty() ? "" : ": " + t.message);
    }
  }

  mcp::ToolCallContext& ctx_;
  SteadyTime start_;
  double last_ = 0;
};

// Waits in slices so that a heartbeat goes out at least every kWaitSlice even
// when nothing changes, and returns as soon as the task ends. The deadline is
// real steady time (the caller really waits), whatever clock the engine keeps
// for timestamps.
Status long_poll(engine::Engine& engine, const Request& req, const engine::TaskView& start,
                 mcp::ToolCallContext& ctx) {
  using std::chrono::steady_clock;
  const SteadyTime deadline =
      steady_clock::now() +
      std::chrono::duration_cast<SteadyTime::duration>(std::chrono::duration<double>(req.wait_sec));
  WaitProgress progress(ctx);
  // Say where the task stands now: progress it made before this call would
  // otherwise show only at the first heartbeat.
  progress.report(start);
  auto on_change = [&progress](const engine::TaskView& view) { progress.report(view); };
  while (true) {
    SteadyTime slice_end = std::min(deadline, steady_clock::now() + kWaitSlice);
    auto view = engine.wait(req.task_id, slice_end, ctx.stop, on_change);
    if (!view) return view.error();
    // A draining engine (restart in place) answers every wait at once: the
    // long-poll ends now with the task's current state.
    if (engine::is_terminal(view->task.status) || ctx.stop.stop_requested() || engine.draining() ||
        steady_clock::now() >= deadline) {
      return {};
    }
    progress.report(*view);
  }
}

json call(engine::Engine& engine, const json& args, mcp::ToolCallContext& ctx) {
  auto req = parse(args);
  if (!req) return error_result(req.error());
  auto unknown_or = [&req](const Error& e) {
    return e.code == ErrorCode::NotFound ? error_result(unknown_task_message(req->task_id)) : error_result(e);
  };
  auto first = engine.get(req->task_id);
  if (!first) return unknown_or(first.error());
  if (req->wait_sec > 0 && !engine::is_terminal(first->task.status)) {
    if (auto ok = long_poll(engine, *req, *first, ctx); !ok) return unknown_or(ok.error());
  }
  // Status first, output second: output read after a terminal status is complete.
  auto view = engine.get(req->task_id);
  if (!view) return unknown_or(view.error());
  json task = task_to_json(*view, to_unix_ms(engine_clock(engine).wall_now()));
  json out{{"taskId", task.at("taskId")}, {"status", task.at("status")}};
  for (const char* key : {"reason", "message", "exitCode", "signal", "progress", "durationMs"}) {
    if (auto it = task.find(key); it != task.end()) out[key] = *it;
  }
  const std::uint64_t cap = engine.options().stream_cap_bytes;
  auto add_window = [&](engine::StreamKind kind, std::uint64_t produced) -> Status {
    auto window = engine.read_output(req->task_id, kind, req->read);
    if (!window) return window.error();
    out[engine::to_string(kind)] = window_to_json(std::move(*window), produced, cap);
    return {};
  };
  if (req->want_stdout) {
    if (auto ok = add_window(engine::StreamKind::Stdout, view->task.stdout_bytes); !ok) return unknown_or(ok.error());
  }
  if (req->want_stderr) {
    if (auto ok = add_window(engine::StreamKind::Stderr, view->task.stderr_bytes); !ok) return unknown_or(ok.error());
  }
  // A pool task's answer (SPEC §6), once its worker gave one.
  if (auto result = engine.read_result(req->task_id); result && *result) {
    json value = json::parse(**result, nullptr, false);
    if (!value.is_discarded()) out["result"] = std::move(value);
  }
  return success_result(std::move(out));
}

}  // namespace

Tool make_get_result_tool(engine::Engine& engine) {
  Tool tool;
  tool.name = "getResult";
  tool.title = "Wait for a task and read its output";
  tool.description =
      "Read a task's status, exit code and a window of its stdout/stderr. To wait for a task to "
      "finish, pass `waitSec` (at most 50): the call returns as soon as the task ends, or when the "
      "wait runs out with status running and the output so far — then call again to keep "
      "waiting (progress notifications are sent meanwhile). Output is paged by bytes: each "
      "window has `nextOffset` (pass it as `offset` to read on) and `totalBytes`; `tail: true` "
      "returns the last `maxBytes` instead (default 16384, max 1048576) — read the tail first "
      "for long logs. `stream` picks stdout, stderr or both (default); offset applies to each "
      "stream.";
  tool.input_schema = {
      {"type", "object"},
      {"properties",
       {{"taskId", {{"type", "string"}, {"description", "id returned by submitTask"}}},
        {"waitSec", {{"type", "number"}, {"minimum", 0}, {"maximum", kMaxWaitSec},
                     {"description", "wait up to this many seconds for the task to end (0: answer now)"}}},
        {"stream", {{"type", "string"}, {"enum", json::array({"stdout", "stderr", "both"})}, {"default", "both"}}},
        {"offset", {{"type", "integer"}, {"minimum", 0}, {"default", 0},
                    {"description", "byte offset to read from (a previous window's nextOffset)"}}},
        {"maxBytes", {{"type", "integer"}, {"minimum", 1}, {"maximum", kMaxWindowBytes},
                      {"default", kDefaultWindowBytes}}},
        {"tail", {{"type", "boolean"}, {"description", "return the last maxBytes; not with offset"}}}}},
      {"required", json::array({"taskId"})},
      {"additionalProperties", false}};
  json task = task_schema();
  const json& props = task.at("properties");
  tool.output_schema = {
      {"type", "object"},
      {"properties",
       {{"taskId", props.at("taskId")},
        {"status", props.at("status")},
        {"reason", props.at("reason")},
        {"message", props.at("message")},
        {"exitCode", props.at("exitCode")},
        {"signal", props.at("signal")},
        {"progress", props.at("progress")},
        {"durationMs", props.at("durationMs")},
        {"stdout", window_schema()},
        {"stderr", window_schema()},
        {"result", {{"description", "a pool task's result: the JSON its worker answered with"}}}}},
      {"required", json::array({"taskId", "status"})}};
  tool.annotations = {{"readOnlyHint", true}, {"idempotentHint", true}, {"openWorldHint", false}};
  tool.call = [&engine](const json& args, mcp::ToolCallContext& ctx) { return call(engine, args, ctx); };
  return tool;
}

}  // namespace orch::tools
