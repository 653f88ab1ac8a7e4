#include "tools/native_tasks.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <utility>
#include <vector>

#include "common/thread_name.h"
#include "tools/change_feed.h"

namespace orch::tools {

using mcp::NativeTask;
using mcp::NativeTaskStatus;

namespace {

// How long a wait for one task is cut short, so the stop token is looked at.
constexpr std::chrono::seconds kWatchSlice{5};
constexpr const char* kCursorPrefix = "n";

NativeTaskStatus native_status(engine::TaskStatus s) {
  switch (s) {
    case engine::TaskStatus::Completed: return NativeTaskStatus::Completed;
    case engine::TaskStatus::Failed: return NativeTaskStatus::Failed;
    case engine::TaskStatus::Cancelled: return NativeTaskStatus::Cancelled;
    default: return NativeTaskStatus::Working;
  }
}

std::string status_message(const engine::TaskView& view, bool cancelled) {
  const engine::TaskRecord& t = view.task;
  if (cancelled && !engine::is_terminal(t.status)) return "cancelled; its processes are being stopped";
  switch (t.status) {
    case engine::TaskStatus::Queued:
      return view.queue_position ? "queued (position " + std::to_string(*view.queue_position) + ")" : "queued";
    case engine::TaskStatus::Waiting:
      return t.message.empty() ? "waiting for its dependencies or start time" : "waiting: " + t.message;
    case engine::TaskStatus::Running:
      if (t.progress && !t.progress->message.empty()) return t.progress->message;
      return t.pid ? "running (pid " + std::to_string(*t.pid) + ")" : "running";
    default:
      break;
  }
  // The engine's one line says how it ended ("exited with code 1", "timed out after 30 s").
  if (!t.message.empty()) return t.message;
  std::string text = engine::to_string(t.status);
  if (t.reason != engine::EndReason::None) text += std::string(" (") + engine::to_string(t.reason) + ")";
  return text;
}

}  // namespace

NativeTasks::NativeTasks(engine::Engine& engine, ToolRegistry& tools, NativeTaskOptions options)
    : engine_(engine), tools_(tools), options_(options) {
  watcher_ = std::jthread([this](std::stop_token stop) {
    name_this_thread("orch-watch-task");
    watch(std::move(stop));
  });
}

NativeTasks::~NativeTasks() {
  watcher_.request_stop();
  if (watcher_.joinable()) watcher_.join();
}

Result<NativeTasks::Entry*> NativeTasks::find_locked(const std::string& owner, const std::string& id,
                                                     std::int64_t now_ms) {
  auto it = entries_.find(id);
  // Another owner's task reads exactly like an unknown one (no oracle for ids).
  if (it == entries_.end() || it->second.owner != owner) {
    return make_error(ErrorCode::NotFound, "unknown task id '" + id + "' (tasks/list shows this client's tasks)");
  }
  if (now_ms >= it->second.created_at_ms + it->second.ttl_ms) {
    entries_.erase(it);
    return make_error(ErrorCode::NotFound, "task " + id +
                                               " has expired (its ttl ran out); getStatus and getResult still "
                                               "show the engine task while it is retained");
  }
  return &it->second;
}

NativeTask NativeTasks::describe(const engine::TaskView& view, const Entry& entry) const {
  NativeTask t;
  t.id = view.task.id;
  t.status = entry.cancelled ? NativeTaskStatus::Cancelled : native_status(view.task.status);
  t.status_message = status_message(view, entry.cancelled);
  t.created_at_ms = entry.created_at_ms;
  t.last_updated_at_ms = std::max({entry.updated_at_ms, entry.created_at_ms, view.task.started_at_ms,
                                   view.task.finished_at_ms});
  t.ttl_ms = entry.ttl_ms;
  t.poll_interval_ms = options_.poll_interval.count();
  return t;
}

Result<NativeTask> NativeTasks::create(const std::string& owner, const std::string& tool, const json& arguments,
                                       std::optional<std::int64_t> ttl_ms, mcp::NativeTaskListener listener) {
  const Tool* found = tools_.find(tool);
  if (!found) return make_error(ErrorCode::NotFound, "Unknown tool: " + tool);
  if (found->task_support == kTaskForbidden) {
    return make_error(ErrorCode::InvalidArgument, tool + " does not run as a task");
  }
  // Every task-capable tool takes submitTask's arguments: queue it the same way.
  mcp::ToolCallContext ctx;
  ctx.report_progress = [](double, std::optional<double>, const std::string&) {};
  std::optional<json> submitted = tools_.call_tool("submitTask", arguments, ctx);
  if (!submitted) return make_error(ErrorCode::Internal, "submitTask is missing from the registry");
  if (submitted->value("isError", false)) {
    std::string text = "the task could not be started";
    if (auto c = submitted->find("content"); c != submitted->end() && c->is_array() && !c->empty()) {
      text = c->at(0).value("text", text);
    }
    return make_error(ErrorCode::InvalidArgument, text);
  }
  const std::string id = submitted->at("structuredContent").at("taskId").get<std::string>();
  auto view = engine_.get(id);
  if (!view) return view.error();

  const std::int64_t now = to_unix_ms(engine_clock(engine_).wall_now());
  const std::int64_t max_ttl = options_.max_ttl.count();
  Entry entry;
  entry.owner = owner;
  entry.created_at_ms = now;
  entry.updated_at_ms = now;
  entry.ttl_ms = std::clamp<std::int64_t>(ttl_ms.value_or(options_.default_ttl.count()), 1, max_ttl);
  entry.last_status = native_status(view->task.status);
  entry.listener = std::move(listener);
  std::lock_guard lock(mu_);
  entry.seq = next_seq_++;
  auto [it, inserted] = entries_.emplace(id, std::move(entry));
  if (!inserted && it->second.owner != owner) {
    // An idempotencyKey matched another client's task: do not hand it over.
    return make_error(ErrorCode::InvalidArgument,
                      "idempotencyKey matches a task this client did not create; use another key");
  }
  return describe(*view, it->second);
}

Result<NativeTask> NativeTasks::get(const std::string& owner, const std::string& task_id) {
  auto view = engine_.get(task_id);
  const std::int64_t now = to_unix_ms(engine_clock(engine_).wall_now());
  std::lock_guard lock(mu_);
  auto entry = find_locked(owner, task_id, now);
  if (!entry) return entry.error();
  if (!view) return make_error(ErrorCode::NotFound, "task " + task_id + " is no longer retained by the engine");
  return describe(*view, **entry);
}

Result<NativeTask> NativeTasks::watch(const std::string& owner, const std::string& task_id,
                                      mcp::NativeTaskListener listener) {
  const std::int64_t now = to_unix_ms(engine_clock(engine_).wall_now());
  std::lock_guard lock(mu_);
  auto entry = find_locked(owner, task_id, now);
  if (!entry) return entry.error();
  // Read under the lock: the watcher applies a change either before this (and
  // the answer shows it) or after (and the new watcher hears it).
  auto view = engine_.get(task_id);
  if (!view) return make_error(ErrorCode::NotFound, "task " + task_id + " is no longer retained by the engine");
  if (!mcp::is_terminal((*entry)->last_status)) (*entry)->watchers.push_back(std::move(listener));
  return describe(*view, **entry);
}

json NativeTasks::final_result(const std::string& id, bool cancelled) {
  mcp::ToolCallContext ctx;
  ctx.report_progress = [](double, std::optional<double>, const std::string&) {};
  std::optional<json> out = tools_.call_tool("getResult", {{"taskId", id}, {"tail", true}}, ctx);
  if (!out) return error_result("getResult is missing from the registry");
  if (out->value("isError", false)) return *out;
  // tasks/result reports the work's outcome: isError unless it completed,
  // which the 2025-11-25 rules map to a failed task (MCP-NOTES §9a).
  const std::string status = out->at("structuredContent").value("status", "");
  if (cancelled || status != "completed") (*out)["isError"] = true;
  return *out;
}

Result<json> NativeTasks::result(const std::string& owner, const std::string& task_id, std::stop_token stop) {
  while (true) {
    bool cancelled = false;
    {
      const std::int64_t now = to_unix_ms(engine_clock(engine_).wall_now());
      std::lock_guard lock(mu_);
      auto entry = find_locked(owner, task_id, now);
      if (!entry) return entry.error();
      cancelled = (*entry)->cancelled;
    }
    auto view = engine_.wait(task_id, engine_clock(engine_).now() + kWatchSlice, stop, {});
    if (!view) return view.error();
    if (engine::is_terminal(view->task.status)) return final_result(task_id, cancelled);
    if (stop.stop_requested()) {
      return make_error(ErrorCode::Unavailable, "tasks/result was cancelled before task " + task_id + " ended");
    }
    if (engine_.draining()) {
      return make_error(ErrorCode::Unavailable, "the server is restarting; ask tasks/result again in a moment");
    }
  }
}

Result<std::optional<json>> NativeTasks::result_if_done(const std::string& owner, const std::string& task_id) {
  auto task = get(owner, task_id);
  if (!task) return task.error();
  auto view = engine_.get(task_id);
  if (!view || !engine::is_terminal(view->task.status)) return std::optional<json>();
  return std::optional<json>(final_result(task_id, task->status == NativeTaskStatus::Cancelled));
}

Result<mcp::NativeTaskPage> NativeTasks::list(const std::string& owner, const std::string& cursor) {
  std::int64_t before = INT64_MAX;
  if (!cursor.empty()) {
    try {
      if (cursor.rfind(kCursorPrefix, 0) != 0) throw std::invalid_argument("prefix");
      std::size_t used = 0;
      before = std::stoll(cursor.substr(1), &used);
      if (used != cursor.size() - 1) throw std::invalid_argument("trailing");
    } catch (const std::exception&) {
      return make_error(ErrorCode::InvalidArgument, "tasks/list: '" + cursor +
                                                        "' is not a cursor this server gave; omit it for the first page");
    }
  }
  const std::int64_t now = to_unix_ms(engine_clock(engine_).wall_now());
  std::vector<std::pair<std::int64_t, std::string>> mine;  // seq, id
  {
    std::lock_guard lock(mu_);
    for (auto it = entries_.begin(); it != entries_.end();) {
      if (now >= it->second.created_at_ms + it->second.ttl_ms) {
        it = entries_.erase(it);
        continue;
      }
      if (it->second.owner == owner && it->second.seq < before) mine.emplace_back(it->second.seq, it->first);
      ++it;
    }
  }
  std::sort(mine.begin(), mine.end(), std::greater<>());
  mcp::NativeTaskPage page;
  std::int64_t last_seq = 0;
  for (const auto& [seq, id] : mine) {
    if (page.tasks.size() == options_.list_page) {
      page.next_cursor = kCursorPrefix + std::to_string(last_seq);
      break;
    }
    auto task = get(owner, id);
    if (!task) continue;  // expired or evicted meanwhile
    page.tasks.push_back(std::move(*task));
    last_seq = seq;
  }
  return page;
}

Result<NativeTask> NativeTasks::cancel(const std::string& owner, const std::string& task_id) {
  auto view = engine_.get(task_id);
  const std::int64_t now = to_unix_ms(engine_clock(engine_).wall_now());
  {
    std::lock_guard lock(mu_);
    auto entry = find_locked(owner, task_id, now);
    if (!entry) return entry.error();
    if (!view) return make_error(ErrorCode::NotFound, "task " + task_id + " is no longer retained by the engine");
    if ((*entry)->cancelled || engine::is_terminal(view->task.status)) {
      return make_error(ErrorCode::Conflict, "task " + task_id + " has already ended (" +
                                                 mcp::to_string(describe(*view, **entry).status) +
                                                 "); only a working task can be cancelled");
    }
    // Cancelled from now on, before we answer, whatever the processes do next (§9a).
    (*entry)->cancelled = true;
    (*entry)->updated_at_ms = now;
    (*entry)->last_status = NativeTaskStatus::Cancelled;
  }
  auto cancelled = engine_.cancel(task_id);
  if (!cancelled && cancelled.error().code != ErrorCode::Conflict) {
    spdlog::warn("native task {}: engine cancel failed: {}", task_id, cancelled.error().message);
  }
  auto after = engine_.get(task_id);
  std::lock_guard lock(mu_);
  auto entry = find_locked(owner, task_id, now);
  if (!entry) return entry.error();
  NativeTask out = describe(after ? *after : *view, **entry);
  return out;
}

void NativeTasks::watch(std::stop_token stop) {
  const std::uint64_t cursor =
      engine_.changes_since(0, engine_clock(engine_).now(), stop, engine::OnDrain::Return, engine::ViewDetail::State)
          .cursor;
  follow_changes(engine_, cursor, stop, [&](const engine::TaskChanges& changes) {
    const std::int64_t now = to_unix_ms(engine_clock(engine_).wall_now());
    std::vector<std::pair<mcp::NativeTaskListener, NativeTask>> calls;
    {
      std::lock_guard lock(mu_);
      for (const engine::TaskView& view : changes.changed) {
        auto it = entries_.find(view.task.id);
        if (it == entries_.end()) continue;
        Entry& e = it->second;
        const NativeTaskStatus now_status = e.cancelled ? NativeTaskStatus::Cancelled : native_status(view.task.status);
        const bool ended = engine::is_terminal(view.task.status);
        if (now_status != e.last_status) {
          e.last_status = now_status;
          e.updated_at_ms = now;
          if (e.listener) calls.emplace_back(e.listener, describe(view, e));
          for (const auto& w : e.watchers) calls.emplace_back(w, describe(view, e));
        }
        if (ended) {
          e.listener = nullptr;
          e.watchers.clear();
        }
      }
      for (auto it = entries_.begin(); it != entries_.end();) {
        if (now >= it->second.created_at_ms + it->second.ttl_ms) it = entries_.erase(it);
        else ++it;
      }
    }
    for (auto& [listener, task] : calls) {
      try {
        listener(task);
      } catch (const std::exception& e) {
        spdlog::error("native task {}: status listener failed: {}", task.id, e.what());
      }
    }
  });
}

}  // namespace orch::tools
