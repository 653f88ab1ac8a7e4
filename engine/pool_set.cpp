#include "engine/pool_set.h"

#include <fcntl.h>
#include <unistd.h>

#include <fstream>
#include <stdexcept>
#include <sstream>

namespace orch::engine {

namespace {

std::vector<std::string> env_over(const std::vector<std::string>& base, const std::map<std::string, std::string>& over) {
  std::map<std::string, std::string> merged;
  for (const std::string& kv : base) {
    auto eq = kv.find('=');
    if (eq != std::string::npos) merged[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  for (const auto& [k, v] : over) merged[k] = v;
  std::vector<std::string> out;
  for (const auto& [k, v] : merged) out.push_back(k + "=" + v);
  return out;
}

// Written before the attempt is reported, so a reader never sees the task
// completed without its result. In place, without a temporary file and a
// rename: readers look only after the attempt ended, and a file torn by a
// crash reads as no result (getResult leaves out what does not parse).
void save_result(const std::filesystem::path& path, const std::string& json_text) {
  std::error_code ec;
  std::filesystem::create_directories(path.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << json_text;
  out.flush();
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

AttemptOutcome to_outcome(const PoolOutcome& p) {
  AttemptOutcome o;
  o.peak_rss_kb = p.peak_rss_kb;
  o.stderr_bytes = p.stderr_bytes;
  o.error = p.message;
  switch (p.kind) {
    case PoolOutcome::Kind::Result: o.worker_result = true; break;
    case PoolOutcome::Kind::Error: o.worker_error = true; break;
    case PoolOutcome::Kind::MemoryLimit: o.memory_limit = true; break;
    case PoolOutcome::Kind::SpawnError: o.spawn_failed = true; break;
    case PoolOutcome::Kind::Crashed:
    case PoolOutcome::Kind::Malformed:
    case PoolOutcome::Kind::Stopped:
      o.worker_crashed = true;
      o.exit_code = p.exit_code;
      o.signal = p.signal;
      break;
  }
  return o;
}

}  // namespace

PoolSet::PoolSet(const std::vector<Profile>& profiles, const std::vector<std::string>& server_env, Spool& spool,
                 std::chrono::milliseconds stop_grace)
    : spool_(spool) {
  for (const Profile& p : profiles) {
    if (p.mode != ProfileMode::Pool) continue;
    ProcessPool::Options o;
    o.name = p.name;
    o.settings = p.pool;
    o.worker.argv = p.argv;
    o.worker.cwd = p.cwd;
    o.worker.env = env_over(server_env, p.env);
    o.hard_rss_mb = p.limits.memory_mb;
    o.stop_grace = stop_grace;
    settings_[p.name] = p.pool;
    pools_[p.name] = std::make_unique<ProcessPool>(std::move(o), spool_);
  }
}

PoolSet::~PoolSet() { shutdown(); }

Status PoolSet::start(const TaskRecord& task, std::function<void(pid_t)> on_started,
                      std::function<void(const Progress&)> on_progress,
                      std::function<void(const AttemptOutcome&)> on_end) {
  auto it = pools_.find(task.spec.profile);
  if (it == pools_.end()) {
    return make_error(ErrorCode::NotFound, "pool profile '" + task.spec.profile +
                                               "' is not configured any more; submit the task again");
  }
  std::error_code ec;
  const auto dir = spool_.dir() / task.id;
  if (task.attempt > 1) {
    // An earlier attempt's answer and output; the first has none to remove.
    for (const auto& old : {dir / kResultFile, spool_.path(task.id, StreamKind::Stdout),
                            spool_.path(task.id, StreamKind::Stderr)}) {
      std::filesystem::remove(old, ec);
    }
  }
  PoolRequest req;
  req.task_id = task.id;
  req.input_json = task.spec.input_json.empty() ? "null" : task.spec.input_json;
  req.on_started = std::move(on_started);
  req.on_progress = std::move(on_progress);
  req.on_done = [dir, on_end = std::move(on_end)](const PoolOutcome& p) {
    AttemptOutcome o = to_outcome(p);
    if (p.kind == PoolOutcome::Kind::Result) {
      try {
        save_result(dir / kResultFile, p.result_json);
      } catch (const std::exception& e) {
        o.worker_result = false;
        o.spawn_failed = false;
        o.worker_error = true;
        o.error = std::string("could not save the worker's result: ") + e.what();
      }
    }
    on_end(o);
  };
  return it->second->run(std::move(req));
}

bool PoolSet::stop(const TaskId& id) {
  for (auto& [name, pool] : pools_) {
    if (pool->stop_task(id)) return true;
  }
  return false;
}

std::vector<PoolStats> PoolSet::stats() const {
  std::vector<PoolStats> out;
  for (const auto& [name, pool] : pools_) {
    PoolStats s;
    s.profile = name;
    s.min = settings_.at(name).min;
    s.max = settings_.at(name).max;
    s.workers = pool->workers();
    out.push_back(std::move(s));
  }
  return out;
}

void PoolSet::shutdown() {
  for (auto& [name, pool] : pools_) pool->shutdown();
}

std::optional<std::string> read_pool_result(const std::filesystem::path& task_dir) {
  std::ifstream in(task_dir / kResultFile, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

}  // namespace orch::engine
