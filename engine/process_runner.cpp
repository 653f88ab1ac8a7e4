#include "engine/process_runner.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
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
#include <mutex>
#include <thread>
#include <unordered_map>

#include <spdlog/spdlog.h>

#include "engine/platform.h"

namespace orch::engine {

namespace {

using SteadyClock = std::chrono::steady_clock;
using TimePoint = SteadyClock::time_point;
using std::chrono::milliseconds;

constexpr std::size_t kReadChunk = 64 * 1024;
// Longer lines are not progress lines; keeping more would let a task that
// prints one endless line grow the server.
constexpr std::size_t kMaxProgressLine = 4096;
// After SIGKILL to the group, how long its pipes may stay open before we stop
// waiting for EOF: only a process that left the group (setsid) can hold them.
constexpr milliseconds kGiveUpAfterKill{500};
// Without pidfds (kernel < 5.3) exits are found by polling waitid at this pace.
constexpr milliseconds kExitPollInterval{20};
// At destruction, how long SIGKILLed processes get to become reapable.
constexpr milliseconds kReapAtShutdown{5000};
// What execvp uses when the environment has no PATH.
constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";
constexpr std::string_view kProgressPrefix = "::progress";

// Poller keys: a child's serial number and which of its descriptors is ready.
// Serials are never reused, so a stale event cannot reach a newer child.
enum class Source : std::uint64_t { Stdout = 0, Stderr = 1, Exit = 2 };
constexpr int kSourceBits = 2;

constexpr std::uint64_t make_key(std::uint64_t serial, Source source) {
  return serial << kSourceBits | static_cast<std::uint64_t>(source);
}

// Finds "::progress" lines in output that arrives in arbitrary chunks, keeping
// at most kMaxProgressLine bytes of the current line and none of a line whose
// start already shows it is not a progress line.
class ProgressScanner {
 public:
  template <typename OnProgress>
  void feed(const char* data, std::size_t size, const OnProgress& on_progress) {
    while (size > 0) {
      const char* newline = static_cast<const char*>(std::memchr(data, '\n', size));
      const std::size_t len = newline ? static_cast<std::size_t>(newline - data) : size;
      if (!skip_) take(data, len);
      if (!newline) return;
      finish(on_progress);
      data += len + 1;
      size -= len + 1;
    }
  }

  // Ends the current line (at a newline, or at end of output).
  template <typename OnProgress>
  void finish(const OnProgress& on_progress) {
    if (!skip_ && !line_.empty()) {
      if (auto progress = parse_progress_line(line_)) on_progress(*progress);
    }
    line_.clear();
    skip_ = false;
  }

 private:
  void take(const char* data, std::size_t len) {
    if (line_.size() + len > kMaxProgressLine) {
      skip_ = true;
      line_.clear();
      return;
    }
    line_.append(data, len);
    const std::size_t n = std::min(line_.size(), kProgressPrefix.size());
    if (line_.compare(0, n, kProgressPrefix.data(), n) != 0) {
      skip_ = true;
      line_.clear();
    }
  }

