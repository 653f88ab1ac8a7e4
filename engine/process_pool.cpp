#include "engine/process_pool.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <list>
#include <set>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "common/thread_name.h"
#include "engine/platform.h"
#include "engine/process_spawn.h"
#include "engine/worker_line.h"

namespace orch::engine {

namespace {

using Clock = std::chrono::steady_clock;

// A protocol line longer than this is refused: it would otherwise sit in
// the server's memory (SPEC §4, bounded buffers).
constexpr std::size_t kMaxLineBytes = 16u << 20;
// A retired worker gets this long to exit on stdin EOF before SIGKILL.
constexpr std::chrono::milliseconds kRetireGrace{1000};

std::string first_bytes(const std::string& s, std::size_t n = 200) {
  return s.size() <= n ? s : s.substr(0, n) + "...";
}

void discard_available(int fd) {
  char buf[65536];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return;
  }
}

std::size_t drain_counted(int fd) {
  char buf[65536];
  std::size_t total = 0;
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return total;
    total += static_cast<std::size_t>(n);
  }
}

}  // namespace

struct ProcessPool::Impl {
  struct Worker {
    pid_t pid = 0;
    UniqueFd in, out, err;
    std::string state = "starting";
    int tasks_served = 0;
    std::optional<PoolRequest> job;  // assigned, not yet taken; guarded by mu
    TaskId current;                  // guarded by mu
    bool stop_current = false;       // guarded by mu: stop_task() asked
    std::optional<Clock::time_point> kill_at;  // guarded by mu
    bool retiring = false;           // guarded by mu: counts no more toward the pool's size
    bool done = false;               // guarded by mu: its thread is about to end
    std::condition_variable wake;
    std::thread thread;              // joined by the pool
  };

  Options opts;
  Spool& spool;
  mutable std::mutex mu;
  std::list<std::unique_ptr<Worker>> workers;  // guarded by mu
  std::deque<PoolRequest> pending;             // guarded by mu
  std::set<TaskId> stopped_pending;            // guarded by mu: stopped before a worker took them
  bool stopping = false;                       // guarded by mu

  Impl(Options o, Spool& s) : opts(std::move(o)), spool(s) {}

  int live_locked() const {
    int n = 0;
    for (const auto& w : workers) n += (!w->retiring && !w->done) ? 1 : 0;
    return n;
  }

  // Starts a worker's thread; the thread spawns the process.
  void add_worker_locked(std::optional<PoolRequest> job) {
    auto w = std::make_unique<Worker>();
    w->job = std::move(job);
    Worker* raw = w.get();
    workers.push_back(std::move(w));
    raw->thread = std::thread([this, raw] {
      name_this_thread("orch-pool");
      serve(*raw);
    });
  }

  // Threads that ended are joined outside the lock.
  std::vector<std::unique_ptr<Worker>> take_done_locked() {
    std::vector<std::unique_ptr<Worker>> out;
    for (auto it = workers.begin(); it != workers.end();) {
      if ((*it)->done) {
        out.push_back(std::move(*it));
        it = workers.erase(it);
      } else {
        ++it;
      }
    }
    return out;
  }

  static void join_all(std::vector<std::unique_ptr<Worker>>& done) {
    for (auto& w : done) {
      if (w->thread.joinable()) w->thread.join();
    }
  }

  Status spawn(Worker& w) {
    LaunchSpec spec = opts.worker;
    auto plan = prepare_spawn(spec);
    if (!plan) return plan.error();
    auto in = platform::make_pipe();
    if (!in) return in.error();
    auto out = make_output_pipe();
    if (!out) return out.error();
    auto err = make_output_pipe();
    if (!err) return err.error();
    plan->stdin_fd = std::move(in->first);
    auto pid = spawn_process(spec, std::move(*plan), std::move(out->write_end), std::move(err->write_end));
    if (!pid) return pid.error();
    std::lock_guard lock(mu);
    w.pid = *pid;
    w.in = std::move(in->second);
    w.out = std::move(out->read_end);
    w.err = std::move(err->read_end);
    w.state = "idle";
    return {};
  }

