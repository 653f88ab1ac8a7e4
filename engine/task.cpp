#include "engine/task.h"

#include <sys/random.h>

#include <algorithm>
#include <cmath>
#include <nlohmann/json.hpp>

namespace orch::engine {

namespace {

struct StatusName { TaskStatus status; const char* name; };
constexpr StatusName kStatusNames[] = {
    {TaskStatus::Queued, "queued"},       {TaskStatus::Waiting, "waiting"},
    {TaskStatus::Running, "running"},     {TaskStatus::Completed, "completed"},
    {TaskStatus::Failed, "failed"},       {TaskStatus::Cancelled, "cancelled"},
};

struct ReasonName { EndReason reason; const char* name; };
constexpr ReasonName kReasonNames[] = {
    {EndReason::None, ""},
    {EndReason::ExitCode, "exit_code"},
    {EndReason::Signal, "signal"},
    {EndReason::Timeout, "timeout"},
    {EndReason::Cancelled, "cancelled"},
    {EndReason::DependencyFailed, "dependency_failed"},
    {EndReason::SpawnError, "spawn_error"},
    {EndReason::WorkerCrashed, "worker_crashed"},
    {EndReason::MemoryLimit, "memory_limit"},
    {EndReason::Lost, "lost"},
    {EndReason::WorkerError, "worker_error"},
};

constexpr char kBase32[] = "abcdefghijklmnopqrstuvwxyz234567";

}  // namespace

const char* to_string(TaskStatus s) {
  for (const auto& n : kStatusNames) if (n.status == s) return n.name;
  return "unknown";
}

const char* to_string(EndReason r) {
  for (const auto& n : kReasonNames) if (n.reason == r) return n.name;
  return "";
}

const char* to_string(StreamKind k) { return k == StreamKind::Stdout ? "stdout" : "stderr"; }

std::optional<TaskStatus> parse_task_status(std::string_view s) {
  for (const auto& n : kStatusNames) if (s == n.name) return n.status;
  return std::nullopt;
}

std::optional<EndReason> parse_end_reason(std::string_view s) {
  for (const auto& n : kReasonNames) if (s == n.name) return n.reason;
  return std::nullopt;
}

bool is_terminal(TaskStatus s) {
  return s == TaskStatus::Completed || s == TaskStatus::Failed || s == TaskStatus::Cancelled;
}

bool is_legal_transition(TaskStatus from, TaskStatus to) {
  using S = TaskStatus;
  if (is_terminal(from)) return false;
  switch (to) {
    case S::Queued: return from == S::Waiting || from == S::Running;  // deps met; lost → requeued
    case S::Waiting: return from == S::Queued || from == S::Running;  // retry back-off
    case S::Running: return from == S::Queued;
    case S::Completed: return from == S::Running;
    case S::Failed: return true;      // spawn errors and lost tasks fail from any live state
    case S::Cancelled: return true;   // a client may cancel any live task
  }
  return false;
}

std::int64_t retry_delay_ms(const RetryPolicy& p, int next_attempt, double unit_random) {
  double delay = static_cast<double>(p.delay_ms);
  if (p.backoff == Backoff::Exponential) {
    int doublings = std::clamp(next_attempt - 2, 0, 40);
    delay *= std::pow(2.0, doublings);
  }
  delay = std::min(delay, static_cast<double>(std::max(p.max_delay_ms, p.delay_ms)));
  double jittered = delay * (0.5 + 0.5 * std::clamp(unit_random, 0.0, 1.0));
  return static_cast<std::int64_t>(jittered);
}

TaskRecord state_of(const TaskRecord& t) {
  TaskRecord out;
  out.id = t.id;
  out.seq = t.seq;
  out.spec.name = t.spec.name;
  out.status = t.status;
  out.reason = t.reason;
  out.message = t.message;
  out.progress = t.progress;
  out.attempt = t.attempt;
  out.exit_code = t.exit_code;
  out.signal = t.signal;
  out.pid = t.pid;
  out.peak_rss_kb = t.peak_rss_kb;
  out.submitted_at_ms = t.submitted_at_ms;
  out.started_at_ms = t.started_at_ms;
  out.finished_at_ms = t.finished_at_ms;
  out.not_before_ms = t.not_before_ms;
  out.stdout_bytes = t.stdout_bytes;
  out.stderr_bytes = t.stderr_bytes;
  out.node = t.node;
  return out;
}

TaskId new_task_id() {
  unsigned char bytes[26];
  std::size_t got = 0;
  while (got < sizeof bytes) {
    ssize_t n = getrandom(bytes + got, sizeof bytes - got, 0);
    if (n > 0) got += static_cast<std::size_t>(n);
  }
  TaskId id = "t";
  for (unsigned char b : bytes) id.push_back(kBase32[b & 31]);
  return id;
}

bool looks_like_task_id(std::string_view s) {
  if (s.size() != 27 || s[0] != 't') return false;
  return std::all_of(s.begin() + 1, s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '2' && c <= '7');
  });
}