  std::string line_;
  bool skip_ = false;  // the current line cannot be a progress line
};

struct Stream {
  UniqueFd fd;  // read end of the pipe; closed at EOF or when given up
  std::unique_ptr<SpoolWriter> writer;
  std::atomic<std::uint64_t> total{0};  // writer->total_bytes(), for live_bytes()
};

struct Child {
  std::uint64_t serial = 0;
  pid_t pid = 0;  // also the process group id
  ProcessCallbacks callbacks;
  TimePoint started;
  std::array<Stream, 2> streams;  // indexed by Source::Stdout / Source::Stderr
  UniqueFd exit_watch;            // pidfd; closed once reaped
  bool polled = false;            // no exit watch could be opened: poll waitid
  ProgressScanner progress;
  ExitInfo info;

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

bool set_nonblocking(int fd) {
  int flags = ::fcntl(fd, F_GETFL);
  return flags >= 0 && ::fcntl(fd, F_SETFL, flags | O_NONBLOCK) == 0;
}

// Moves a descriptor off 0..2. posix_spawn's dup2 actions run in order, so a
// source that is itself 0, 1 or 2 (the server started with closed stdio)
// could be overwritten by an earlier action.
Result<UniqueFd> above_stdio(UniqueFd fd) {
  if (fd.get() > 2) return fd;
  UniqueFd moved(::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3));
  if (!moved) {
    return make_error(ErrorCode::Io, std::string("cannot prepare the child's stdio: ") + std::strerror(errno));
  }
  return moved;
}

Status check_cwd(const std::string& cwd) {
  if (cwd.empty()) return {};
  struct stat st {};
  if (::stat(cwd.c_str(), &st) != 0) {
    if (errno == ENOENT) {
      return make_error(ErrorCode::NotFound, "working directory '" + cwd +
                                                 "' does not exist; create it or pass an existing cwd");
    }
    return make_error(ErrorCode::InvalidArgument,
                      "working directory '" + cwd + "' cannot be used: " + std::strerror(errno));
  }
  if (!S_ISDIR(st.st_mode)) {
    return make_error(ErrorCode::InvalidArgument, "working directory '" + cwd + "' is not a directory");
  }
  if (::access(cwd.c_str(), X_OK) != 0) {
    return make_error(ErrorCode::InvalidArgument,
                      "working directory '" + cwd + "' is not accessible: " + std::strerror(errno));
  }
  return {};
}

Result<UniqueFd> open_stdin(const LaunchSpec& spec) {
  // Opened here rather than as a spawn action, so a missing file gets its own
  // message instead of an ENOENT that would read like a missing program.
  const std::string path = spec.stdin_path ? spec.stdin_path->string() : "/dev/null";
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) {
    return make_error(ErrorCode::Io, "cannot open the task's stdin '" + path + "': " + std::strerror(errno));
  }
  return above_stdio(std::move(fd));
}

Error spawn_error(int err, const LaunchSpec& spec, const std::string& exe) {
  const std::string& name = spec.argv.front();
  std::string message = "cannot start '" + name + "'";
  if (exe != name) message += " (" + exe + ")";
  message += ": ";
  message += std::strerror(err);
  ErrorCode code = ErrorCode::InvalidArgument;
  switch (err) {
    case ENOENT:
      code = ErrorCode::NotFound;
      message += name.find('/') != std::string::npos && name.front() != '/'
                     ? " (a relative path starts at the task's working directory"
                     : " (check the path";
      message += "; a '#!' line may also name a missing interpreter)";
      break;
    case EACCES:
    case EPERM:
      message += " (make it executable with chmod +x and check that its directories are searchable)";
      break;
    case ENOEXEC:
      message += " (not a program this system can run: add a '#!' line or run it with /bin/sh)";
      break;
    case ENOTDIR:
      message += " (a part of the path is not a directory)";
      break;
    case E2BIG:
      message += " (arguments and environment are too long; pass data through stdin or a file)";
      break;
    case EAGAIN:
    case ENOMEM:
    case EMFILE:
    case ENFILE:
      code = ErrorCode::Unavailable;
      message += " (the system is out of processes, memory or file descriptors; retry later)";
      break;
    default:
      code = ErrorCode::Io;
      break;
  }
  return make_error(code, std::move(message));
}

// posix_spawn's attribute and file-action objects, destroyed on every path.
struct SpawnSetup {
  posix_spawnattr_t attr;
  posix_spawn_file_actions_t actions;
  int rc = 0;  // the first failure while filling them in