  // Kills the worker's group and reaps it; fills exit code/signal.
  void kill_and_reap(Worker& w, PoolOutcome* outcome, int sig = SIGKILL) {
    if (w.pid <= 0) return;
    ::kill(-w.pid, sig);
    reap(w, outcome);
  }

  // Only this worker's thread writes w.pid; others read it under mu to
  // signal the group. It is cleared under mu while the worker is still an
  // unreaped zombie, so no signal can reach a process that reused its pid.
  void reap(Worker& w, PoolOutcome* outcome) {
    siginfo_t info{};
    int r;
    do {
      r = ::waitid(P_PID, static_cast<id_t>(w.pid), &info, WEXITED | WNOWAIT);
    } while (r < 0 && errno == EINTR);
    ::kill(-w.pid, SIGKILL);  // anything it left in its group
    const pid_t pid = w.pid;
    {
      std::lock_guard lock(mu);
      w.pid = 0;
    }
    int status = 0;
    pid_t reaped;
    do {
      reaped = ::waitpid(pid, &status, 0);
    } while (reaped < 0 && errno == EINTR);
    if (reaped == pid && outcome) {
      if (WIFEXITED(status)) outcome->exit_code = WEXITSTATUS(status);
      if (WIFSIGNALED(status)) outcome->signal = WTERMSIG(status);
    }
  }

  // Closes stdin (the protocol's "please exit"), waits briefly for stdout's
  // EOF, then kills whatever is left and reaps.
  void retire(Worker& w) {
    if (w.pid <= 0) return;
    w.in.reset();
    auto deadline = Clock::now() + kRetireGrace;
    while (Clock::now() < deadline) {
      pollfd p{w.out.get(), POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      int r = ::poll(&p, 1, static_cast<int>(std::max<std::int64_t>(left, 1)));
      if (r < 0 && errno == EINTR) continue;
      if (r <= 0) break;
      char buf[4096];
      ssize_t n = ::read(w.out.get(), buf, sizeof buf);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) break;
    }
    kill_and_reap(w, nullptr);
  }

  void fail_all(std::vector<PoolRequest>& requests, const std::string& message) {
    for (PoolRequest& r : requests) {
      PoolOutcome o;
      o.kind = PoolOutcome::Kind::SpawnError;
      o.message = message;
      if (r.on_done) r.on_done(o);
    }
  }

