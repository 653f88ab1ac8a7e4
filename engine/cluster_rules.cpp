#include "engine/cluster_rules.h"

#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <functional>

#include "common/clock.h"

namespace orch::engine {

std::string default_node_name(const std::filesystem::path& state_dir) {
  char host[256] = {};
  if (::gethostname(host, sizeof host - 1) != 0 || host[0] == '\0') std::snprintf(host, sizeof host, "node");
  std::string name;
  for (const char* c = host; *c && name.size() < 40; ++c) {
    const bool plain = std::isalnum(static_cast<unsigned char>(*c)) || *c == '.' || *c == '-' || *c == '_';
    name += plain ? *c : '-';
  }
  std::error_code ec;
  auto path = std::filesystem::absolute(state_dir, ec);
  if (ec) path = state_dir;
  path = path.lexically_normal();
  if (path.filename().empty() && path.has_parent_path()) path = path.parent_path();  // "dir/" is "dir"
  // FNV-1a: stable across builds and runs, unlike std::hash.
  std::uint32_t hash = 2166136261u;
  for (unsigned char c : path.string()) {
    hash = (hash ^ c) * 16777619u;
  }
  char suffix[16];
  std::snprintf(suffix, sizeof suffix, "-%08x", hash);
  return name + suffix;
}

Status check_node_name(const std::string& name) {
  const bool ok = !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
  if (ok) return {};
  return make_error(ErrorCode::InvalidArgument,
                    "cluster.nodeName '" + name + "' is not a node name: use 1 to 64 letters, digits, '.', '-' or '_'");
}

Result<TaskRecord> admit_shared(TaskRecord task, SharedQueue& queue, std::size_t queue_size, std::int64_t now_ms) {
  auto backlog = queue.backlog();
  if (!backlog) return backlog.error();
  if (*backlog >= queue_size) {
    return make_error(ErrorCode::QueueFull,
                      "queue is full (" + std::to_string(queue_size) +
                          " tasks not yet running on all nodes); retry later, cancel tasks you no longer need, "
                          "or raise limits.queueSize");
  }
  std::vector<TaskId> deps;
  std::size_t pending = 0;
  std::string failed_dep;
  for (const TaskId& dep : task.spec.depends_on) {
    if (dep == task.id) return make_error(ErrorCode::InvalidArgument, "dependsOn: a task cannot depend on itself");
    if (std::find(deps.begin(), deps.end(), dep) != deps.end()) continue;
    auto found = queue.find(dep);
    if (!found) return found.error();
    if (!*found) {
      return make_error(ErrorCode::InvalidArgument,
                        "dependsOn: unknown task id '" + dep + "'; depend only on tasks that exist (see listTasks)");
    }
    deps.push_back(dep);
    const TaskStatus ds = (*found)->status;
    if ((ds == TaskStatus::Failed || ds == TaskStatus::Cancelled) && failed_dep.empty()) {
      failed_dep = "dependency " + dep + " " + to_string(ds);
    }
    if (ds != TaskStatus::Completed) ++pending;
  }
  task.spec.depends_on = std::move(deps);
  task.not_before_ms = task.spec.run_at_ms.value_or(0);
  task.node.clear();
  if (!failed_dep.empty()) {
    task.status = TaskStatus::Cancelled;
    task.reason = EndReason::DependencyFailed;
    task.message = failed_dep;
    task.finished_at_ms = now_ms;
  } else if (pending > 0) {
    task.status = TaskStatus::Waiting;
    task.message = "waiting for " + std::to_string(pending) + " of " + std::to_string(task.spec.depends_on.size()) +
                   " dependencies";
  } else if (task.not_before_ms > now_ms) {
    task.status = TaskStatus::Waiting;
    task.message = "scheduled to start at " + to_iso8601(task.not_before_ms);
  } else {
    task.status = TaskStatus::Queued;
  }
  return task;
}

TaskRecord rescue_decision(const TaskRecord& task, const std::string& dead_node, std::int64_t now_ms) {
  TaskRecord t = task;
  t.node.clear();
  if (t.status != TaskStatus::Running) {
    if (t.status == TaskStatus::Queued) t.message = "given back by node " + dead_node + ", which stopped renewing its lease";
    return t;
  }
  t.pid.reset();
  const int allowed = std::max(1, t.spec.retry.max_attempts) + 1;
  if (t.attempt < allowed) {
    t.status = TaskStatus::Queued;
    t.reason = EndReason::Lost;  // why the last attempt ended, while it waits for its next
    t.not_before_ms = 0;
    t.message = "attempt " + std::to_string(t.attempt) + " was lost with node " + dead_node +
                ", which stopped renewing its lease; queued again for another node";
    return t;
  }
  t.status = TaskStatus::Failed;
  t.reason = EndReason::Lost;
  t.finished_at_ms = now_ms;
  t.message = "attempt " + std::to_string(t.attempt) + " was lost with node " + dead_node +
              ", which stopped renewing its lease, and no attempts are left";
  return t;
}

}  // namespace orch::engine
