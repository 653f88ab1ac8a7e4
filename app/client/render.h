// What the command-line client prints, and how its flags become tool
// arguments: pure functions, so they are tested without a server.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace orch::app::client {

struct SubmitFlags {
  std::string command;            // the command form
  std::vector<std::string> argv;  // the argv form (after --)
  std::string name;
  std::vector<std::string> tags;
  std::string cwd;
  std::vector<std::string> env;   // KEY=VALUE
  std::optional<int> priority;
  std::optional<double> timeout_sec;
  std::vector<std::string> depends_on;
  std::optional<int> retries;
  std::string idempotency_key;
};

// submitTask's arguments; an --env without '=' or a negative --retries is an
// error that says so.
Result<nlohmann::json> submit_arguments(const SubmitFlags& flags);

// 850 → "850ms", 1234 → "1.2s", 184000 → "3m04s", 7320000 → "2h02m".
std::string format_duration(std::int64_t ms);
// "[#######.............]  35% compiling" sized for a terminal line, starting
// with a carriage return; clear_line() erases it.
std::string progress_line(const nlohmann::json& progress);
std::string clear_line();

// Columns: ID, STATUS, PROGRESS, DURATION, EXIT, NAME/COMMAND (cut to fit).
std::string render_task_table(const nlohmann::json& tasks, std::int64_t now_ms);
// "key: value" lines for getStatus {} (the orchestrator object).
std::string render_orchestrator(const nlohmann::json& orchestrator);
// "submitted t… (queued, position 3)".
std::string describe_submit(const nlohmann::json& submitted);
// "t… completed in 1.2s, exit 0".
std::string describe_result(const nlohmann::json& result);
std::string join_ids(const nlohmann::json& ids);

std::int64_t now_unix_ms();

}  // namespace orch::app::client