  SpawnSetup() {
    step(::posix_spawnattr_init(&attr));
    step(::posix_spawn_file_actions_init(&actions));
  }
  ~SpawnSetup() {
    ::posix_spawn_file_actions_destroy(&actions);
    ::posix_spawnattr_destroy(&attr);
  }
  SpawnSetup(const SpawnSetup&) = delete;
  SpawnSetup& operator=(const SpawnSetup&) = delete;
  void step(int result) {
    if (rc == 0) rc = result;
  }
};

// posix_spawn, never fork: glibc spawns with clone(CLONE_VM|CLONE_VFORK), so
// its cost does not grow with the server's memory (SPEC §4, BUILD-NOTES.md).
Result<pid_t> spawn(const std::string& exe, const LaunchSpec& spec, int in, int out, int err) {
  SpawnSetup s;
  // pgroup 0: the child leads a new group, so one kill(-pid) reaches
  // everything it starts (SPEC §3 cancelTask).
  s.step(::posix_spawnattr_setflags(&s.attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                                 POSIX_SPAWN_SETSIGDEF));
  s.step(::posix_spawnattr_setpgroup(&s.attr, 0));
  // The server blocks or ignores signals for its own reasons (SIGPIPE is
  // ignored process-wide); a task must start with the defaults, or `yes | head`
  // spins and a shell cannot be interrupted.
  sigset_t mask;
  sigemptyset(&mask);
  s.step(::posix_spawnattr_setsigmask(&s.attr, &mask));
  sigset_t defaults;
  sigemptyset(&defaults);
  for (int sig : {SIGPIPE, SIGINT, SIGTERM, SIGCHLD, SIGHUP, SIGQUIT}) sigaddset(&defaults, sig);
  s.step(::posix_spawnattr_setsigdefault(&s.attr, &defaults));
  s.step(::posix_spawn_file_actions_adddup2(&s.actions, in, STDIN_FILENO));
  s.step(::posix_spawn_file_actions_adddup2(&s.actions, out, STDOUT_FILENO));
  s.step(::posix_spawn_file_actions_adddup2(&s.actions, err, STDERR_FILENO));
  // macOS 10.15+ has the same call under the same name.
  if (!spec.cwd.empty()) s.step(::posix_spawn_file_actions_addchdir_np(&s.actions, spec.cwd.c_str()));
  s.step(platform::close_inherited_fds(&s.actions, &s.attr));
  if (s.rc != 0) {
    return make_error(ErrorCode::Internal,
                      std::string("cannot prepare to start a process: ") + std::strerror(s.rc));
  }

  std::vector<char*> argv;
  argv.reserve(spec.argv.size() + 1);
  for (const auto& arg : spec.argv) argv.push_back(const_cast<char*>(arg.c_str()));
  argv.push_back(nullptr);
  std::vector<char*> envp;
  envp.reserve(spec.env.size() + 1);
  for (const auto& var : spec.env) envp.push_back(const_cast<char*>(var.c_str()));
  envp.push_back(nullptr);

  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, exe.c_str(), &s.actions, &s.attr, argv.data(), envp.data());
  if (rc != 0) return spawn_error(rc, spec, exe);
  return pid;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_blank(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_blanks(std::string_view s) {
  while (!s.empty() && is_blank(s.front())) s.remove_prefix(1);
  while (!s.empty() && is_blank(s.back())) s.remove_suffix(1);
  return s;
}

// digits, optionally "." digits: no sign, exponent, "inf" or "nan".
std::optional<double> parse_number(std::string_view s) {
  std::size_t i = 0;
  while (i < s.size() && is_digit(s[i])) ++i;
  if (i == 0) return std::nullopt;
  if (i < s.size()) {
    if (s[i] != '.') return std::nullopt;
    const std::size_t fraction = ++i;
    while (i < s.size() && is_digit(s[i])) ++i;
    if (i == fraction || i != s.size()) return std::nullopt;
  }
  double value = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), value);
  if (ec != std::errc() || end != s.data() + s.size()) return std::nullopt;
  return value;
}

}  // namespace