  void serve(Worker& w) {
    // A write to a worker that died must fail with EPIPE, not signal us.
    sigset_t pipe_set;
    sigemptyset(&pipe_set);
    sigaddset(&pipe_set, SIGPIPE);
    ::pthread_sigmask(SIG_BLOCK, &pipe_set, nullptr);

    if (auto st = spawn(w); !st) {
      std::vector<PoolRequest> failed;
      {
        std::lock_guard lock(mu);
        if (w.job) failed.push_back(std::move(*w.job));
        w.job.reset();
        // The next start would fail the same way: do not leave them waiting.
        if (live_locked() <= 1) {
          for (auto& r : pending) failed.push_back(std::move(r));
          pending.clear();
        }
        w.done = true;
      }
      spdlog::warn("pool {}: cannot start a worker: {}", opts.name, st.error().message);
      fail_all(failed, "cannot start a worker of pool '" + opts.name + "': " + st.error().message);
      return;
    }
    spdlog::debug("pool {}: worker {} started", opts.name, w.pid);
    bool broken = false;
    for (;;) {
      PoolRequest req;
      {
        std::unique_lock lock(mu);
        w.state = "idle";
        for (;;) {
          if (stopping) break;
          if (!w.job && !pending.empty()) {
            w.job = std::move(pending.front());
            pending.pop_front();
          }
          if (w.job) break;
          const bool may_expire = live_locked() > opts.settings.min;
          if (may_expire) {
            auto idle = std::chrono::milliseconds(opts.settings.idle_timeout_ms);
            if (!w.wake.wait_for(lock, idle, [&] { return stopping || w.job || !pending.empty(); })) {
              if (live_locked() > opts.settings.min) {
                w.retiring = true;
                break;
              }
            }
          } else {
            w.wake.wait(lock, [&] { return stopping || w.job || !pending.empty() || live_locked() > opts.settings.min; });
          }
        }
        if (stopping || w.retiring) break;
        req = std::move(*w.job);
        w.job.reset();
        if (stopped_pending.erase(req.task_id) > 0) {
          // Stopped while it waited: it ends here, outside the lock.
          lock.unlock();
          PoolOutcome o;
          o.kind = PoolOutcome::Kind::Stopped;
          o.message = "stopped before a worker took it";
          if (req.on_done) req.on_done(o);
          continue;
        }
        w.state = "busy";
        w.current = req.task_id;
        w.stop_current = false;
        w.kill_at.reset();
      }
      if (req.on_started) req.on_started(w.pid);
      PoolOutcome outcome = run_one(w, req);
      outcome.worker_pid = w.pid;
      std::int64_t rss = w.pid > 0 ? platform::process_rss_kb(w.pid) : -1;
      bool recycle = false;
      {
        std::lock_guard lock(mu);
        ++w.tasks_served;
        w.current.clear();
        broken = w.pid <= 0;
        if (!broken) {
          const auto& s = opts.settings;
          recycle = (s.max_tasks_per_worker > 0 && w.tasks_served >= s.max_tasks_per_worker) ||
                    (s.max_worker_rss_mb > 0 && rss > s.max_worker_rss_mb * 1024);
          if (recycle) {
            w.retiring = true;
            w.state = "stopping";
          } else {
            w.state = "idle";  // run() may hand it the next task while on_done runs
          }
        }
      }
      if (recycle) {
        spdlog::debug("pool {}: recycling worker {} after {} tasks (rss {} KiB)", opts.name, w.pid, w.tasks_served, rss);
      }
      if (req.on_done) req.on_done(outcome);
      if (broken || recycle) break;
    }
    {
      std::lock_guard lock(mu);
      w.state = "stopping";
      w.retiring = true;
    }
    retire(w);
    std::lock_guard lock(mu);
    w.done = true;
    // Keep `min` warm, and serve what waits, with a fresh worker.
    if (!stopping && (live_locked() < opts.settings.min ||
                      (!pending.empty() && live_locked() < opts.settings.max))) {
      add_worker_locked(std::nullopt);
    }
  }

