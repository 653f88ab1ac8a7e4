// What both store backends share about a task row: the columns a task is
// read back from, in order, and how a row becomes a TaskRecord again
// (engine/store.h). A row type R gives column_text(i), column_int(i),
// column_optional_int(i) and column_is_null(i) over its backend's result.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <utility>

#include "common/result.h"
#include "engine/task.h"

namespace orch::engine::store_row {

// The columns of a task row, in the order kTaskColumns names them.
enum Column {
  kId, kSeq, kSpec, kStatus, kReason, kMessage, kProgress, kAttempt, kExitCode, kSignal,
  kPid, kPeakRss, kSubmittedAt, kStartedAt, kFinishedAt, kNotBefore, kStdoutBytes, kStderrBytes, kNode,
};
inline constexpr const char* kTaskColumns =
    "id, seq, spec, status, reason, message, progress, attempt, exit_code, signal, pid, "
    "peak_rss_kb, submitted_at_ms, started_at_ms, finished_at_ms, not_before_ms, stdout_bytes, "
    "stderr_bytes, node";

inline std::int64_t wall_clock_ms() {
  using namespace std::chrono;
  return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

// When a transition happened: the record names the moment for a start or an
// end (by the engine's clock, which tests may drive by hand); otherwise now.
inline std::int64_t transition_at_ms(const TaskRecord& t) {
  std::int64_t at = 0;
  if (is_terminal(t.status)) at = t.finished_at_ms;
  else if (t.status == TaskStatus::Running) at = t.started_at_ms;
  return at > 0 ? at : wall_clock_ms();
}

// A row that cannot be read back is an error naming the task; the row is
// left as it is for a person to look at.
template <typename Row>
Result<TaskRecord> decode_task(const Row& q) {
  TaskRecord t;
  t.id = q.column_text(kId);
  auto unreadable = [&](const std::string& what) {
    return make_error(ErrorCode::Internal, "store: task " + t.id + " cannot be read back: " + what +
                                               "; the row was left as it is");
  };
  auto spec = spec_from_storage_json(q.column_text(kSpec));
  if (!spec) return unreadable(spec.error().message);
  t.spec = std::move(*spec);
  t.seq = q.column_int(kSeq);
  const std::string status = q.column_text(kStatus);
  auto parsed_status = parse_task_status(status);
  if (!parsed_status) return unreadable("unknown status '" + status + "'");
  t.status = *parsed_status;
  const std::string reason = q.column_text(kReason);
  auto parsed_reason = parse_end_reason(reason);
  if (!parsed_reason) return unreadable("unknown reason '" + reason + "'");
  t.reason = *parsed_reason;
  t.message = q.column_text(kMessage);
  if (!q.column_is_null(kProgress)) {
    t.progress = progress_from_storage_json(q.column_text(kProgress));
    if (!t.progress) return unreadable("progress is not valid JSON");
  }
  t.attempt = static_cast<int>(q.column_int(kAttempt));
  t.exit_code = q.column_optional_int(kExitCode);
  t.signal = q.column_optional_int(kSignal);
  t.pid = q.column_optional_int(kPid);
  t.peak_rss_kb = q.column_int(kPeakRss);
  t.submitted_at_ms = q.column_int(kSubmittedAt);
  t.started_at_ms = q.column_int(kStartedAt);
  t.finished_at_ms = q.column_int(kFinishedAt);
  t.not_before_ms = q.column_int(kNotBefore);
  t.stdout_bytes = static_cast<std::uint64_t>(q.column_int(kStdoutBytes));
  t.stderr_bytes = static_cast<std::uint64_t>(q.column_int(kStderrBytes));
  t.node = q.column_text(kNode);
  return t;
}

}  // namespace orch::engine::store_row