std::optional<Progress> parse_progress_line(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  if (!line.starts_with(kProgressPrefix)) return std::nullopt;
  line.remove_prefix(kProgressPrefix.size());
  if (line.empty() || !is_blank(line.front())) return std::nullopt;
  line = trim_blanks(line);
  const std::size_t blank = std::min(line.find(' '), line.find('\t'));
  const std::string_view numbers = line.substr(0, blank);
  const std::string_view message = blank == std::string_view::npos ? "" : trim_blanks(line.substr(blank));

  Progress progress;
  const std::size_t slash = numbers.find('/');
  auto current = parse_number(numbers.substr(0, slash));
  if (!current) return std::nullopt;
  progress.current = *current;
  if (slash != std::string_view::npos) {
    auto total = parse_number(numbers.substr(slash + 1));
    if (!total) return std::nullopt;
    progress.total = *total;
  }
  progress.message = std::string(message);
  return progress;
}

Result<std::string> resolve_executable(const std::string& name, const std::vector<std::string>& env) {
  if (name.empty()) {
    return make_error(ErrorCode::InvalidArgument, "nothing to run: the program name (argv[0]) is empty");
  }
  if (name.find('/') != std::string::npos) return name;
  std::string path = kDefaultPath;
  for (const auto& var : env) {
    if (var.starts_with("PATH=")) {
      path = var.substr(5);
      break;
    }
  }
  std::string not_executable;
  for (std::size_t pos = 0; pos <= path.size();) {
    std::size_t end = std::min(path.find(':', pos), path.size());
    const std::string dir = path.substr(pos, end - pos);
    pos = end + 1;
    // Relative entries (an empty one means ".") would resolve against the
    // server's directory, not the task's cwd: skip them.
    if (dir.empty() || dir.front() != '/') continue;
    std::string candidate = dir + (dir.back() == '/' ? "" : "/") + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    if (::access(candidate.c_str(), X_OK) == 0) return candidate;
    if (not_executable.empty()) not_executable = std::move(candidate);
  }
  if (!not_executable.empty()) {
    return make_error(ErrorCode::InvalidArgument, "cannot start '" + name + "': '" + not_executable +
                                                      "' is not executable (chmod +x it, or fix PATH)");
  }
  return make_error(ErrorCode::NotFound, "cannot start '" + name + "': not found in PATH=" + path +
                                             " (install it, give its absolute path, or set PATH in env)");
}

struct ProcessRunner::Impl {
  Impl(Spool& spool_in, Options options_in);

  void run(std::stop_token stop);
  int next_timeout_ms();
  void handle(std::uint64_t key);
  void on_output(Child& c, std::size_t index);
  void on_leader_exit(Child& c);
  void run_timers();
  void close_stream(Child& c, std::size_t index);
  void maybe_finish(Child& c);
  void record_error(Child& c, std::string error);
  Result<pid_t> register_child(std::unique_ptr<Child> child);
  void kill_all_locked();
  void reap_at_shutdown();

  Spool& spool;
  const Options options;
  std::unique_ptr<platform::Poller> poller;  // null when it could not be created
  std::string unavailable;                   // why, in that case

  mutable std::mutex mu;
  std::unordered_map<std::uint64_t, std::unique_ptr<Child>> children;  // by serial; guarded by mu
  std::unordered_map<pid_t, Child*> by_pid;                           // guarded by mu
  std::vector<GroupSweep> sweeps;                                      // guarded by mu
  std::uint64_t next_serial = 1;                                       // guarded by mu
  bool stopping = false;  // guarded by mu; set when destruction begins

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
  reactor = std::jthread([this](std::stop_token stop) { run(stop); });
}

