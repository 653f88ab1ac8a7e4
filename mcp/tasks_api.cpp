#include "mcp/tasks_api.h"

#include <utility>

#include "common/clock.h"
#include "mcp/jsonrpc.h"

namespace orch::mcp {

using nlohmann::json;

const char* to_string(NativeTaskStatus status) {
  switch (status) {
    case NativeTaskStatus::Working: return "working";
    case NativeTaskStatus::InputRequired: return "input_required";
    case NativeTaskStatus::Completed: return "completed";
    case NativeTaskStatus::Failed: return "failed";
    case NativeTaskStatus::Cancelled: return "cancelled";
  }
  return "working";
}

bool is_terminal(NativeTaskStatus status) {
  return status == NativeTaskStatus::Completed || status == NativeTaskStatus::Failed ||
         status == NativeTaskStatus::Cancelled;
}

json legacy_task_json(const NativeTask& task) {
  json j{{"taskId", task.id},
         {"status", to_string(task.status)},
         {"createdAt", to_iso8601(task.created_at_ms)},
         {"lastUpdatedAt", to_iso8601(task.last_updated_at_ms)},
         // The spec requires ttl in every task response; null means unlimited.
         {"ttl", task.ttl_ms ? json(*task.ttl_ms) : json(nullptr)}};
  if (!task.status_message.empty()) j["statusMessage"] = task.status_message;
  if (task.poll_interval_ms > 0) j["pollInterval"] = task.poll_interval_ms;
  return j;
}

RpcFault task_fault(const Error& error) {
  switch (error.code) {
    case ErrorCode::NotFound:
    case ErrorCode::InvalidArgument:
    case ErrorCode::Conflict:
      return RpcFault{kInvalidParams, error.message};
    default:
      return RpcFault{kInternalError, error.message};
  }
}

std::optional<std::string> task_id_param(const json& params, std::string_view method, Responder& responder) {
  auto id = params.find("taskId");
  if (id == params.end() || !id->is_string() || id->get<std::string>().empty()) {
    responder.error(kInvalidParams, std::string(method) + " needs params.taskId, the id tools/call returned in task.taskId");
    return std::nullopt;
  }
  return id->get<std::string>();
}

void register_legacy_task_methods(Dispatcher& dispatcher, TaskProvider& provider, std::string owner) {
  dispatcher.on_request("tasks/get", Run::OnExecutor, [&provider, owner](const json& params, Responder r) {
    auto id = task_id_param(params, "tasks/get", r);
    if (!id) return;
    auto task = provider.get(owner, *id);
    if (!task) return r.error(task_fault(task.error()));
    r.result(legacy_task_json(*task));
  });
  // Blocks until the task ends: on the executor, never inline.
  dispatcher.on_request("tasks/result", Run::OnExecutor, [&provider, owner](const json& params, Responder r) {
    auto id = task_id_param(params, "tasks/result", r);
    if (!id) return;
    auto result = provider.result(owner, *id, r.stop_token());
    if (!result) return r.error(task_fault(result.error()));
    json out = std::move(*result);
    if (!out.is_object()) out = json::object();
    if (!out.contains("_meta") || !out["_meta"].is_object()) out["_meta"] = json::object();
    out["_meta"][kRelatedTaskMeta] = {{"taskId", *id}};
    r.result(std::move(out));
  });
  dispatcher.on_request("tasks/list", Run::OnExecutor, [&provider, owner](const json& params, Responder r) {
    std::string cursor;
    if (auto c = params.find("cursor"); c != params.end() && !c->is_null()) {
      if (!c->is_string()) return r.error(kInvalidParams, "tasks/list params.cursor must be the nextCursor string of an earlier page");
      cursor = c->get<std::string>();
    }
    auto page = provider.list(owner, cursor);
    if (!page) return r.error(task_fault(page.error()));
    json tasks = json::array();
    for (const NativeTask& t : page->tasks) tasks.push_back(legacy_task_json(t));
    json out{{"tasks", std::move(tasks)}};
    if (page->next_cursor) out["nextCursor"] = *page->next_cursor;
    r.result(std::move(out));
  });
  dispatcher.on_request("tasks/cancel", Run::OnExecutor, [&provider, owner](const json& params, Responder r) {
    auto id = task_id_param(params, "tasks/cancel", r);
    if (!id) return;
    auto task = provider.cancel(owner, *id);
    if (!task) return r.error(task_fault(task.error()));
    r.result(legacy_task_json(*task));
  });
}

}  // namespace orch::mcp