  // One task on worker `w`: request line out, protocol lines in.
  PoolOutcome run_one(Worker& w, const PoolRequest& req) {
    PoolOutcome o;
    discard_available(w.err.get());  // between-task noise belongs to no task
    // Lines after an answer that came in a later write: they would be taken
    // as this task's; they belong to none.
    if (std::size_t stale = drain_counted(w.out.get()); stale > 0) {
      spdlog::warn("pool {}: worker {} printed {} bytes after its last answer; discarded", opts.name, w.pid, stale);
    }
    // Files are made only when there is something to keep: creating one costs
    // about as much as the whole round trip to a warm worker. A worker has no
    // stdout of the task's (its stdout is the protocol), and a missing stderr
    // file reads as empty.
    std::unique_ptr<SpoolWriter> err_writer;
    auto stderr_chunk = [&](const char* data, std::size_t n) {
      if (!err_writer) {
        auto opened = spool.open_writer(req.task_id, StreamKind::Stderr);
        if (!opened) return;
        err_writer = std::move(*opened);
      }
      (void)err_writer->append(data, n);
    };
    const std::string line = "{\"id\":" + nlohmann::json(req.task_id).dump() + ",\"input\":" + req.input_json + "}\n";
    if (!write_all(w.in.get(), line.data(), line.size())) {
      kill_and_reap(w, &o);
      o.kind = PoolOutcome::Kind::Crashed;
      o.message = "the worker of pool '" + opts.name + "' had exited before it got the task";
      return o;
    }
    std::string buffer;
    char chunk[65536];
    bool out_open = true;
    for (;;) {
      {
        std::lock_guard lock(mu);
        if (w.kill_at && Clock::now() >= *w.kill_at) ::kill(-w.pid, SIGKILL);
      }
      std::int64_t rss = platform::process_rss_kb(w.pid);
      o.peak_rss_kb = std::max(o.peak_rss_kb, rss);
      if (opts.hard_rss_mb > 0 && rss > opts.hard_rss_mb * 1024) {
        kill_and_reap(w, &o);
        o.kind = PoolOutcome::Kind::MemoryLimit;
        o.message = "its pool worker used " + std::to_string(rss / 1024) + " MiB, above the profile's memoryLimitMb (" +
                    std::to_string(opts.hard_rss_mb) + "), and was killed; the pool starts a new one";
        break;
      }
      pollfd fds[2] = {{w.out.get(), POLLIN, 0}, {w.err.get(), POLLIN, 0}};
      int r = ::poll(fds, out_open ? 2 : 1, static_cast<int>(opts.rss_check.count()));
      if (r < 0 && errno != EINTR) break;
      if (fds[1].revents) {
        ssize_t n = ::read(w.err.get(), chunk, sizeof chunk);
        if (n > 0) stderr_chunk(chunk, static_cast<std::size_t>(n));
      }
      if (!fds[0].revents) continue;
      ssize_t n = ::read(w.out.get(), chunk, sizeof chunk);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) continue;
      if (n <= 0) {
        // EOF: the worker is gone (or closed stdout, which is as bad).
        kill_and_reap(w, &o);
        bool stopped;
        {
          std::lock_guard lock(mu);
          stopped = w.stop_current || stopping;
        }
        o.kind = stopped ? PoolOutcome::Kind::Stopped : PoolOutcome::Kind::Crashed;
        o.message = stopped ? "its pool worker was stopped"
                            : "its pool worker exited mid-task (" + describe(o) + "); the pool starts a new one";
        break;
      }
      buffer.append(chunk, static_cast<std::size_t>(n));
      bool finished = false;
      std::size_t start = 0;
      for (std::size_t nl; !finished && (nl = buffer.find('\n', start)) != std::string::npos; start = nl + 1) {
        finished = handle_line(std::string_view(buffer).substr(start, nl - start), req, o);
      }
      buffer.erase(0, start);
      if (!finished && buffer.size() > kMaxLineBytes) {
        o.kind = PoolOutcome::Kind::Malformed;
        o.message = "its pool worker printed a line longer than 16 MiB; the worker was replaced";
        finished = true;
      }
      if (finished) {
        if (o.kind == PoolOutcome::Kind::Malformed) kill_and_reap(w, &o);
        else if (!buffer.empty()) {
          // Lines past the final answer break the one-answer rule.
          o.kind = PoolOutcome::Kind::Malformed;
          o.message = "its pool worker printed more after its answer: " + first_bytes(buffer);
          kill_and_reap(w, &o);
        }
        break;
      }
    }
    if (w.pid > 0) {
      char rest[65536];
      for (;;) {
        ssize_t n = ::read(w.err.get(), rest, sizeof rest);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        stderr_chunk(rest, static_cast<std::size_t>(n));
      }
    }
    if (err_writer) o.stderr_bytes = err_writer->total_bytes();
    return o;
  }

  static std::string describe(const PoolOutcome& o) {
    if (o.exit_code) return "exit code " + std::to_string(*o.exit_code);
    if (o.signal) return "signal " + std::to_string(*o.signal);
    return "closed its stdout";
  }

  // True when `line` ended the task (result, error or a protocol fault).
  static bool handle_line(std::string_view line, const PoolRequest& req, PoolOutcome& o) {
    WorkerLine parsed = parse_worker_line(line, req.task_id);
    switch (parsed.kind) {
      case WorkerLine::Kind::Blank:
        return false;
      case WorkerLine::Kind::Progress:
        if (req.on_progress) req.on_progress(parsed.progress);
        return false;
      case WorkerLine::Kind::Result:
        o.kind = PoolOutcome::Kind::Result;
        o.result_json = std::move(parsed.result_json);
        o.message = "answered by pool worker";
        return true;
      case WorkerLine::Kind::Error:
        o.kind = PoolOutcome::Kind::Error;
        o.message = "the worker answered with an error: " + first_bytes(parsed.message, 1000);
        return true;
      case WorkerLine::Kind::Malformed:
        o.kind = PoolOutcome::Kind::Malformed;
        o.message = "its pool worker broke the protocol (" + parsed.message + "): " + first_bytes(std::string(line)) +
                    "; the worker was replaced";
        return true;
    }
    return true;
  }
};