void ProcessRunner::Impl::run(std::stop_token stop) {
  try {
    std::array<std::uint64_t, 64> keys;
    while (!stop.stop_requested()) {
      const std::size_t n = poller->wait(keys, next_timeout_ms());
      for (std::size_t i = 0; i < n; ++i) handle(keys[i]);
      run_timers();
    }
  } catch (const std::exception& e) {
    spdlog::critical("process runner: reactor stopped: {}; running tasks will not be reported", e.what());
  } catch (...) {
    spdlog::critical("process runner: reactor stopped by a non-standard exception");
  }
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
  Child* c = nullptr;
  {
    std::lock_guard lock(mu);
    auto it = children.find(key >> kSourceBits);
    if (it == children.end()) return;  // finished earlier in this batch
    c = it->second.get();
  }
  // Only this thread removes children, so `c` stays valid without the lock.
  switch (static_cast<Source>(key & ((1u << kSourceBits) - 1))) {
    case Source::Stdout: on_output(*c, 0); break;
    case Source::Stderr: on_output(*c, 1); break;
    case Source::Exit: on_leader_exit(*c); break;
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
  info.stdout_bytes = c.streams[0].writer->total_bytes();
  info.stderr_bytes = c.streams[1].writer->total_bytes();
  info.stdout_capped = c.streams[0].writer->capped();
  info.stderr_capped = c.streams[1].writer->capped();

  std::unique_ptr<Child> owned;
  bool report = false;
  {
    std::lock_guard lock(mu);
    // Members that closed their pipes may still run, ignoring the SIGTERM sent
    // at reaping: SIGKILL them when the grace ends. (Not if that SIGKILL was
    // already sent: give_up_at is set then.)
    if (!c.give_up_at && ::kill(-c.pid, 0) == 0) {
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
}

Result<pid_t> ProcessRunner::Impl::register_child(std::unique_ptr<Child> child) {
  Child& c = *child;
  // Once in the table the child belongs to the reactor, which may finish and
  // free it before this function returns: copy what is needed afterwards.
  const pid_t pid = c.pid;
  const bool polled = c.polled;
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
    if (c->reaped) continue;
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
  m.reactor.join();
  {
    std::lock_guard lock(m.mu);
    m.kill_all_locked();
  }
  // The reactor is gone and callers may not use a runner being destroyed:
  // this thread alone touches the children now.
  m.reap_at_shutdown();
}

Result<pid_t> ProcessRunner::start(const LaunchSpec& spec, ProcessCallbacks callbacks) {
  Impl& m = *impl_;
  if (!m.poller) return make_error(ErrorCode::Unavailable, m.unavailable);
  if (spec.argv.empty()) {
    return make_error(ErrorCode::InvalidArgument, "nothing to run: argv is empty; pass the program and its arguments");
  }
  if (auto st = check_cwd(spec.cwd); !st) return st.error();
  auto exe = resolve_executable(spec.argv.front(), spec.env);
  if (!exe) return exe.error();
  auto in = open_stdin(spec);
  if (!in) return in.error();

  auto child = std::make_unique<Child>();
  std::array<UniqueFd, 2> write_ends;
  for (std::size_t i = 0; i < 2; ++i) {
    auto pipe = platform::make_pipe();
    if (!pipe) return make_error(ErrorCode::Unavailable, "cannot create a pipe for the task: " + pipe.error().message);
    // Only our end is non-blocking: the child's end keeps normal semantics.
    if (!set_nonblocking(pipe->first.get())) {
      return make_error(ErrorCode::Io, std::string("cannot set up the task's pipe: ") + std::strerror(errno));
    }
    auto write_end = above_stdio(std::move(pipe->second));
    if (!write_end) return write_end.error();
    child->streams[i].fd = std::move(pipe->first);
    write_ends[i] = std::move(*write_end);
    auto writer = m.spool.open_writer(spec.task_id, i == 0 ? StreamKind::Stdout : StreamKind::Stderr);
    if (!writer) return writer.error();
    child->streams[i].writer = std::move(*writer);
  }

  child->started = SteadyClock::now();
  auto pid = spawn(*exe, spec, in->get(), write_ends[0].get(), write_ends[1].get());
  // The parent must not keep the write ends, or the pipes never reach EOF.
  write_ends = {};
  in->reset();
  if (!pid) return pid.error();

  child->pid = *pid;
  child->callbacks = std::move(callbacks);
  if (auto watch = platform::open_exit_watch(*pid)) {
    child->exit_watch = std::move(*watch);
  } else {
    child->polled = true;  // old kernel or no descriptors left: fall back to polling waitid
  }
  return m.register_child(std::move(child));
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
  return std::pair(c.streams[0].total.load(std::memory_order_relaxed),
                   c.streams[1].total.load(std::memory_order_relaxed));
}

}  // namespace orch::engine
