// Native task methods of the 2025-11-25 era over a TaskProvider
// (MCP-NOTES §9a): tasks/get, tasks/result, tasks/list, tasks/cancel, and the
// pieces a task-augmented tools/call needs (the Task JSON, error mapping).
//
// Task JSON (legacy): {taskId, status, statusMessage?, createdAt, lastUpdatedAt,
// ttl: ms|null, pollInterval?}, ISO 8601 UTC times. tasks/result blocks on the
// executor until the task ends and answers the CallToolResult with
// _meta["io.modelcontextprotocol/related-task"] = {taskId}.
// Provider errors: NotFound/InvalidArgument/Conflict → -32602 (unknown or
// expired id, bad cursor, cancel of an ended task), Unavailable and the rest → -32603.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "mcp/dispatcher.h"
#include "mcp/task_provider.h"

namespace orch::mcp {

inline constexpr const char* kRelatedTaskMeta = "io.modelcontextprotocol/related-task";

nlohmann::json legacy_task_json(const NativeTask& task);
RpcFault task_fault(const Error& error);

// params.taskId as a string, or a fault naming the method.
std::optional<std::string> task_id_param(const nlohmann::json& params, std::string_view method,
                                         Responder& responder);

// Registers the four tasks/* methods; `owner` is the session's auth context.
// `provider` must outlive the dispatcher.
void register_legacy_task_methods(Dispatcher& dispatcher, TaskProvider& provider, std::string owner);

}  // namespace orch::mcp
