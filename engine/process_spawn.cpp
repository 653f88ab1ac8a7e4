#include "engine/process_spawn.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "engine/platform.h"

namespace orch::engine {

namespace {

// What execvp uses when the environment has no PATH.
constexpr const char* kDefaultPath = "/usr/local/bin:/usr/bin:/bin";

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

}  // namespace

Error describe_spawn_error(int err, const LaunchSpec& spec, const std::string& exe) {
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

namespace {

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

}  // namespace

Result<SpawnPlan> prepare_spawn(const LaunchSpec& spec) {
  if (spec.argv.empty()) {
    return make_error(ErrorCode::InvalidArgument, "nothing to run: argv is empty; pass the program and its arguments");
  }
  if (auto st = check_cwd(spec.cwd); !st) return st.error();
  auto exe = resolve_executable(spec.argv.front(), spec.env);
  if (!exe) return exe.error();
  auto in = open_stdin(spec);
  if (!in) return in.error();
  return SpawnPlan{std::move(*exe), std::move(*in)};
}

Result<OutputPipe> make_output_pipe() {
  auto pipe = platform::make_pipe();
  if (!pipe) return make_error(ErrorCode::Unavailable, "cannot create a pipe for the task: " + pipe.error().message);
  // Only our end is non-blocking: the child's end keeps normal semantics.
  if (!set_nonblocking(pipe->first.get())) {
    return make_error(ErrorCode::Io, std::string("cannot set up the task's pipe: ") + std::strerror(errno));
  }
  auto write_end = above_stdio(std::move(pipe->second));
  if (!write_end) return write_end.error();
  return OutputPipe{std::move(pipe->first), std::move(*write_end)};
}

// posix_spawn, never fork: glibc spawns with clone(CLONE_VM|CLONE_VFORK), so
// its cost does not grow with the server's memory (SPEC §4, BUILD-NOTES.md).
Result<pid_t> spawn_process(const LaunchSpec& spec, SpawnPlan plan, UniqueFd stdout_fd, UniqueFd stderr_fd,
                            std::span<const int> passed) {
  // The descriptors are ours by value and close on return: the parent must
  // not keep the write ends, or the pipes never reach EOF.
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
  s.step(::posix_spawn_file_actions_adddup2(&s.actions, plan.stdin_fd.get(), STDIN_FILENO));
  s.step(::posix_spawn_file_actions_adddup2(&s.actions, stdout_fd.get(), STDOUT_FILENO));
  s.step(::posix_spawn_file_actions_adddup2(&s.actions, stderr_fd.get(), STDERR_FILENO));
  // dup2 actions run in order: a source inside 3..3+n would be overwritten
  // by an earlier one, so each is first copied above that range.
  const int first_free = 3 + static_cast<int>(passed.size());
  std::vector<UniqueFd> lifted;
  lifted.reserve(passed.size());
  for (int fd : passed) {
    lifted.emplace_back(::fcntl(fd, F_DUPFD_CLOEXEC, first_free));
    if (!lifted.back()) {
      return make_error(ErrorCode::Unavailable,
                        std::string("cannot prepare the task's descriptors: ") + std::strerror(errno));
    }
  }
  for (std::size_t i = 0; i < lifted.size(); ++i) {
    s.step(::posix_spawn_file_actions_adddup2(&s.actions, lifted[i].get(), 3 + static_cast<int>(i)));
  }
  // macOS 10.15+ has the same call under the same name.
  if (!spec.cwd.empty()) s.step(::posix_spawn_file_actions_addchdir_np(&s.actions, spec.cwd.c_str()));
  s.step(platform::close_inherited_fds(&s.actions, &s.attr, first_free));
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
  int rc = ::posix_spawn(&pid, plan.exe.c_str(), &s.actions, &s.attr, argv.data(), envp.data());
  if (rc != 0) return describe_spawn_error(rc, spec, plan.exe);
  return pid;
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

}  // namespace orch::engine