ProcessPool::ProcessPool(Options options, Spool& spool) : impl_(std::make_unique<Impl>(std::move(options), spool)) {
  std::lock_guard lock(impl_->mu);
  for (int i = 0; i < impl_->opts.settings.min; ++i) impl_->add_worker_locked(std::nullopt);
}

ProcessPool::~ProcessPool() { shutdown(); }

void ProcessPool::shutdown() {
  Impl& m = *impl_;
  std::vector<std::unique_ptr<Impl::Worker>> all;
  std::vector<PoolRequest> waiting;
  {
    std::lock_guard lock(m.mu);
    m.stopping = true;
    for (auto& w : m.workers) {
      if (w->pid > 0) ::kill(-w->pid, SIGKILL);
      w->wake.notify_all();
    }
    for (auto& r : m.pending) waiting.push_back(std::move(r));
    m.pending.clear();
  }
  // Threads end on their own now (EOF, or the stop flag); join them, and
  // any replacement one of them started before it saw the flag.
  for (;;) {
    {
      std::lock_guard lock(m.mu);
      for (auto& w : m.workers) all.push_back(std::move(w));
      m.workers.clear();
    }
    if (all.empty()) break;
    for (auto& w : all) {
      if (w->thread.joinable()) w->thread.join();
    }
    all.clear();
  }
  for (PoolRequest& r : waiting) {
    PoolOutcome o;
    o.kind = PoolOutcome::Kind::Stopped;
    o.message = "the pool stopped before a worker took it";
    if (r.on_done) r.on_done(o);
  }
}

Status ProcessPool::run(PoolRequest request) {
  Impl& m = *impl_;
  std::vector<std::unique_ptr<Impl::Worker>> done;
  {
    std::lock_guard lock(m.mu);
    if (m.stopping) return make_error(ErrorCode::Unavailable, "pool '" + m.opts.name + "' is stopping");
    done = m.take_done_locked();
    Impl::Worker* idle = nullptr;
    for (auto& w : m.workers) {
      if (w->state == "idle" && !w->job && !w->retiring && !w->done) {
        idle = w.get();
        break;
      }
    }
    if (idle) {
      idle->job = std::move(request);
      idle->wake.notify_all();
    } else if (m.live_locked() < m.opts.settings.max) {
      m.add_worker_locked(std::move(request));
    } else {
      m.pending.push_back(std::move(request));
      for (auto& w : m.workers) w->wake.notify_all();
    }
  }
  Impl::join_all(done);
  return {};
}

// Never calls back: the engine calls this under its own lock, which
// on_done takes. A request still waiting for a worker is marked, and the
// worker that takes it reports it stopped.
bool ProcessPool::stop_task(const TaskId& id) {
  Impl& m = *impl_;
  std::lock_guard lock(m.mu);
  for (auto& w : m.workers) {
    if (w->current == id && w->pid > 0) {
      w->stop_current = true;
      ::kill(-w->pid, SIGTERM);
      w->kill_at = Clock::now() + m.opts.stop_grace;
      return true;
    }
  }
  auto waiting = [&](const PoolRequest& r) { return r.task_id == id; };
  bool queued = std::any_of(m.pending.begin(), m.pending.end(), waiting);
  for (const auto& w : m.workers) queued = queued || (w->job && w->job->task_id == id);
  if (queued) m.stopped_pending.insert(id);
  return queued;
}

std::vector<PoolWorkerView> ProcessPool::workers() const {
  Impl& m = *impl_;
  std::vector<PoolWorkerView> out;
  {
    std::lock_guard lock(m.mu);
    for (const auto& w : m.workers) {
      if (w->done) continue;
      PoolWorkerView v;
      v.pid = w->pid;
      v.state = w->state;
      v.tasks_served = w->tasks_served;
      v.task_id = w->current;
      out.push_back(std::move(v));
    }
  }
  for (auto& v : out) v.rss_kb = v.pid > 0 ? platform::process_rss_kb(v.pid) : -1;
  return out;
}

const std::string& ProcessPool::name() const { return impl_->opts.name; }

}  // namespace orch::engine
