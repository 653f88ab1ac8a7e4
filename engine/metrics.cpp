#include "engine/metrics.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace orch::engine {

namespace {

// Prometheus floats: integers without a fraction, others with enough digits.
std::string number(double v) {
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (std::floor(v) == v && std::fabs(v) < 1e15) return std::to_string(static_cast<long long>(v));
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

class Writer {
 public:
  void family(const char* name, const char* type, const char* help) {
    out_ << "# HELP orchestrator_" << name << ' ' << help << "\n# TYPE orchestrator_" << name << ' ' << type
         << '\n';
  }
  void sample(const std::string& name, double value, const std::string& labels = "") {
    out_ << "orchestrator_" << name;
    if (!labels.empty()) out_ << '{' << labels << '}';
    out_ << ' ' << number(value) << '\n';
  }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

}  // namespace

std::string prometheus_text(const EngineStats& s, const ProcessFacts& f) {
  Writer w;
  w.family("tasks", "gauge", "Tasks the server holds, by status.");
  for (TaskStatus status : {TaskStatus::Queued, TaskStatus::Waiting, TaskStatus::Running, TaskStatus::Completed,
                            TaskStatus::Failed, TaskStatus::Cancelled}) {
    auto it = s.by_status.find(status);
    w.sample("tasks", it == s.by_status.end() ? 0 : static_cast<double>(it->second),
             std::string("status=\"") + to_string(status) + "\"");
  }
  w.family("queue_depth", "gauge", "Tasks accepted and not yet running (queued and waiting).");
  w.sample("queue_depth", static_cast<double>(s.queue_depth));
  w.family("queue_limit", "gauge", "The most tasks that may wait before submits are refused.");
  w.sample("queue_limit", static_cast<double>(s.queue_limit));
  w.family("running_tasks", "gauge", "Task processes running now.");
  w.sample("running_tasks", s.running);
  w.family("max_concurrent", "gauge", "The most task processes allowed to run at once.");
  w.sample("max_concurrent", s.max_concurrent);
  w.family("workers", "gauge", "Worker threads, by state.");
  w.sample("workers", static_cast<double>(s.workers.busy), "state=\"busy\"");
  w.sample("workers", static_cast<double>(s.workers.idle), "state=\"idle\"");
  w.family("worker_threads_max", "gauge", "The most worker threads the pool may start.");
  w.sample("worker_threads_max", static_cast<double>(s.workers.max_threads));
  w.family("tasks_submitted_total", "counter", "Tasks submitted since this process started.");
  w.sample("tasks_submitted_total", static_cast<double>(s.tasks_submitted));
  w.family("spawn_errors_total", "counter", "Task processes that could not be started.");
  w.sample("spawn_errors_total", static_cast<double>(s.spawn_errors));

  w.family("task_duration_seconds", "histogram", "Run time of tasks that ran and ended since this process started.");
  const DurationHistogram& d = s.durations;
  for (std::size_t i = 0; i < d.bounds_s.size() && i < d.counts.size(); ++i) {
    w.sample("task_duration_seconds_bucket", static_cast<double>(d.counts[i]),
             "le=\"" + number(d.bounds_s[i]) + "\"");
  }
  w.sample("task_duration_seconds_bucket", static_cast<double>(d.count), "le=\"+Inf\"");
  w.sample("task_duration_seconds_sum", d.sum_s);
  w.sample("task_duration_seconds_count", static_cast<double>(d.count));

  w.family("resident_memory_bytes", "gauge", "The server's resident memory.");
  w.sample("resident_memory_bytes", static_cast<double>(s.rss_kb) * 1024);
  w.family("peak_resident_memory_bytes", "gauge", "The server's peak resident memory.");
  w.sample("peak_resident_memory_bytes", static_cast<double>(s.peak_rss_kb) * 1024);
  if (s.mem_available_kb >= 0) {
    w.family("memory_available_bytes", "gauge", "Memory the machine has available (MemAvailable).");
    w.sample("memory_available_bytes", static_cast<double>(s.mem_available_kb) * 1024);
  }
  w.family("uptime_seconds", "gauge", "Seconds since this process started.");
  w.sample("uptime_seconds", static_cast<double>(s.uptime_ms) / 1000.0);
  w.family("start_time_seconds", "gauge", "Unix time this process started.");
  w.sample("start_time_seconds", static_cast<double>(s.started_at_ms / 1000));
  w.family("restarts_total", "counter", "Restarts in place since the first start.");
  w.sample("restarts_total", static_cast<double>(s.restarts.count));
  w.family("healthy", "gauge", "1 when the last health check passed (or none ran yet), else 0.");
  w.sample("healthy", s.health.report.healthy ? 1 : 0);
  if (!s.health.report.checks.empty()) {
    w.family("health_check_ok", "gauge", "1 when this health check passed in the last round, else 0.");
    for (const HealthCheck& c : s.health.report.checks) {
      w.sample("health_check_ok", c.ok ? 1 : 0, "check=\"" + c.name + "\"");
    }
  }
  w.family("restart_limited", "gauge",
           "1 when the server is unhealthy but the automatic restart limit is reached (degraded).");
  w.sample("restart_limited", s.health.restart_limited ? 1 : 0);
  w.family("http_threads", "gauge", "HTTP connection threads, by state.");
  w.sample("http_threads", static_cast<double>(f.http_busy), "state=\"busy\"");
  w.sample("http_threads", static_cast<double>(f.http_threads - std::min(f.http_threads, f.http_busy)),
           "state=\"idle\"");
  w.family("http_open_streams", "gauge", "Streamed HTTP responses (SSE) in progress.");
  w.sample("http_open_streams", static_cast<double>(f.http_streams));
  w.family("mcp_sessions", "gauge", "MCP sessions open over Streamable HTTP.");
  w.sample("mcp_sessions", static_cast<double>(f.mcp_sessions));
  return w.text();
}

}  // namespace orch::engine