std::string spec_to_storage_json(const TaskSpec& spec) {
  nlohmann::json j;
  j["kind"] = spec.kind == TaskKind::Command ? "command" : spec.kind == TaskKind::Argv ? "argv" : "pool";
  if (spec.kind == TaskKind::Command) j["command"] = spec.command;
  else j["argv"] = spec.argv;
  if (!spec.profile.empty()) j["profile"] = spec.profile;
  if (spec.kind == TaskKind::Pool) j["input"] = spec.input_json;
  if (spec.limits.any()) {
    j["limits"] = {{"memoryMb", spec.limits.memory_mb},
                   {"cpuSec", spec.limits.cpu_sec},
                   {"openFiles", spec.limits.open_files}};
  }
  j["name"] = spec.name;
  j["tags"] = spec.tags;
  j["cwd"] = spec.cwd;
  j["env"] = spec.env;
  if (spec.stdin_data) j["stdin"] = *spec.stdin_data;
  j["priority"] = spec.priority;
  if (spec.timeout_ms) j["timeoutMs"] = *spec.timeout_ms;
  j["dependsOn"] = spec.depends_on;
  j["retry"] = {{"maxAttempts", spec.retry.max_attempts},
                {"backoff", spec.retry.backoff == Backoff::Fixed ? "fixed" : "exponential"},
                {"delayMs", spec.retry.delay_ms},
                {"maxDelayMs", spec.retry.max_delay_ms}};
  j["idempotencyKey"] = spec.idempotency_key;
  if (spec.run_at_ms) j["runAtMs"] = *spec.run_at_ms;
  return j.dump();
}

Result<TaskSpec> spec_from_storage_json(std::string_view text) {
  try {
    auto j = nlohmann::json::parse(text);
    TaskSpec spec;
    const std::string kind = j.at("kind").get<std::string>();
    spec.kind = kind == "argv" ? TaskKind::Argv : kind == "pool" ? TaskKind::Pool : TaskKind::Command;
    if (spec.kind == TaskKind::Command) spec.command = j.at("command").get<std::string>();
    else spec.argv = j.at("argv").get<std::vector<std::string>>();
    spec.profile = j.value("profile", "");
    if (spec.kind == TaskKind::Pool) spec.input_json = j.value("input", "null");
    if (auto it = j.find("limits"); it != j.end()) {
      spec.limits.memory_mb = it->value("memoryMb", std::int64_t{0});
      spec.limits.cpu_sec = it->value("cpuSec", std::int64_t{0});
      spec.limits.open_files = it->value("openFiles", std::int64_t{0});
    }
    spec.name = j.value("name", "");
    spec.tags = j.value("tags", std::vector<std::string>{});
    spec.cwd = j.value("cwd", "");
    spec.env = j.value("env", std::map<std::string, std::string>{});
    if (auto it = j.find("stdin"); it != j.end()) spec.stdin_data = it->get<std::string>();
    spec.priority = j.value("priority", 5);
    if (auto it = j.find("timeoutMs"); it != j.end()) spec.timeout_ms = it->get<std::int64_t>();
    spec.depends_on = j.value("dependsOn", std::vector<TaskId>{});
    if (auto it = j.find("retry"); it != j.end()) {
      spec.retry.max_attempts = it->value("maxAttempts", 1);
      spec.retry.backoff = it->value("backoff", "exponential") == "fixed" ? Backoff::Fixed
                                                                           : Backoff::Exponential;
      spec.retry.delay_ms = it->value("delayMs", std::int64_t{1000});
      spec.retry.max_delay_ms = it->value("maxDelayMs", std::int64_t{60000});
    }
    spec.idempotency_key = j.value("idempotencyKey", "");
    if (auto it = j.find("runAtMs"); it != j.end()) spec.run_at_ms = it->get<std::int64_t>();
    return spec;
  } catch (const nlohmann::json::exception& e) {
    return make_error(ErrorCode::Internal, std::string("stored task spec is unreadable: ") + e.what());
  }
}

std::string progress_to_storage_json(const std::optional<Progress>& p) {
  if (!p) return "";
  nlohmann::json j{{"current", p->current}, {"message", p->message}};
  if (p->total) j["total"] = *p->total;
  return j.dump();
}

std::optional<Progress> progress_from_storage_json(std::string_view text) {
  if (text.empty()) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(text);
    Progress p;
    p.current = j.value("current", 0.0);
    p.message = j.value("message", "");
    if (auto it = j.find("total"); it != j.end() && it->is_number()) p.total = it->get<double>();
    return p;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace orch::engine
