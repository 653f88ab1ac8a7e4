// The machine's own floor for what one task costs, to set the orchestrator's
// figures beside (docs/PERFORMANCE.md). No dependencies beyond libc.
//
//   raw_limit spawn COUNT CONCURRENCY   posix_spawn `/bin/sh -c true` + waitpid,
//                                       CONCURRENCY children in flight at once
//   raw_limit kept COUNT CONCURRENCY    the same, each `sh` behind a process of its own:
//                                       fork() (of this small program), which spawns
//                                       `sh -c true`, waits and exits with its status;
//                                       the floor of any design that puts a supervising
//                                       process (a task keeper) in front of every task
//   raw_limit pipe COUNT                1-byte round trips with a child over two pipes
//
// Each prints one JSON object on stdout for bench/run to read.
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

[[noreturn]] void die(const char* what, int error) {
  std::fprintf(stderr, "raw_limit: %s: %s\n", what, std::strerror(error));
  std::exit(1);
}

pid_t spawn_shell_true() {
  static char sh[] = "/bin/sh", dash_c[] = "-c", body[] = "true";
  char* argv[] = {sh, dash_c, body, nullptr};
  pid_t pid = 0;
  if (int rc = posix_spawn(&pid, sh, nullptr, nullptr, argv, environ); rc != 0) {
    die("posix_spawn", rc);
  }
  return pid;
}

// A supervising process per task: forked, not spawned (a fork of this small
// program costs no exec), as the orchestrator's keeper host forks keepers.
pid_t spawn_kept_shell_true() {
  pid_t pid = fork();
  if (pid < 0) die("fork", errno);
  if (pid == 0) {
    int status = 0;
    const pid_t child = spawn_shell_true();
    while (waitpid(child, &status, 0) < 0) {
      if (errno != EINTR) _exit(1);
    }
    _exit(WIFEXITED(status) ? WEXITSTATUS(status) : 1);
  }
  return pid;
}

void reap_one() {
  int status = 0;
  if (waitpid(-1, &status, 0) < 0) die("waitpid", errno);
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    std::fprintf(stderr, "raw_limit: a child did not exit 0\n");
    std::exit(1);
  }
}

// Keeps `concurrency` children in flight, as the orchestrator does with that
// many tasks running, and reports the completion rate.
int run_spawn(const char* what, pid_t (*start_one)(), long count, long concurrency) {
  auto start = Clock::now();
  long started = 0, finished = 0;
  while (finished < count) {
    while (started < count && started - finished < concurrency) {
      start_one();
      ++started;
    }
    reap_one();
    ++finished;
  }
  double elapsed = seconds_since(start);
  std::printf(
      "{\"what\":\"%s\",\"count\":%ld,\"concurrency\":%ld,\"seconds\":%.6f,"
      "\"per_second\":%.1f}\n",
      what, count, concurrency, elapsed, static_cast<double>(count) / elapsed);
  return 0;
}

// The child echoes every byte back; the parent times each round trip.
int run_pipe(long count) {
  int to_child[2], from_child[2];
  if (pipe(to_child) != 0 || pipe(from_child) != 0) die("pipe", errno);
  pid_t child = fork();  // a tiny program: fork's page-table cost does not matter here
  if (child < 0) die("fork", errno);
  if (child == 0) {
    close(to_child[1]);  // or the last read never sees end of file
    close(from_child[0]);
    char byte;
    while (read(to_child[0], &byte, 1) == 1) {
      if (write(from_child[1], &byte, 1) != 1) _exit(1);
    }
    _exit(0);
  }
  close(to_child[0]);
  close(from_child[1]);
  std::vector<double> micros;
  micros.reserve(static_cast<size_t>(count));
  long warm_up = std::min(count / 10, 1000L);
  for (long i = 0; i < count + warm_up; ++i) {
    char byte = 'x';
    auto start = Clock::now();
    if (write(to_child[1], &byte, 1) != 1 || read(from_child[0], &byte, 1) != 1) {
      die("round trip", errno);
    }
    if (i >= warm_up) micros.push_back(seconds_since(start) * 1e6);
  }
  close(to_child[1]);
  waitpid(child, nullptr, 0);
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) { return micros[static_cast<size_t>(q * (micros.size() - 1))]; };
  std::printf("{\"what\":\"pipe\",\"count\":%ld,\"p50_us\":%.2f,\"p99_us\":%.2f}\n", count,
              at(0.5), at(0.99));
  return 0;
}

long positive(const char* text) {
  char* end = nullptr;
  long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value <= 0) {
    std::fprintf(stderr, "raw_limit: '%s' is not a positive integer\n", text);
    std::exit(2);
  }
  return value;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "spawn" && argc == 4) return run_spawn("spawn", spawn_shell_true, positive(argv[2]), positive(argv[3]));
  if (mode == "kept" && argc == 4) return run_spawn("kept", spawn_kept_shell_true, positive(argv[2]), positive(argv[3]));
  if (mode == "pipe" && argc == 3) return run_pipe(positive(argv[2]));
  std::fprintf(stderr, "usage: raw_limit spawn|kept COUNT CONCURRENCY | raw_limit pipe COUNT\n");
  return 2;
}
