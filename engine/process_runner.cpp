#include "engine/process_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <climits>
#include <cstring>
#include <fcntl.h>
#include <mutex>
#include <set>
#include <shared_mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "common/thread_name.h"
#include "engine/keeper_host.h"
#include "engine/platform.h"
#include "engine/process_spawn.h"
#include "engine/progress_line.h"

namespace orch::engine {

namespace {

void apply_limits_after_spawn(pid_t pid, const LaunchSpec& spec) {
  if (int err = apply_task_limits(pid, spec.limits, spec.memory_cgroup)) {
    spdlog::warn("task {}: could not apply its limits: {}", spec.task_id, std::strerror(err));
  }
}

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;
using std::chrono::milliseconds;

constexpr std::size_t kReadChunk = 64 * 1024;
// After SIGKILL to the group, how long its pipes may stay open before we stop
// waiting for EOF: only a process that left the group (setsid) can hold them.
constexpr milliseconds kGiveUpAfterKill{500};
// Without pidfds (kernel < 5.3) exits are found by polling waitid at this pace.
constexpr milliseconds kExitPollInterval{20};
// At destruction, how long SIGKILLed processes get to become reapable.
constexpr milliseconds kReapAtShutdown{5000};
// The status-log generation of processes this runner did not start.
constexpr std::uint64_t kEarlierGeneration = 0;

// Poller keys: a child's serial number and which of its descriptors is ready.
// Serials are never reused, so a stale event cannot reach a newer child.
enum class Source : std::uint64_t { Stdout = 0, Stderr = 1, Exit = 2, Report = 3 };
constexpr int kSourceBits = 2;

constexpr std::uint64_t make_key(std::uint64_t serial, Source source) {
  return serial << kSourceBits | static_cast<std::uint64_t>(source);
}

struct Stream {
  UniqueFd fd;  // read end of the pipe; closed at EOF or when given up
  std::unique_ptr<SpoolWriter> writer;
  std::atomic<std::uint64_t> total{0};  // writer->total_bytes(), for live_bytes()
};

struct Child {
  std::uint64_t serial = 0;
  pid_t pid = 0;  // also the process group id
  TaskId task_id;
  ProcessCallbacks callbacks;
  TimePoint started;
  std::array<Stream, 2> streams;  // indexed by Source::Stdout / Source::Stderr
  UniqueFd exit_watch;            // pidfd; closed once reaped
  bool polled = false;            // no exit watch could be opened: poll waitid
  ProgressScanner progress;
  ExitInfo info;
  // Adopted from an earlier server (adopt_orphan): not our child, no pipes;
  // its keeper spools the output into task_dir and records its end there.
  bool foreign = false;
  std::filesystem::path task_dir;
  int attempt = 0;  // the record of a foreign keeper's end is looked up under it
  // The status log current when it started (kEarlierGeneration: before this
  // runner); the logs it may have written to are kept until it is reported.
  std::optional<std::uint64_t> log_generation;

  // Guarded by Impl::mu: terminate() and kill_all() read them from other threads.
  bool reaped = false;
  std::optional<TimePoint> kill_at;  // terminate(): SIGKILL the group if the leader still runs

  // Reactor only, once the leader has been reaped.
  std::optional<TimePoint> straggler_kill_at;  // SIGKILL the group if the pipes are still open
  std::optional<TimePoint> give_up_at;         // then close the pipes regardless

  bool pipes_open() const { return streams[0].fd.valid() || streams[1].fd.valid(); }
};

// A group whose leader was reported but whose other members may still run
// (they closed their pipes and ignore SIGTERM): SIGKILL it at `at`.
struct GroupSweep {
  pid_t pgid;
  TimePoint at;
};

template <typename Callback, typename... Args>
void invoke_callback(const char* what, const Callback& callback, const Args&... args) {
  if (!callback) return;
  // Callbacks are the caller's code on our thread: an exception must not stop
  // the reactor, which every other running task depends on.
  try {
    callback(args...);
  } catch (const std::exception& e) {
    spdlog::error("process runner: {} callback threw: {}", what, e.what());
  } catch (...) {
    spdlog::error("process runner: {} callback threw a non-standard exception", what);
  }
}

// What a keeper's report pipe said: its pid, and 0 or the errno of starting
// the command; either may be missing when the pipe ended first.
struct KeeperReport {
  std::optional<pid_t> pid;
  std::optional<int> err;
};

// Reads the keeper's report (keeper_host::Report records) into `out` until
// it says whether the command started, or the pipe ends: true then. False
// when a non-blocking pipe has nothing more for now.
bool read_keeper_report(int report_read, KeeperReport& out) {
  while (!out.err) {
    keeper_host::Report record;
    const ssize_t n = ::read(report_read, &record, sizeof record);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return false;
    if (n != sizeof record) break;  // each record is one write: anything else is the end
    if (record.pid > 0) out.pid = record.pid;
    if (record.err != keeper_host::kForked) out.err = record.err;
  }
  return true;
}

KeeperReport read_keeper_report(int report_read) {
  KeeperReport out;
  read_keeper_report(report_read, out);
  return out;
}

// A start handed to the keeper host whose report the reactor awaits
// (ProcessRunner::start_soon). Our copies of the task's descriptors stay
// open until then: if the host went away with the request, the keeper is
// spawned from them instead.
struct PendingStart {
  LaunchSpec spec;
  SpawnPlan plan;
  std::array<UniqueFd, 2> write_ends;
  std::unique_ptr<Child> child;
  UniqueFd report;  // read end, non-blocking
  KeeperReport got;
  std::function<void(Result<pid_t>)> started;
};

// The rest of a pending start's report, waiting for it.
void read_rest_of_report(PendingStart& p) {
  const int flags = ::fcntl(p.report.get(), F_GETFL);
  if (flags >= 0) ::fcntl(p.report.get(), F_SETFL, flags & ~O_NONBLOCK);
  read_keeper_report(p.report.get(), p.got);
}

}  // namespace

struct ProcessRunner::Impl {
  Impl(Spool& spool_in, Options options_in);

