// Task records for the store tests (tests/unit/engine/*store_test.cpp): a
// plain one, one with every field set, and a field-by-field comparison.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <utility>

#include "engine/task.h"

namespace orch::test {

using engine::Backoff;
using engine::EndReason;
using engine::Progress;
using engine::TaskKind;
using engine::TaskRecord;
using engine::TaskStatus;

inline constexpr std::int64_t kT0 = 1'800'000'000'000;  // a fixed "now" in Unix ms

inline TaskRecord make_task(std::int64_t seq, std::string id = {}) {
  TaskRecord t;
  t.id = id.empty() ? engine::new_task_id() : std::move(id);
  t.seq = seq;
  t.spec.command = "echo " + std::to_string(seq);
  t.submitted_at_ms = kT0 + seq;
  return t;
}

// Every field set to something other than its default.
inline TaskRecord full_task() {
  TaskRecord t;
  t.id = engine::new_task_id();
  t.seq = 42;
  t.spec.kind = TaskKind::Argv;
  t.spec.argv = {"/bin/printf", "%s\\n", "a b", "ünïcødé"};
  t.spec.name = "build";
  t.spec.tags = {"ci", "nightly"};
  t.spec.cwd = "work/dir";
  t.spec.env = {{"A", "1"}, {"EMPTY", ""}, {"QUOTE", "it's \"quoted\""}};
  t.spec.stdin_data = std::string("line 1\nline 2\0tail", 18);
  t.spec.priority = 9;
  t.spec.timeout_ms = 90'000;
  t.spec.depends_on = {"tdep1", "tdep2"};
  t.spec.retry = {3, Backoff::Fixed, 250, 4000};
  t.spec.idempotency_key = "key-1";
  t.spec.run_at_ms = kT0 + 5000;
  t.status = TaskStatus::Failed;
  t.reason = EndReason::Signal;
  t.message = "killed by signal 9";
  t.progress = Progress{3, 10, "step 3"};
  t.attempt = 2;
  t.exit_code = -1;
  t.signal = 9;
  t.pid = 12345;
  t.peak_rss_kb = 65536;
  t.submitted_at_ms = kT0;
  t.started_at_ms = kT0 + 6000;
  t.finished_at_ms = kT0 + 7000;
  t.not_before_ms = kT0 + 5000;
  t.stdout_bytes = 5'000'000'000ULL;  // past 32 bits
  t.stderr_bytes = 17;
  t.node = "node-a";
  return t;
}

inline void expect_same(const TaskRecord& a, const TaskRecord& b) {
  EXPECT_EQ(a.id, b.id);
  EXPECT_EQ(a.seq, b.seq);
  EXPECT_EQ(engine::spec_to_storage_json(a.spec), engine::spec_to_storage_json(b.spec));
  EXPECT_EQ(a.spec.stdin_data, b.spec.stdin_data);
  EXPECT_EQ(a.status, b.status);
  EXPECT_EQ(a.reason, b.reason);
  EXPECT_EQ(a.message, b.message);
  EXPECT_EQ(a.progress, b.progress);
  EXPECT_EQ(a.attempt, b.attempt);
  EXPECT_EQ(a.exit_code, b.exit_code);
  EXPECT_EQ(a.signal, b.signal);
  EXPECT_EQ(a.pid, b.pid);
  EXPECT_EQ(a.peak_rss_kb, b.peak_rss_kb);
  EXPECT_EQ(a.submitted_at_ms, b.submitted_at_ms);
  EXPECT_EQ(a.started_at_ms, b.started_at_ms);
  EXPECT_EQ(a.finished_at_ms, b.finished_at_ms);
  EXPECT_EQ(a.not_before_ms, b.not_before_ms);
  EXPECT_EQ(a.stdout_bytes, b.stdout_bytes);
  EXPECT_EQ(a.stderr_bytes, b.stderr_bytes);
  EXPECT_EQ(a.node, b.node);
}

}  // namespace orch::test
