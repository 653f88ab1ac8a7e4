#include "app/client/render.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

namespace orch::app::client {

using nlohmann::json;

namespace {

constexpr std::size_t kCommandWidth = 48;
constexpr int kBarWidth = 24;

std::string cut(std::string s, std::size_t width) {
  for (char& ch : s) {
    if (ch == '\n' || ch == '\t') ch = ' ';
  }
  if (s.size() <= width) return s;
  return s.substr(0, width - 3) + "...";
}

std::string what_of(const json& task) {
  if (task.contains("name") && task["name"].is_string() && !task["name"].get<std::string>().empty()) {
    return task["name"];
  }
  if (task.contains("command") && task["command"].is_string()) return task["command"];
  if (task.contains("argv") && task["argv"].is_array()) {
    std::string joined;
    for (const json& a : task["argv"]) joined += (joined.empty() ? "" : " ") + a.get<std::string>();
    return joined;
  }
  return "";
}

std::string percent(const json& task) {
  if (!task.contains("progress")) return "";
  const json& p = task["progress"];
  if (!p.contains("total") || !p["total"].is_number() || p["total"].get<double>() <= 0) return "";
  double pct = 100.0 * p.value("current", 0.0) / p["total"].get<double>();
  return std::to_string(static_cast<int>(std::clamp(pct, 0.0, 100.0))) + "%";
}

}  // namespace

Result<json> submit_arguments(const SubmitFlags& f) {
  json args = json::object();
  if (!f.argv.empty()) args["argv"] = f.argv;
  else args["command"] = f.command;
  if (!f.name.empty()) args["name"] = f.name;
  if (!f.tags.empty()) args["tags"] = f.tags;
  if (!f.cwd.empty()) args["cwd"] = f.cwd;
  if (!f.env.empty()) {
    json env = json::object();
    for (const std::string& kv : f.env) {
      auto eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        return make_error(ErrorCode::InvalidArgument, "--env " + kv + ": write KEY=VALUE");
      }
      env[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
    args["env"] = env;
  }
  if (f.priority) args["priority"] = *f.priority;
  if (f.timeout_sec) args["timeoutSec"] = *f.timeout_sec;
  if (!f.depends_on.empty()) args["dependsOn"] = f.depends_on;
  if (f.retries) {
    if (*f.retries < 0) return make_error(ErrorCode::InvalidArgument, "--retries must be 0 or more");
    args["retry"] = {{"maxAttempts", *f.retries + 1}};
  }
  if (!f.idempotency_key.empty()) args["idempotencyKey"] = f.idempotency_key;
  return args;
}

std::string format_duration(std::int64_t ms) {
  if (ms < 0) ms = 0;
  char buf[32];
  if (ms < 1000) {
    std::snprintf(buf, sizeof buf, "%lldms", static_cast<long long>(ms));
  } else if (ms < 60'000) {
    std::snprintf(buf, sizeof buf, "%.1fs", static_cast<double>(ms) / 1000.0);
  } else if (ms < 3'600'000) {
    std::snprintf(buf, sizeof buf, "%lldm%02llds", static_cast<long long>(ms / 60'000),
                  static_cast<long long>((ms / 1000) % 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldh%02lldm", static_cast<long long>(ms / 3'600'000),
                  static_cast<long long>((ms / 60'000) % 60));
  }
  return buf;
}

std::string progress_line(const json& p) {
  const double current = p.value("current", 0.0);
  const double total = p.contains("total") && p["total"].is_number() ? p["total"].get<double>() : 0.0;
  std::string line = "\r[";
  if (total > 0) {
    const double share = std::clamp(current / total, 0.0, 1.0);
    const int filled = static_cast<int>(share * kBarWidth);
    line += std::string(static_cast<std::size_t>(filled), '#') + std::string(static_cast<std::size_t>(kBarWidth - filled), '.');
    char pct[16];
    std::snprintf(pct, sizeof pct, "] %3d%%", static_cast<int>(share * 100));
    line += pct;
  } else {
    char value[32];
    std::snprintf(value, sizeof value, "%g", current);
    line += std::string(kBarWidth, '?') + "] " + value;
  }
  const std::string message = p.value("message", "");
  if (!message.empty()) line += " " + cut(message, 40);
  return line + "\x1b[K";
}

std::string clear_line() { return "\r\x1b[K"; }

std::string render_task_table(const json& tasks, std::int64_t now_ms) {
  std::vector<std::array<std::string, 6>> rows;
  rows.push_back({"ID", "STATUS", "PROGRESS", "DURATION", "EXIT", "NAME/COMMAND"});
  for (const json& t : tasks) {
    std::string duration;
    if (t.contains("durationMs") && t["durationMs"].is_number_integer()) {
      duration = format_duration(t["durationMs"]);
    } else if (t.contains("startedAt") && t["startedAt"].is_string()) {
      (void)now_ms;  // running tasks carry durationMs too; this covers older servers
    }
    std::string exit;
    if (t.contains("exitCode") && t["exitCode"].is_number_integer()) exit = std::to_string(t["exitCode"].get<int>());
    else if (t.contains("signal") && t["signal"].is_number_integer()) exit = "sig " + std::to_string(t["signal"].get<int>());
    std::string status = t.value("status", "");
    if (t.contains("reason") && t["reason"].is_string() && t["reason"] != "exit_code" && t["reason"] != status) {
      status += " (" + t["reason"].get<std::string>() + ")";
    }
    rows.push_back({t.value("taskId", ""), status, percent(t), duration, exit, cut(what_of(t), kCommandWidth)});
  }
  std::array<std::size_t, 6> width{};
  for (const auto& row : rows) {
    for (std::size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::ostringstream out;
  for (const auto& row : rows) {
    std::string line;
    for (std::size_t i = 0; i < row.size(); ++i) {
      line += row[i];
      if (i + 1 < row.size()) line += std::string(width[i] - row[i].size() + 2, ' ');
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out << line << "\n";
  }
  if (tasks.empty()) out << "(no tasks)\n";
  return out.str();
}

std::string render_orchestrator(const json& o) {
  std::ostringstream out;
  for (const auto& [key, value] : o.items()) {
    out << key << ": " << (value.is_string() ? value.get<std::string>() : value.dump()) << "\n";
  }
  return out.str();
}

std::string describe_submit(const json& s) {
  std::string text = "submitted " + s.value("taskId", std::string("?")) + " (" + s.value("status", std::string("?"));
  if (s.contains("queuePosition") && s["queuePosition"].is_number_integer()) {
    text += ", position " + std::to_string(s["queuePosition"].get<int>());
  }
  if (s.value("deduplicated", false)) text += ", an earlier task with the same idempotency key";
  return text + ")";
}

std::string describe_result(const json& r) {
  std::string text = r.value("taskId", std::string("?")) + " " + r.value("status", std::string("?"));
  if (r.contains("durationMs") && r["durationMs"].is_number_integer()) text += " in " + format_duration(r["durationMs"]);
  if (r.contains("exitCode") && r["exitCode"].is_number_integer()) text += ", exit " + std::to_string(r["exitCode"].get<int>());
  if (r.contains("message") && r["message"].is_string() && !r["message"].get<std::string>().empty()) {
    text += ": " + r["message"].get<std::string>();
  }
  return text;
}

std::string join_ids(const json& ids) {
  std::string out;
  for (const json& id : ids) out += (out.empty() ? "" : ", ") + (id.is_string() ? id.get<std::string>() : id.dump());
  return out;
}

std::int64_t now_unix_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace orch::app::client