  void run(std::stop_token stop);
  void end_round();
  int next_timeout_ms();
  void handle(std::uint64_t key);
  void on_output(Child& c, std::size_t index);
  void on_leader_exit(Child& c);
  void run_timers();
  void close_stream(Child& c, std::size_t index);
  void maybe_finish(Child& c);
  void record_error(Child& c, std::string error);
  Result<pid_t> register_child(std::unique_ptr<Child> child);
  Result<pid_t> spawn_kept(const LaunchSpec& spec, SpawnPlan plan, std::array<UniqueFd, 2> write_ends,
                           const Child& child);
  std::optional<Result<pid_t>> fork_kept(const LaunchSpec& spec, const std::vector<std::string>& keeper_argv,
                                         SpawnPlan& plan, std::array<UniqueFd, 2>& write_ends, const Child& child);
  Result<pid_t> finish_start(const KeeperReport& report, const LaunchSpec& spec, const std::string& command_exe);
  Result<std::array<UniqueFd, 2>> open_streams(const LaunchSpec& spec, Child& child);
  std::vector<std::string> keeper_argv(const LaunchSpec& spec, const std::string& exe) const;
  std::optional<UniqueFd> send_to_host(const LaunchSpec& spec, const std::vector<std::string>& argv,
                                       const SpawnPlan& plan, const std::array<UniqueFd, 2>& write_ends,
                                       const Child& child);
  Result<pid_t> watch_started(std::unique_ptr<Child> child, Result<pid_t> pid, const LaunchSpec& spec);
  void on_report(std::uint64_t serial);
  void complete_start(std::unique_ptr<PendingStart> p);
  void abandon_pending();
  void mark_host_gone();
  void stop_keeper_host();
  void on_foreign_exit(Child& c);
  std::uint64_t enter_log_generation_locked();
  void leave_log_generation(std::uint64_t generation);
  void kill_all_locked();
  void reap_at_shutdown();

  Spool& spool;
  const Options options;
  std::unique_ptr<platform::Poller> poller;  // null when it could not be created
  std::string unavailable;                   // why, in that case
  // With a keeper: every keeper holds the read end; the write end is ours
  // alone, so the read end reaches EOF exactly when this server is gone.
  UniqueFd lifeline_read;
  UniqueFd lifeline_write;
  // The keeper host, started with the first kept task; null when off or it
  // could not start. Starts hold host_mu shared while they use it, so that
  // stop_keeper_host() never closes it under a start.
  // Tried once: starts then only share the lock, so they never wait for
  // each other's keepers.
  std::shared_mutex host_mu;
  std::once_flag host_tried;
  std::unique_ptr<KeeperHost> host;  // guarded by host_mu

  mutable std::mutex mu;
  std::unordered_map<std::uint64_t, std::unique_ptr<Child>> children;  // by serial; guarded by mu
  std::unordered_map<pid_t, Child*> by_pid;                           // guarded by mu
  std::vector<GroupSweep> sweeps;                                      // guarded by mu
  std::unordered_map<std::uint64_t, std::unique_ptr<PendingStart>> pending;  // by serial; guarded by mu
  std::uint64_t next_serial = 1;                                       // guarded by mu
  bool stopping = false;  // guarded by mu; set when destruction begins

  // The keepers' status log (engine/task_keeper.h), guarded by mu. Processes
  // started while generation g is current record their ends in the log as it
  // is then, or in a later one; the log rotated at the end of generation g
  // is deleted once no process of generation g or earlier is unreported
  // (their ends are in the store by then).
  std::uint64_t log_generation = kEarlierGeneration + 1;
  std::multiset<std::uint64_t> unreported_generations;
  std::vector<std::pair<std::uint64_t, std::filesystem::path>> rotated_logs;  // {last generation, path}
  std::uint64_t next_log_number = 1;
  int starts_since_log_check = 0;

  // Reactor only: this round's reported ends, and their log generations,
  // left until after_exits has stored them.
  bool round_ended = false;
  std::vector<std::uint64_t> round_generations;

