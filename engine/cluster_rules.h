// The rules of several servers on one store that are not SQL (docs/CLUSTER.md):
// how a node is named, how a submitted task enters the shared queue, and
// what becomes of a task whose node stopped renewing its lease. Plain
// functions over plain values; the Engine runs them.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>

#include "common/result.h"
#include "engine/shared_queue.h"
#include "engine/task.h"

namespace orch::engine {

// <hostname>-<8 hex digits of the state directory's absolute path>: the same
// across restarts of one server, different for two servers on one machine.
std::string default_node_name(const std::filesystem::path& state_dir);

// A node name is what a person reads in getStatus and types in a config:
// 1 to 64 of [A-Za-z0-9._-].
Status check_node_name(const std::string& name);

// Admits a new task to the shared queue as the single server's Scheduler
// admits one to its table: the queue bound over every node's backlog,
// dependencies that exist (deduplicated, not itself), a dependency that
// failed or was cancelled ends the task at once, and the status it starts
// in: waiting (for dependencies or runAt) or queued. `task` has its id, seq,
// spec and submitted_at_ms.
Result<TaskRecord> admit_shared(TaskRecord task, SharedQueue& queue, std::size_t queue_size, std::int64_t now_ms);

// The rescuer's decision for a task of a node that died: one that was
// running goes back to the queue for another node (a node lost is not the
// task's fault, so one attempt more than retry.maxAttempts is allowed; after
// that it fails as lost); one that was only claimed, or waiting to retry,
// is given back as it is.
TaskRecord rescue_decision(const TaskRecord& task, const std::string& dead_node, std::int64_t now_ms);

}  // namespace orch::engine