  std::unique_ptr<char[]> buffer;  // reactor only: one read chunk shared by all children
  std::jthread reactor;            // declared last: stopped and joined first
};

ProcessRunner::Impl::Impl(Spool& spool_in, Options options_in)
    : spool(spool_in), options(options_in), buffer(std::make_unique<char[]>(kReadChunk)) {
  auto created = platform::Poller::create();
  if (!created) {
    unavailable = "cannot start processes: " + created.error().message;
    spdlog::error("process runner: {}", unavailable);
    return;
  }
  poller = std::move(*created);
  if (options.inherited_lifeline.read_fd >= 0 && options.inherited_lifeline.write_fd >= 0) {
    lifeline_read.reset(options.inherited_lifeline.read_fd);
    lifeline_write.reset(options.inherited_lifeline.write_fd);
    // Not inherited by the tasks this image starts (the keepers get the read
    // end through their spawn actions).
    ::fcntl(lifeline_read.get(), F_SETFD, FD_CLOEXEC);
    ::fcntl(lifeline_write.get(), F_SETFD, FD_CLOEXEC);
  } else if (!options.keeper_path.empty()) {
    auto lifeline = platform::make_pipe();
    if (!lifeline) {
      unavailable = "cannot start processes: no lifeline pipe for the task keepers: " + lifeline.error().message;
      spdlog::error("process runner: {}", unavailable);
      poller.reset();
      return;
    }
    lifeline_read = std::move(lifeline->first);
    lifeline_write = std::move(lifeline->second);
  }
  if (!options.keeper_path.empty()) {
    // Keepers append to the status log there before any task has printed
    // (which creates a task's directory).
    std::error_code ec;
    std::filesystem::create_directories(spool.dir(), ec);
    if (ec) {
      unavailable = "cannot start processes: cannot create the spool directory " + spool.dir().string() + ": " +
                    ec.message() + " (check permissions under the state directory)";
      spdlog::error("process runner: {}", unavailable);
      poller.reset();
      return;
    }
    // Logs rotated by earlier servers: their records may be the ends of
    // processes adopted now, so they are kept as the earliest generation.
    const auto logs = status_logs(spool.dir());
    for (std::size_t i = 1; i < logs.size(); ++i) {
      rotated_logs.emplace_back(kEarlierGeneration, logs[i]);
      const std::string name = logs[i].filename().string();
      std::uint64_t number = 0;
      const char* digits = name.data() + std::strlen(kKeeperStatusLog) + 1;
      auto parsed = std::from_chars(digits, name.data() + name.size(), number);
      if (parsed.ec == std::errc()) next_log_number = std::max(next_log_number, number + 1);
    }
  }
  reactor = std::jthread([this](std::stop_token stop) {
    name_this_thread("orch-reactor");
    run(stop);
  });
}

namespace {
thread_local bool t_in_reactor_round = false;
}  // namespace

bool ProcessRunner::in_reactor_round() { return t_in_reactor_round; }

void ProcessRunner::Impl::run(std::stop_token stop) {
  try {
    std::array<std::uint64_t, 64> keys;
    while (!stop.stop_requested()) {
      const std::size_t n = poller->wait(keys, next_timeout_ms());
      t_in_reactor_round = true;
      for (std::size_t i = 0; i < n; ++i) handle(keys[i]);
      run_timers();
      t_in_reactor_round = false;
      end_round();
    }
  } catch (const std::exception& e) {
    t_in_reactor_round = false;
    end_round();
    spdlog::critical("process runner: reactor stopped: {}; running tasks will not be reported", e.what());
  } catch (...) {
    t_in_reactor_round = false;
    end_round();
    spdlog::critical("process runner: reactor stopped by a non-standard exception");
  }
}

// The round's ends are reported: the engine stores them (one commit), and
// only then may the keepers' records of them go with their log generation.
void ProcessRunner::Impl::end_round() {
  if (round_generations.empty() && !round_ended) return;
  round_ended = false;
  if (options.after_exits) invoke_callback("after_exits", options.after_exits);
  std::vector<std::uint64_t> generations;
  generations.swap(round_generations);
  for (std::uint64_t g : generations) leave_log_generation(g);
}

int ProcessRunner::Impl::next_timeout_ms() {
  const TimePoint now = SteadyClock::now();
  std::optional<TimePoint> earliest;
  auto consider = [&earliest](TimePoint t) {
    if (!earliest || t < *earliest) earliest = t;
  };
  {
    std::lock_guard lock(mu);
    for (const auto& [serial, c] : children) {
      if (!c->reaped && c->kill_at) consider(*c->kill_at);
      if (!c->reaped && c->polled) consider(now + kExitPollInterval);
      if (c->straggler_kill_at) consider(*c->straggler_kill_at);
      if (c->give_up_at) consider(*c->give_up_at);
    }
    for (const auto& sweep : sweeps) consider(sweep.at);
  }
  if (!earliest) return -1;
  const auto wait = std::chrono::ceil<milliseconds>(*earliest - now).count();
  return static_cast<int>(std::clamp<std::int64_t>(wait, 0, INT_MAX));
}

void ProcessRunner::Impl::handle(std::uint64_t key) {
  const auto source = static_cast<Source>(key & ((1u << kSourceBits) - 1));
  if (source == Source::Report) {
    on_report(key >> kSourceBits);
    return;
  }
  Child* c = nullptr;
  {
    std::lock_guard lock(mu);
    auto it = children.find(key >> kSourceBits);
    if (it == children.end()) return;  // finished earlier in this batch
    c = it->second.get();
  }
  // Only this thread removes children, so `c` stays valid without the lock.
  switch (source) {
    case Source::Stdout: on_output(*c, 0); break;
    case Source::Stderr: on_output(*c, 1); break;
    case Source::Exit: on_leader_exit(*c); break;
    case Source::Report: break;
  }
}

void ProcessRunner::Impl::on_output(Child& c, std::size_t index) {
  Stream& s = c.streams[index];
  if (!s.fd) return;
  // One read per wake-up: level-triggered epoll brings us back, and a task
  // that prints without pause cannot starve the others.
  ssize_t n;
  do {
    n = ::read(s.fd.get(), buffer.get(), kReadChunk);
  } while (n < 0 && errno == EINTR);
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
  if (n > 0) {
    const auto size = static_cast<std::size_t>(n);
    if (auto st = s.writer->append(buffer.get(), size); !st) {
      record_error(c, std::string(index == 0 ? "stdout: " : "stderr: ") + st.error().message);
    }
    s.total.store(s.writer->total_bytes(), std::memory_order_relaxed);
    if (index == 0 && c.callbacks.on_progress) {
      c.progress.feed(buffer.get(), size, [&c](const Progress& p) {
        invoke_callback("on_progress", c.callbacks.on_progress, p);
      });
    }
    return;
  }
  if (n < 0) {
    record_error(c, std::string(index == 0 ? "reading stdout: " : "reading stderr: ") + std::strerror(errno));
  }
  close_stream(c, index);
  maybe_finish(c);
}

void ProcessRunner::Impl::close_stream(Child& c, std::size_t index) {
  Stream& s = c.streams[index];
  if (!s.fd) return;
  if (index == 0 && c.callbacks.on_progress) {
    // A last line without a newline still counts.
    c.progress.finish([&c](const Progress& p) { invoke_callback("on_progress", c.callbacks.on_progress, p); });
  }
  poller->remove(s.fd.get());
  s.fd.reset();
}

void ProcessRunner::Impl::on_leader_exit(Child& c) {
  if (c.foreign) {
    on_foreign_exit(c);
    return;
  }
  int status = 0;
  rusage usage{};
  pid_t reaped;
  int wait_errno = 0;
  {
    std::lock_guard lock(mu);
    // Background jobs the task left behind must not outlive it (no orphans).
    // The zombie leader still holds the group id, so this cannot reach a
    // stranger that reused the number.
    ::kill(-c.pid, SIGTERM);
    do {
      reaped = ::wait4(c.pid, &status, WNOHANG, &usage);
    } while (reaped < 0 && errno == EINTR);
    if (reaped == 0) return;  // not exited after all
    wait_errno = errno;
    // Under the lock: terminate() must not signal a pid that is being freed.
    c.reaped = true;
    c.kill_at.reset();
  }
  const TimePoint now = SteadyClock::now();
  c.info.duration_ms = std::chrono::duration_cast<milliseconds>(now - c.started).count();
  if (reaped == c.pid) {
    if (WIFEXITED(status)) c.info.exit_code = WEXITSTATUS(status);
    if (WIFSIGNALED(status)) c.info.signal = WTERMSIG(status);
    c.info.peak_rss_kb = usage.ru_maxrss;  // KiB on Linux; leader and the children it reaped
  } else {
    record_error(c, "the exit status of pid " + std::to_string(c.pid) + " was lost (" +
                        std::strerror(wait_errno) + "): something else reaped it; is SIGCHLD ignored?");
  }
  if (c.exit_watch) {
    poller->remove(c.exit_watch.get());
    c.exit_watch.reset();
  }
  if (c.pipes_open()) c.straggler_kill_at = now + options.straggler_grace;
  maybe_finish(c);
}

namespace {

std::uint64_t spooled_size(const std::filesystem::path& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0 ? static_cast<std::uint64_t>(st.st_size) : 0;
}

}  // namespace

void ProcessRunner::Impl::on_foreign_exit(Child& c) {
  {
    std::lock_guard lock(mu);
    c.reaped = true;  // nothing to reap: the process was never ours
    c.kill_at.reset();
  }
  c.info.duration_ms =
      std::chrono::duration_cast<milliseconds>(SteadyClock::now() - c.started).count();
  if (auto end = read_keeper_status(spool.dir(), c.task_id, c.attempt)) {
    switch (end->kind) {
      case KeeperStatus::Kind::Exited: c.info.exit_code = end->value; break;
      case KeeperStatus::Kind::Signaled: c.info.signal = end->value; break;
      case KeeperStatus::Kind::OrphanKilled: c.info.killed_as_orphan = true; break;
      case KeeperStatus::Kind::SpawnError:
        c.info.lost = true;
        record_error(c, std::string("the task keeper could not start the command: ") + std::strerror(end->value));
        break;
    }
    c.info.peak_rss_kb = end->peak_rss_kb;
  } else {
    c.info.lost = true;
  }
  if (c.exit_watch) {
    poller->remove(c.exit_watch.get());
    c.exit_watch.reset();
  }
  maybe_finish(c);
}

void ProcessRunner::Impl::run_timers() {
  const TimePoint now = SteadyClock::now();
  std::vector<Child*> maybe_exited;
  std::vector<Child*> give_up;
  {
    std::lock_guard lock(mu);
    for (auto& [serial, child] : children) {
      Child& c = *child;
      if (!c.reaped && c.kill_at && *c.kill_at <= now) {
        ::kill(-c.pid, SIGKILL);
        c.kill_at.reset();
      }
      if (!c.reaped && c.polled) maybe_exited.push_back(&c);
      if (c.straggler_kill_at && *c.straggler_kill_at <= now) {
        // The leader is gone but its pipes are still open: someone in the
        // group ignored SIGTERM for the whole grace period.
        ::kill(-c.pid, SIGKILL);
        c.straggler_kill_at.reset();
        c.give_up_at = now + kGiveUpAfterKill;
      } else if (c.give_up_at && *c.give_up_at <= now) {
        give_up.push_back(&c);
      }
    }
    std::erase_if(sweeps, [now](const GroupSweep& sweep) {
      if (sweep.at > now) return false;
      ::kill(-sweep.pgid, SIGKILL);
      return true;
    });
  }
  // Outside the lock: these may finish a child and run its callbacks. The two
  // lists are disjoint (unreaped vs reaped), so no pointer outlives its child.
  for (Child* c : maybe_exited) {
    siginfo_t info{};
    int rc = ::waitid(P_PID, static_cast<id_t>(c->pid), &info, WEXITED | WNOHANG | WNOWAIT);
    if ((rc == 0 && info.si_pid == c->pid) || (rc < 0 && errno == ECHILD)) on_leader_exit(*c);
  }
  for (Child* c : give_up) {
    spdlog::warn("process runner: pid {}: output pipes still open {} ms after SIGKILL to its group; "
                 "a process that left the group holds them; closing them",
                 c->pid, kGiveUpAfterKill.count());
    close_stream(*c, 0);
    close_stream(*c, 1);
    maybe_finish(*c);
  }
}

void ProcessRunner::Impl::record_error(Child& c, std::string error) {
  // The first failure explains the rest; a full disk would repeat it per chunk.
  if (c.info.error.empty()) c.info.error = std::move(error);
}

void ProcessRunner::Impl::maybe_finish(Child& c) {
  if (!c.reaped || c.pipes_open()) return;
  ExitInfo info = std::move(c.info);
  if (c.foreign) {
    // What the keeper spooled is all we know (the marker counts as output).
    info.stdout_bytes = spooled_size(c.task_dir / to_string(StreamKind::Stdout));
    info.stderr_bytes = spooled_size(c.task_dir / to_string(StreamKind::Stderr));
  } else {
    info.stdout_bytes = c.streams[0].writer->total_bytes();
    info.stderr_bytes = c.streams[1].writer->total_bytes();
    info.stdout_capped = c.streams[0].writer->capped();
    info.stderr_capped = c.streams[1].writer->capped();
  }

  std::unique_ptr<Child> owned;
  bool report = false;
  {
    std::lock_guard lock(mu);
    // Members that closed their pipes may still run, ignoring the SIGTERM sent
    // at reaping: SIGKILL them when the grace ends. (Not if that SIGKILL was
    // already sent: give_up_at is set then.)
    if (!c.foreign && !c.give_up_at && ::kill(-c.pid, 0) == 0) {
      sweeps.push_back({c.pid, c.straggler_kill_at.value_or(SteadyClock::now() + options.straggler_grace)});
    }
    report = !stopping;
    auto it = children.find(c.serial);
    owned = std::move(it->second);
    children.erase(it);
    // A new child may already have the same pid (the number is free once reaped).
    if (auto p = by_pid.find(c.pid); p != by_pid.end() && p->second == &c) by_pid.erase(p);
  }
  if (report) invoke_callback("on_exit", owned->callbacks.on_exit, info);
  // After on_exit (and in a round, after_exits): the end is in the store now,
  // its keeper's record not needed.
  if (t_in_reactor_round) {
    round_ended = round_ended || report;
    if (owned->log_generation) round_generations.push_back(*owned->log_generation);
  } else if (owned->log_generation) {
    leave_log_generation(*owned->log_generation);
  }
}

// Under mu, once per start of a kept process: rotates the status log when it
// has grown past its limit, deletes rotated logs no unreported process can
// have written to, and counts the new process in the current generation.
std::uint64_t ProcessRunner::Impl::enter_log_generation_locked() {
  if (++starts_since_log_check >= options.status_log_check_every) {
    starts_since_log_check = 0;
    const std::uint64_t oldest =
        unreported_generations.empty() ? log_generation : *unreported_generations.begin();
    std::erase_if(rotated_logs, [oldest](const auto& log) {
      if (log.first >= oldest) return false;
      ::unlink(log.second.c_str());
      return true;
    });
    const std::filesystem::path current = spool.dir() / kKeeperStatusLog;
    struct stat st {};
    if (::stat(current.c_str(), &st) == 0 && static_cast<std::uint64_t>(st.st_size) >= options.status_log_rotate_bytes) {
      std::filesystem::path target = current;
      target += "." + std::to_string(next_log_number);
      if (::rename(current.c_str(), target.c_str()) == 0) {
        ++next_log_number;
        rotated_logs.emplace_back(log_generation, std::move(target));
        ++log_generation;
      } else {
        spdlog::warn("process runner: cannot rotate {}: {}", current.string(), std::strerror(errno));
      }
    }
  }
  unreported_generations.insert(log_generation);
  return log_generation;
}

void ProcessRunner::Impl::leave_log_generation(std::uint64_t generation) {
  std::lock_guard lock(mu);
  if (auto it = unreported_generations.find(generation); it != unreported_generations.end()) {
    unreported_generations.erase(it);
  }
}

Result<pid_t> ProcessRunner::Impl::register_child(std::unique_ptr<Child> child) {
  Child& c = *child;
  // Once in the table the child belongs to the reactor, which may finish and
  // free it before this function returns: copy what is needed afterwards.
  const pid_t pid = c.pid;
  const bool polled = c.polled;
  const std::optional<std::uint64_t> generation = c.log_generation;
  Status watched;
  {
    std::lock_guard lock(mu);
    c.serial = next_serial++;
    std::vector<int> added;
    auto watch = [&](const UniqueFd& fd, Source source) {
      if (!watched || !fd) return;
      watched = poller->add(fd.get(), make_key(c.serial, source));
      if (watched) added.push_back(fd.get());
    };
    watch(c.streams[0].fd, Source::Stdout);
    watch(c.streams[1].fd, Source::Stderr);
    watch(c.exit_watch, Source::Exit);
    if (watched) {
      by_pid[c.pid] = &c;
      children.emplace(c.serial, std::move(child));
    } else {
      for (int fd : added) poller->remove(fd);
    }
  }
  if (!watched) {
    // It runs but nothing would watch it: stop it now rather than leak it.
    if (generation) leave_log_generation(*generation);
    ::kill(-pid, SIGKILL);
    while (::waitpid(pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return make_error(ErrorCode::Unavailable,
                      "cannot watch the new process (" + watched.error().message + "); retry later");
  }
  // A polled child needs the reactor's timeout shortened to the poll interval.
  if (polled) poller->wake();
  return pid;
}

void ProcessRunner::Impl::kill_all_locked() {
  for (auto& [serial, c] : children) {
    if (!c->reaped || c->pipes_open()) ::kill(-c->pid, SIGKILL);
  }
  for (const auto& sweep : sweeps) ::kill(-sweep.pgid, SIGKILL);
  sweeps.clear();
}

void ProcessRunner::Impl::reap_at_shutdown() {
  const TimePoint deadline = SteadyClock::now() + kReapAtShutdown;
  for (auto& [serial, c] : children) {
    if (c->reaped || c->foreign) continue;  // a foreign process is reaped by its own parent
    int options_flags = 0;  // without an exit watch, block: SIGKILL cannot be ignored
    if (c->exit_watch) {
      options_flags = WNOHANG;
      pollfd pfd{c->exit_watch.get(), POLLIN, 0};
      for (;;) {
        const auto left = std::chrono::ceil<milliseconds>(deadline - SteadyClock::now()).count();
        if (::poll(&pfd, 1, static_cast<int>(std::max<std::int64_t>(left, 0))) >= 0 || errno != EINTR) break;
      }
    }
    pid_t r;
    do {
      r = ::wait4(c->pid, nullptr, options_flags, nullptr);
    } while (r < 0 && errno == EINTR);
    if (r == 0) {
      spdlog::warn("process runner: pid {} has not exited {} ms after SIGKILL; it stays a zombie until "
                   "the server exits", c->pid, kReapAtShutdown.count());
    }
    c->reaped = true;
  }
}

ProcessRunner::ProcessRunner(Spool& spool, Options options)
    : impl_(std::make_unique<Impl>(spool, options)) {}

ProcessRunner::~ProcessRunner() {
  Impl& m = *impl_;
  if (!m.poller) return;
  {
    std::lock_guard lock(m.mu);
    m.stopping = true;  // from here on, on_exit is not called
  }
  m.reactor.request_stop();
  m.poller->wake();
  if (m.reactor.joinable()) m.reactor.join();  // hand_over() may have joined it
  m.abandon_pending();
  {
    std::lock_guard lock(m.mu);
    m.kill_all_locked();
  }
  // The reactor is gone and callers may not use a runner being destroyed:
  // this thread alone touches the children now.
  m.reap_at_shutdown();
  m.stop_keeper_host();
}

Result<std::array<UniqueFd, 2>> ProcessRunner::Impl::open_streams(const LaunchSpec& spec, Child& child) {
  std::array<UniqueFd, 2> write_ends;
  const auto earlier = spec.attempt == 1 ? Spool::Earlier::None : Spool::Earlier::Remove;
  for (std::size_t i = 0; i < 2; ++i) {
    auto pipe = make_output_pipe();
    if (!pipe) return pipe.error();
    child.streams[i].fd = std::move(pipe->read_end);
    write_ends[i] = std::move(pipe->write_end);
    auto writer = spool.open_writer(spec.task_id, i == 0 ? StreamKind::Stdout : StreamKind::Stderr, earlier);
    if (!writer) return writer.error();
    child.streams[i].writer = std::move(*writer);
  }
  return write_ends;
}

// What follows every spawn: the reactor watches the process from here on.
Result<pid_t> ProcessRunner::Impl::watch_started(std::unique_ptr<Child> child, Result<pid_t> pid,
                                                 const LaunchSpec& spec) {
  if (!pid) {
    if (child->log_generation) leave_log_generation(*child->log_generation);
    return pid.error();
  }
  if (options.keeper_path.empty() && (spec.limits.any() || !spec.memory_cgroup.empty())) {
    // Without a keeper the limits can only follow the spawn: the child may
    // run for a moment without them (docs/PROFILES.md).
    apply_limits_after_spawn(*pid, spec);
  }
  child->pid = *pid;
  child->task_id = spec.task_id;
  if (auto watch = platform::open_exit_watch(*pid)) {
    child->exit_watch = std::move(*watch);
  } else {
    child->polled = true;  // old kernel or no descriptors left: fall back to polling waitid
  }
  return register_child(std::move(child));
}

Result<pid_t> ProcessRunner::start(const LaunchSpec& spec, ProcessCallbacks callbacks) {
  Impl& m = *impl_;
  if (!m.poller) return make_error(ErrorCode::Unavailable, m.unavailable);
  // Everything that can be checked is checked before a spool file is truncated.
  {
    std::lock_guard lock(m.mu);
    if (m.stopping) return make_error(ErrorCode::Unavailable, "the server is restarting; the task starts after it");
  }
  auto plan = prepare_spawn(spec);
  if (!plan) return plan.error();

  auto child = std::make_unique<Child>();
  child->callbacks = std::move(callbacks);
  auto write_ends = m.open_streams(spec, *child);
  if (!write_ends) return write_ends.error();

  child->started = SteadyClock::now();
  if (!m.options.keeper_path.empty()) {
    std::lock_guard lock(m.mu);
    child->log_generation = m.enter_log_generation_locked();
  }
  // Takes the write ends and stdin: the parent keeps none of them.
  auto pid = m.options.keeper_path.empty()
                 ? spawn_process(spec, std::move(*plan), std::move((*write_ends)[0]), std::move((*write_ends)[1]))
                 : m.spawn_kept(spec, std::move(*plan), std::move(*write_ends), *child);
  return m.watch_started(std::move(child), std::move(pid), spec);
}

bool ProcessRunner::start_soon(const LaunchSpec& spec, ProcessCallbacks callbacks,
                               std::function<void(Result<pid_t>)> started) {
  Impl& m = *impl_;
  if (!m.poller || m.options.keeper_path.empty() || !m.options.keeper_host) return false;
  {
    std::lock_guard lock(m.mu);
    if (m.stopping) return false;
  }
  auto plan = prepare_spawn(spec);
  if (!plan) return false;  // start() says why
  auto p = std::make_unique<PendingStart>();
  p->child = std::make_unique<Child>();
  p->child->callbacks = std::move(callbacks);
  auto write_ends = m.open_streams(spec, *p->child);
  if (!write_ends) return false;
  const auto argv = m.keeper_argv(spec, plan->exe);
  {
    std::lock_guard lock(m.mu);
    p->child->log_generation = m.enter_log_generation_locked();
  }
  auto report = m.send_to_host(spec, argv, *plan, *write_ends, *p->child);
  if (!report) {  // the host has nothing of it
    m.leave_log_generation(*p->child->log_generation);
    return false;
  }
  if (::fcntl(report->get(), F_SETFL, O_NONBLOCK) != 0) {
    spdlog::warn("process runner: cannot make a report pipe non-blocking: {}", std::strerror(errno));
  }
  p->spec = spec;
  p->plan = std::move(*plan);
  p->write_ends = std::move(*write_ends);
  p->report = std::move(*report);
  p->started = std::move(started);
  p->child->started = SteadyClock::now();
  Status watched;
  {
    std::lock_guard lock(m.mu);
    const std::uint64_t serial = m.next_serial++;
    watched = m.poller->add(p->report.get(), make_key(serial, Source::Report));
    if (watched) m.pending.emplace(serial, std::move(p));
  }
  // The host has the request: with no watch on its report, wait for it here.
  if (!watched) m.complete_start(std::move(p));
  return true;
}

// The keeper leads the group and runs the command; it tells us on a pipe
// whether the command started, so a spawn error keeps its own message.
std::vector<std::string> ProcessRunner::Impl::keeper_argv(const LaunchSpec& spec, const std::string& exe) const {
  KeeperArgs args;
  args.task_id = spec.task_id;
  args.attempt = spec.attempt;
  std::error_code ec;
  args.task_dir = std::filesystem::absolute(spool.dir() / spec.task_id, ec).string();
  args.cap_bytes = spool.cap_bytes();
  args.orphans = options.orphans;
  args.grace_ms = static_cast<int>(options.orphan_grace.count());
  args.exe = exe;
  args.argv = spec.argv;
  args.limits = spec.limits;
  args.cgroup = spec.memory_cgroup;
  return keeper_command_line(options.keeper_path, args);
}

Result<pid_t> ProcessRunner::Impl::spawn_kept(const LaunchSpec& spec, SpawnPlan plan,
                                              std::array<UniqueFd, 2> write_ends, const Child& child) {
  LaunchSpec kept = spec;
  kept.argv = keeper_argv(spec, plan.exe);
  if (auto forked = fork_kept(spec, kept.argv, plan, write_ends, child)) return std::move(*forked);

  auto report = platform::make_pipe();
  if (!report) {
    return make_error(ErrorCode::Unavailable, "cannot create a pipe for the task keeper: " + report.error().message);
  }
  const std::string command_exe = std::move(plan.exe);
  plan.exe = options.keeper_path;
  const int passed[kKeeperPassedFds] = {lifeline_read.get(), child.streams[0].fd.get(),
                                        child.streams[1].fd.get(), report->second.get()};
  auto pid = spawn_process(kept, std::move(plan), std::move(write_ends[0]), std::move(write_ends[1]), passed);
  report->second.reset();  // the keeper's copy alone: its exit must end the read below
  if (!pid) return pid.error();
  KeeperReport outcome = read_keeper_report(report->first.get());
  outcome.pid = *pid;
  return finish_start(outcome, spec, command_exe);
}

// Hands the start to the keeper host; the read end of its report pipe, or
// nullopt when the host cannot take it (then it has none of the descriptors).
std::optional<UniqueFd> ProcessRunner::Impl::send_to_host(const LaunchSpec& spec,
                                                          const std::vector<std::string>& argv,
                                                          const SpawnPlan& plan,
                                                          const std::array<UniqueFd, 2>& write_ends,
                                                          const Child& child) {
  if (!options.keeper_host || !KeeperHost::fits(argv)) return std::nullopt;
  std::call_once(host_tried, [this] {
    std::unique_lock lock(host_mu);
    auto started = KeeperHost::start(options.keeper_path, lifeline_read.get());
    if (started) {
      host = std::move(*started);
    } else {
      spdlog::warn("process runner: {}; each task's keeper is spawned instead", started.error().message);
    }
  });
  std::shared_lock lock(host_mu);
  if (!host) return std::nullopt;
  auto report = platform::make_pipe();
  if (!report) return std::nullopt;
  const int fds[keeper_host::kSentFds] = {plan.stdin_fd.get(),       write_ends[0].get(),
                                          write_ends[1].get(),       child.streams[0].fd.get(),
                                          child.streams[1].fd.get(), report->second.get()};
  // The host's own directory is "/": a task without one (or a relative one)
  // runs where this process is, as a spawned keeper would.
  std::error_code ec;
  std::string cwd = std::filesystem::absolute(spec.cwd.empty() ? "." : spec.cwd, ec).lexically_normal().string();
  if (ec) return std::nullopt;
  keeper_host::Request request{argv, spec.env, std::move(cwd)};
  if (auto sent = host->send(request, fds); !sent) {
    spdlog::warn("process runner: {}; the keeper of task {} is spawned instead", sent.error().message,
                 spec.task_id);
    return std::nullopt;
  }
  // The host's and the keeper's copies alone: their end must end the read.
  return std::move(report->first);
}

// The host went away with a request whose report never came: later sends
// fail at once, so the caller spawns the keeper instead.
void ProcessRunner::Impl::mark_host_gone() {
  std::shared_lock lock(host_mu);
  if (host) host->mark_gone();
  spdlog::warn("process runner: the keeper host ended; task keepers are spawned from now on");
}

// The keeper forked by the keeper host; nullopt when the host cannot take
// this start (then nothing was handed to it and the caller spawns the keeper).
std::optional<Result<pid_t>> ProcessRunner::Impl::fork_kept(const LaunchSpec& spec,
                                                            const std::vector<std::string>& keeper_argv,
                                                            SpawnPlan& plan, std::array<UniqueFd, 2>& write_ends,
                                                            const Child& child) {
  auto report = send_to_host(spec, keeper_argv, plan, write_ends, child);
  if (!report) return std::nullopt;
  KeeperReport outcome = read_keeper_report(report->get());
  if (!outcome.pid && !outcome.err) {
    // Our copies are still open, so the keeper can be spawned instead.
    mark_host_gone();
    return std::nullopt;
  }
  return finish_start(outcome, spec, plan.exe);
}

// Reads what the host and the keeper reported so far; once the keeper said
// whether the command started (or the pipe ended), the start completes.
void ProcessRunner::Impl::on_report(std::uint64_t serial) {
  PendingStart* p = nullptr;
  {
    std::lock_guard lock(mu);
    auto it = pending.find(serial);
    if (it == pending.end()) return;
    p = it->second.get();
  }
  // Only this thread removes pending starts, so `p` stays valid without the lock.
  if (!read_keeper_report(p->report.get(), p->got)) return;  // the rest comes later
  poller->remove(p->report.get());
  std::unique_ptr<PendingStart> owned;
  {
    std::lock_guard lock(mu);
    auto it = pending.find(serial);
    owned = std::move(it->second);
    pending.erase(it);
  }
  complete_start(std::move(owned));
}

void ProcessRunner::Impl::complete_start(std::unique_ptr<PendingStart> p) {
  read_rest_of_report(*p);  // at once when the reactor read it all; else (not watched) waits here
  p->report.reset();
  Result<pid_t> pid = make_error(ErrorCode::Internal, "not started");
  if (!p->got.pid && !p->got.err) {
    mark_host_gone();
    pid = spawn_kept(p->spec, std::move(p->plan), std::move(p->write_ends), *p->child);
  } else {
    pid = finish_start(p->got, p->spec, p->plan.exe);
  }
  // Our copies of the task's descriptors go: its pipes end with it.
  p->plan = SpawnPlan{};
  p->write_ends = {};
  Result<pid_t> watched = watch_started(std::move(p->child), std::move(pid), p->spec);
  invoke_callback("started", p->started, watched);
}

// Starts whose report never came in while the reactor ran (destruction,
// hand-over): their keepers are stopped, and `started` is not called.
void ProcessRunner::Impl::abandon_pending() {
  std::unordered_map<std::uint64_t, std::unique_ptr<PendingStart>> left;
  {
    std::lock_guard lock(mu);
    left.swap(pending);
  }
  for (auto& [serial, p] : left) {
    poller->remove(p->report.get());
    read_rest_of_report(*p);
    if (const auto pid = p->got.pid) {
      ::kill(-*pid, SIGKILL);
      while (::waitpid(*pid, nullptr, 0) < 0 && errno == EINTR) {
      }
    }
    if (p->child->log_generation) leave_log_generation(*p->child->log_generation);
  }
}

// The keeper's pid when it started the command; otherwise it is reaped and
// the error says why.
Result<pid_t> ProcessRunner::Impl::finish_start(const KeeperReport& report, const LaunchSpec& spec,
                                                const std::string& command_exe) {
  if (report.err && *report.err == 0 && report.pid) return *report.pid;
  // The keeper did not start the command and is exiting (or never was).
  if (report.pid) {
    while (::waitpid(*report.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
  }
  if (!report.err) {
    return make_error(ErrorCode::Internal, "the task keeper " + options.keeper_path +
                                               " ended before starting the task; is it this build's own?");
  }
  if (!report.pid) {
    return make_error(ErrorCode::Unavailable, std::string("the keeper host cannot start a keeper: ") +
                                                  std::strerror(*report.err) +
                                                  " (the system is out of processes or memory)");
  }
  return describe_spawn_error(*report.err, spec, command_exe);
}

void ProcessRunner::Impl::stop_keeper_host() {
  std::unique_lock lock(host_mu);
  host.reset();
}

std::unordered_map<TaskId, pid_t> ProcessRunner::find_orphan_keepers() {
  std::unordered_map<TaskId, pid_t> keepers;
  for (pid_t pid : platform::all_process_ids()) {
    if (auto task = keeper_task_of(platform::process_command_line(pid))) keepers.emplace(std::move(*task), pid);
  }
  return keepers;
}

Status ProcessRunner::adopt_orphan(pid_t pid, const TaskId& task_id, int attempt, ProcessCallbacks callbacks) {
  Impl& m = *impl_;
  if (!m.poller) return make_error(ErrorCode::Unavailable, m.unavailable);
  // Open the watch first, then check who it watches: a pidfd names one
  // process for good, so a pid reused after the check cannot slip in.
  auto watch = platform::open_exit_watch(pid);
  if (!watch) return make_error(ErrorCode::NotFound, "pid " + std::to_string(pid) + " is not running");
  if (!is_keeper_of(platform::process_command_line(pid), task_id)) {
    return make_error(ErrorCode::NotFound, "pid " + std::to_string(pid) + " is no longer the keeper of task " + task_id);
  }
  auto child = std::make_unique<Child>();
  child->pid = pid;
  child->task_id = task_id;
  child->foreign = true;
  child->task_dir = m.spool.dir() / task_id;
  child->attempt = attempt;
  child->callbacks = std::move(callbacks);
  child->started = SteadyClock::now();
  child->exit_watch = std::move(*watch);
  {
    std::lock_guard lock(m.mu);
    child->log_generation = kEarlierGeneration;
    m.unreported_generations.insert(kEarlierGeneration);
  }
  auto registered = m.register_child(std::move(child));
  if (!registered) return registered.error();
  return {};
}

void ProcessRunner::terminate(pid_t pid, std::chrono::milliseconds grace) {
  Impl& m = *impl_;
  {
    std::lock_guard lock(m.mu);
    auto it = m.by_pid.find(pid);
    if (it == m.by_pid.end() || it->second->reaped) return;
    Child& c = *it->second;
    // Signal the group, not the pid: `sh -c` forks, and the work is usually a grandchild.
    ::kill(-pid, SIGTERM);
    if (grace <= milliseconds::zero()) {
      ::kill(-pid, SIGKILL);
      return;
    }
    const TimePoint at = SteadyClock::now() + grace;
    if (!c.kill_at || at < *c.kill_at) c.kill_at = at;
  }
  m.poller->wake();  // the reactor's timeout must now include this deadline
}

void ProcessRunner::kill_all() {
  std::lock_guard lock(impl_->mu);
  impl_->kill_all_locked();
}

std::size_t ProcessRunner::running() const {
  std::lock_guard lock(impl_->mu);
  return impl_->children.size();
}

std::optional<std::pair<std::uint64_t, std::uint64_t>> ProcessRunner::live_bytes(pid_t pid) const {
  std::lock_guard lock(impl_->mu);
  auto it = impl_->by_pid.find(pid);
  if (it == impl_->by_pid.end()) return std::nullopt;
  const Child& c = *it->second;
  if (c.foreign) {
    return std::pair(spooled_size(c.task_dir / to_string(StreamKind::Stdout)),
                     spooled_size(c.task_dir / to_string(StreamKind::Stderr)));
  }
  return std::pair(c.streams[0].total.load(std::memory_order_relaxed),
                   c.streams[1].total.load(std::memory_order_relaxed));
}

// --- Hand-over (restart in place) -------------------------------------------

int RunningProcess::fd(std::string_view role) const {
  for (const HandedFd& h : fds) {
    if (h.role == role) return h.fd;
  }
  return -1;
}

std::vector<RunningProcess> ProcessRunner::hand_over() {
  Impl& m = *impl_;
  std::vector<RunningProcess> out;
  if (!m.poller) return out;
  m.reactor.request_stop();
  m.poller->wake();
  if (m.reactor.joinable()) m.reactor.join();
  // Not handed over: a start still waiting for its keeper never began, as
  // far as the store can tell (the engine lets its starts finish first).
  m.abandon_pending();
  // The reactor is gone: only this thread removes children from here on.
  // Leaders already reaped whose pipes are held open by leftover members: the
  // exit status is known, so report it now rather than hand over half a child.
  std::vector<Child*> reaped;
  {
    std::lock_guard lock(m.mu);
    for (auto& [serial, c] : m.children) {
      if (c->reaped) reaped.push_back(c.get());
    }
  }
  for (Child* c : reaped) {
    ::kill(-c->pid, SIGKILL);
    m.close_stream(*c, 0);
    m.close_stream(*c, 1);
    m.maybe_finish(*c);
  }
  // The next image starts a host of its own; this one must not be left a
  // zombie child of it. (A start from here on spawns its keeper.)
  m.stop_keeper_host();
  const TimePoint now = SteadyClock::now();
  std::lock_guard lock(m.mu);
  m.stopping = true;  // nothing more is started or reported
  for (auto& [serial, c] : m.children) {
    RunningProcess p;
    p.task_id = c->task_id;
    p.pid = c->pid;
    p.elapsed_ms = std::chrono::duration_cast<milliseconds>(now - c->started).count();
    p.foreign = c->foreign;
    constexpr const char* kRoles[2] = {"stdout", "stderr"};
    for (std::size_t i = 0; i < 2 && !c->foreign; ++i) {
      Stream& st = c->streams[i];
      StreamProgress& progress = i == 0 ? p.stdout_progress : p.stderr_progress;
      progress.total_bytes = st.writer->total_bytes();
      progress.stored_bytes = st.writer->stored_bytes();
      progress.capped = st.writer->capped();
      if (st.fd) {
        m.poller->remove(st.fd.get());
        p.fds.push_back({kRoles[i], st.fd.release()});
      }
    }
    if (c->exit_watch) {
      m.poller->remove(c->exit_watch.get());
      p.fds.push_back({"exit", c->exit_watch.release()});
    }
    out.push_back(std::move(p));
  }
  m.children.clear();
  m.by_pid.clear();
  m.sweeps.clear();
  return out;
}

Lifeline ProcessRunner::release_lifeline() {
  return {impl_->lifeline_read.release(), impl_->lifeline_write.release()};
}

Status ProcessRunner::adopt(const RunningProcess& p, ProcessCallbacks callbacks) {
  Impl& m = *impl_;
  auto child = std::make_unique<Child>();
  child->pid = p.pid;
  child->foreign = p.foreign;
  child->task_dir = m.spool.dir() / p.task_id;
  child->attempt = p.attempt;
  child->task_id = p.task_id;
  child->callbacks = std::move(callbacks);
  child->started = SteadyClock::now() - milliseconds(p.elapsed_ms);
  for (const HandedFd& h : p.fds) {
    if (h.fd < 0) continue;
    // Not inherited by the tasks this image starts.
    ::fcntl(h.fd, F_SETFD, FD_CLOEXEC);
    if (h.role == "stdout") child->streams[0].fd.reset(h.fd);
    else if (h.role == "stderr") child->streams[1].fd.reset(h.fd);
    else if (h.role == "exit") child->exit_watch.reset(h.fd);
    else ::close(h.fd);  // a role this version does not know
  }
  auto give_up = [&](const Error& e) -> Status {
    ::kill(-p.pid, SIGKILL);
    while (::waitpid(p.pid, nullptr, 0) < 0 && errno == EINTR) {
    }
    return make_error(e.code, "cannot watch the handed-over process " + std::to_string(p.pid) + ": " + e.message);
  };
  if (!m.poller) return give_up(make_error(ErrorCode::Unavailable, m.unavailable));
  // A foreign process's keeper spools its output itself.
  for (std::size_t i = 0; i < 2 && !p.foreign; ++i) {
    const StreamProgress& progress = i == 0 ? p.stdout_progress : p.stderr_progress;
    auto writer = m.spool.resume_writer(p.task_id, i == 0 ? StreamKind::Stdout : StreamKind::Stderr,
                                        progress.total_bytes, progress.stored_bytes, progress.capped);
    if (!writer) return give_up(writer.error());
    child->streams[i].writer = std::move(*writer);
    child->streams[i].total.store(progress.total_bytes, std::memory_order_relaxed);
  }
  child->polled = !child->exit_watch;
  if (!m.options.keeper_path.empty()) {
    std::lock_guard lock(m.mu);
    child->log_generation = kEarlierGeneration;
    m.unreported_generations.insert(kEarlierGeneration);
  }
  auto registered = m.register_child(std::move(child));
  if (!registered) return registered.error();
  return {};
}

}  // namespace orch::engine
