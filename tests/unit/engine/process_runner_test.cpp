#include "engine/process_runner.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/process_probe.h"
#include "tests/support/temp_dir.h"
#include "tests/support/wait_until.h"

namespace orch::engine {
namespace {

using namespace std::chrono_literals;

// The machine is shared with builds: deadlines are generous, and met early.
constexpr auto kDeadline = std::chrono::milliseconds(20000);

std::vector<std::string> base_env() { return {"PATH=/usr/local/bin:/usr/bin:/bin", "LC_ALL=C"}; }

LaunchSpec shell(const std::string& script, const TaskId& id = "t1") {
  LaunchSpec spec;
  spec.argv = {"/bin/sh", "-c", script};
  spec.env = base_env();
  spec.task_id = id;
  return spec;
}

LaunchSpec program(std::vector<std::string> argv, const TaskId& id = "t1") {
  LaunchSpec spec;
  spec.argv = std::move(argv);
  spec.env = base_env();
  spec.task_id = id;
  return spec;
}

// Collects what the runner reports, from its reactor thread.
class Recorder {
 public:
  ProcessCallbacks callbacks() {
    return {
        [this](const Progress& p) {
          std::lock_guard lock(mu_);
          progress_.push_back(p);
        },
        [this](const ExitInfo& info) {
          std::lock_guard lock(mu_);
          exits_.push_back(info);
        },
    };
  }
  std::size_t exit_count() const {
    std::lock_guard lock(mu_);
    return exits_.size();
  }
  bool wait_for_exits(std::size_t n) const {
    return test::wait_until([&] { return exit_count() >= n; }, kDeadline);
  }
  ExitInfo exit_info(std::size_t i = 0) const {
    std::lock_guard lock(mu_);
    return exits_.at(i);
  }
  std::vector<Progress> progress() const {
    std::lock_guard lock(mu_);
    return progress_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<ExitInfo> exits_;
  std::vector<Progress> progress_;
};

std::string slurp(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// This file is built four times: as it is; with ORCH_KEEPER_BINARY set, so
// that every behaviour below also holds for processes under a task keeper
// (forked by the keeper host); with ORCH_KEEPER_SPAWNED as well (each
// keeper spawned, as when the host cannot serve a start); and with
// ORCH_START_SOON, each start handed to the host without waiting for it.
ProcessRunner::Options runner_options(std::chrono::milliseconds straggler_grace = 2000ms) {
  ProcessRunner::Options options;
  options.straggler_grace = straggler_grace;
#ifdef ORCH_KEEPER_BINARY
  options.keeper_path = ORCH_KEEPER_BINARY;
#endif
#ifdef ORCH_KEEPER_SPAWNED
  options.keeper_host = false;  // the third build: every keeper spawned, none forked by the host
#endif
  return options;
}

class ProcessRunnerTest : public ::testing::Test {
 protected:
  explicit ProcessRunnerTest(std::uint64_t cap = kDefaultStreamCapBytes,
                             ProcessRunner::Options options = runner_options())
      : spool_(dir_.path() / "spool", cap), runner_(spool_, options) {}

  // In the build with ORCH_START_SOON, through start_soon() where it takes
  // the start: what start() would have returned, delivered by the reactor.
  Result<pid_t> start_result(const LaunchSpec& spec) {
#ifdef ORCH_START_SOON
    auto promise = std::make_shared<std::promise<Result<pid_t>>>();
    auto future = promise->get_future();
    auto started = [promise](Result<pid_t> pid) { promise->set_value(std::move(pid)); };
    if (runner_.start_soon(spec, recorder_.callbacks(), std::move(started))) {
      if (future.wait_for(kDeadline) != std::future_status::ready) {
        return make_error(ErrorCode::Internal, "start_soon never reported");
      }
      return future.get();
    }
#endif
    return runner_.start(spec, recorder_.callbacks());
  }
  pid_t start(const LaunchSpec& spec) {
    auto pid = start_result(spec);
    EXPECT_TRUE(pid.ok()) << pid.error().message;
    return pid.ok() ? *pid : -1;
  }
  // Runs to the end and returns what on_exit reported.
  ExitInfo run(const LaunchSpec& spec) {
    const std::size_t before = recorder_.exit_count();
    start(spec);
    EXPECT_TRUE(recorder_.wait_for_exits(before + 1));
    return recorder_.exit_count() > before ? recorder_.exit_info(before) : ExitInfo{};
  }
  std::string output(StreamKind kind, const TaskId& id = "t1") { return slurp(spool_.path(id, kind)); }
  // The first line the task printed, once it has printed one.
  std::string first_line(const TaskId& id = "t1") {
    std::string line;
    EXPECT_TRUE(test::wait_until(
        [&] {
          std::string out = output(StreamKind::Stdout, id);
          auto nl = out.find('\n');
          if (nl == std::string::npos) return false;
          line = out.substr(0, nl);
          return true;
        },
        kDeadline));
    return line;
  }
  bool group_gone(pid_t pgid) {
    return test::wait_until([&] { return test::processes_in_group(pgid).empty(); }, kDeadline);
  }
  bool gone(pid_t pid) {
    return test::wait_until([&] { return !test::process_alive(pid); }, kDeadline);
  }

  test::TempDir dir_;
  Spool spool_;
  Recorder recorder_;
  ProcessRunner runner_;  // last: destroyed first, while the recorder lives
};

TEST_F(ProcessRunnerTest, ReportsExitCodeZero) {
  ExitInfo info = run(shell("exit 0"));
  ASSERT_TRUE(info.exit_code.has_value());
  EXPECT_EQ(*info.exit_code, 0);
  EXPECT_FALSE(info.signal.has_value());
  EXPECT_TRUE(info.error.empty()) << info.error;
  EXPECT_EQ(runner_.running(), 0u);
}

TEST_F(ProcessRunnerTest, AfterExitsFollowsTheEndsOfItsRoundOnTheReactor) {
  std::mutex mu;
  std::vector<std::string> seen;
  auto note = [&](const char* what) {
    std::lock_guard lock(mu);
    seen.push_back(std::string(what) + (ProcessRunner::in_reactor_round() ? " in the round" : " after it"));
  };
  ProcessRunner::Options options = runner_options();
  options.after_exits = [&] { note("after_exits"); };
  Spool spool(dir_.path() / "rounds");
  ProcessRunner runner(spool, options);  // after what it calls: stopped first
  ProcessCallbacks callbacks;
  callbacks.on_exit = [&](const ExitInfo&) { note("on_exit"); };
  ASSERT_TRUE(runner.start(shell("exit 0"), callbacks).ok());
  ASSERT_TRUE(test::wait_until(
      [&] {
        std::lock_guard lock(mu);
        return seen.size() >= 2;
      },
      kDeadline));
  std::lock_guard lock(mu);
  EXPECT_EQ(seen, (std::vector<std::string>{"on_exit in the round", "after_exits after it"}));
  EXPECT_FALSE(ProcessRunner::in_reactor_round()) << "only the reactor's thread is in a round";
}

TEST_F(ProcessRunnerTest, AnAfterExitsThatThrowsStopsNeitherTheReactorNorLaterEnds) {
  ProcessRunner::Options options = runner_options();
  std::atomic<int> calls{0};
  options.after_exits = [&] {
    ++calls;
    throw std::runtime_error("store unavailable");
  };
  Spool spool(dir_.path() / "throwing");
  ProcessRunner runner(spool, options);
  for (const char* id : {"t1", "t2"}) {
    ASSERT_TRUE(runner.start(shell("exit 3", id), recorder_.callbacks()).ok());
    ASSERT_TRUE(recorder_.wait_for_exits(id == std::string("t1") ? 1 : 2)) << "the end of " << id;
  }
  EXPECT_EQ(recorder_.exit_info(1).exit_code, 3);
  EXPECT_GE(calls.load(), 2);
}

TEST_F(ProcessRunnerTest, ReportsNonZeroExitCode) {
  ExitInfo info = run(shell("exit 3"));
  EXPECT_EQ(info.exit_code, std::optional<int>(3));
  EXPECT_FALSE(info.signal.has_value());
}

TEST_F(ProcessRunnerTest, ReportsTheSignalThatKilledTheLeader) {
  ExitInfo info = run(shell("kill -9 $$"));
  EXPECT_FALSE(info.exit_code.has_value());
  EXPECT_EQ(info.signal, std::optional<int>(SIGKILL));
}

TEST_F(ProcessRunnerTest, CapturesStdoutAndStderrByteExact) {
  // Every byte value, over several 64 KiB reads, on both streams.
  std::string out_bytes;
  for (int i = 0; i < 300000; ++i) out_bytes.push_back(static_cast<char>((i * 7 + i / 256) % 256));
  std::string err_bytes = "to stderr\n" + std::string("\0\xff\r\n", 4);
  std::ofstream(dir_.path() / "out.bin", std::ios::binary) << out_bytes;
  std::ofstream(dir_.path() / "err.bin", std::ios::binary) << err_bytes;

  LaunchSpec spec = shell("cat out.bin; cat err.bin >&2");
  spec.cwd = dir_.path().string();
  ExitInfo info = run(spec);
  EXPECT_EQ(info.exit_code, std::optional<int>(0));
  EXPECT_EQ(output(StreamKind::Stdout), out_bytes);
  EXPECT_EQ(output(StreamKind::Stderr), err_bytes);
  EXPECT_EQ(info.stdout_bytes, out_bytes.size());
  EXPECT_EQ(info.stderr_bytes, err_bytes.size());
  EXPECT_FALSE(info.stdout_capped);
  EXPECT_FALSE(info.stderr_capped);
}

TEST_F(ProcessRunnerTest, RunsInTheRequestedWorkingDirectory) {
  LaunchSpec spec = program({"pwd", "-P"});
  spec.cwd = dir_.path().string();
  ExitInfo info = run(spec);
  EXPECT_EQ(info.exit_code, std::optional<int>(0));
  EXPECT_EQ(output(StreamKind::Stdout), std::filesystem::canonical(dir_.path()).string() + "\n");
}

TEST_F(ProcessRunnerTest, PassesArgvAndEnvironmentAsGiven) {
  LaunchSpec spec = program({"/bin/sh", "-c", "printf '%s|%s|%s' \"$1\" \"$GREETING\" \"${HOME-unset}\"", "sh",
                             "two words"});
  spec.env.push_back("GREETING=hello there");
  run(spec);
  EXPECT_EQ(output(StreamKind::Stdout), "two words|hello there|unset");
}

class ProcessRunnerSmallCapTest : public ProcessRunnerTest {
 protected:
  ProcessRunnerSmallCapTest() : ProcessRunnerTest(1000) {}
};

TEST_F(ProcessRunnerSmallCapTest, KeepsTheCapAndAMarkerAndCountsEverything) {
  ExitInfo info = run(shell("head -c 5000 /dev/zero | tr '\\0' x; echo small >&2"));
  EXPECT_EQ(info.exit_code, std::optional<int>(0));
  EXPECT_EQ(output(StreamKind::Stdout), std::string(1000, 'x') + truncation_marker(1000));
  EXPECT_EQ(info.stdout_bytes, 5000u);
  EXPECT_TRUE(info.stdout_capped);
  EXPECT_EQ(output(StreamKind::Stderr), "small\n");
  EXPECT_EQ(info.stderr_bytes, 6u);
  EXPECT_FALSE(info.stderr_capped);
}

TEST_F(ProcessRunnerTest, ParsesProgressLinesAndKeepsThemInTheOutput) {
  const std::string script =
      "printf '::progress 1/3 compiling foo\\nplain line\\n::progress 2.5/3\\n::progress nope\\n"
      "  ::progress 9 indented\\n::progress 3/3 done'";
  ExitInfo info = run(shell(script));
  EXPECT_EQ(info.exit_code, std::optional<int>(0));
  std::vector<Progress> expected = {
      {1, 3, "compiling foo"},
      {2.5, 3, ""},
      {3, 3, "done"},  // the last line has no newline; EOF ends it
  };
  EXPECT_EQ(recorder_.progress(), expected);
  EXPECT_EQ(output(StreamKind::Stdout),
            "::progress 1/3 compiling foo\nplain line\n::progress 2.5/3\n::progress nope\n"
            "  ::progress 9 indented\n::progress 3/3 done");
}

TEST_F(ProcessRunnerTest, ProgressOnStderrIsOnlyOutput) {
  run(shell("echo '::progress 1/2' >&2"));
  EXPECT_TRUE(recorder_.progress().empty());
  EXPECT_EQ(output(StreamKind::Stderr), "::progress 1/2\n");
}

TEST_F(ProcessRunnerTest, AnOverlongLineIsNotAProgressLine) {
  // 10 KB on one line, split across reads; the next line still counts.
  run(shell("printf '::progress 1/2 '; head -c 10000 /dev/zero | tr '\\0' x; printf '\\n::progress 2/2\\n'"));
  std::vector<Progress> expected = {{2, 2, ""}};
  EXPECT_EQ(recorder_.progress(), expected);
}

TEST_F(ProcessRunnerTest, StdinComesFromTheGivenFile) {
  auto path = spool_.write_stdin("t1", "line one\nline two\n");
  ASSERT_TRUE(path.ok());
  LaunchSpec spec = program({"cat"});
  spec.stdin_path = *path;
  run(spec);
  EXPECT_EQ(output(StreamKind::Stdout), "line one\nline two\n");
}

TEST_F(ProcessRunnerTest, StdinDefaultsToDevNull) {
  // `cat` on an inherited terminal or pipe would wait for ever; /dev/null ends it at once.
  ExitInfo info = run(program({"cat"}));
  EXPECT_EQ(info.exit_code, std::optional<int>(0));
  run(program({"readlink", "/proc/self/fd/0"}, "t2"));
  EXPECT_EQ(output(StreamKind::Stdout, "t2"), "/dev/null\n");
}

TEST_F(ProcessRunnerTest, AMissingStdinFileIsAnError) {
  LaunchSpec spec = program({"cat"});
  spec.stdin_path = dir_.path() / "no-such-stdin";
  auto pid = runner_.start(spec, recorder_.callbacks());
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.error().message.find("no-such-stdin"), std::string::npos) << pid.error().message;
}

TEST_F(ProcessRunnerTest, AMissingProgramIsAnErrorAndNothingIsCalled) {
  auto pid = runner_.start(program({"no-such-program-xyz"}), recorder_.callbacks());
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.error().code, ErrorCode::NotFound);
  EXPECT_NE(pid.error().message.find("cannot start 'no-such-program-xyz'"), std::string::npos);
  EXPECT_NE(pid.error().message.find("not found in PATH=/usr/local/bin:/usr/bin:/bin"), std::string::npos)
      << pid.error().message;

  auto absolute = runner_.start(program({(dir_.path() / "missing").string()}), recorder_.callbacks());
  ASSERT_FALSE(absolute.ok());
  EXPECT_EQ(absolute.error().code, ErrorCode::NotFound);
  EXPECT_NE(absolute.error().message.find("No such file or directory"), std::string::npos)
      << absolute.error().message;

  // A real process that exits proves the reactor would have reported anything queued.
  run(shell("exit 0", "t2"));
  EXPECT_EQ(recorder_.exit_count(), 1u);
  EXPECT_TRUE(recorder_.progress().empty());
  EXPECT_EQ(runner_.running(), 0u);
}

TEST_F(ProcessRunnerTest, AFileThatIsNotExecutableIsAnError) {
  const auto script = dir_.path() / "script.sh";
  std::ofstream(script) << "#!/bin/sh\necho hi\n";
  ::chmod(script.c_str(), 0644);
  auto pid = runner_.start(program({script.string()}), recorder_.callbacks());
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.error().message.find("Permission denied"), std::string::npos) << pid.error().message;
  EXPECT_NE(pid.error().message.find("chmod +x"), std::string::npos) << pid.error().message;
}

TEST_F(ProcessRunnerTest, AMissingWorkingDirectoryIsAnError) {
  LaunchSpec spec = shell("exit 0");
  spec.cwd = (dir_.path() / "missing").string();
  auto pid = runner_.start(spec, recorder_.callbacks());
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.error().message, "working directory '" + spec.cwd + "' does not exist; create it or pass an existing cwd");

  std::ofstream(dir_.path() / "file") << "x";
  spec.cwd = (dir_.path() / "file").string();
  pid = runner_.start(spec, recorder_.callbacks());
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.error().message.find("is not a directory"), std::string::npos);
  EXPECT_EQ(recorder_.exit_count(), 0u);
}

TEST_F(ProcessRunnerTest, AnEmptyArgvIsAnError) {
  LaunchSpec spec = program({});
  auto pid = runner_.start(spec, recorder_.callbacks());
  ASSERT_FALSE(pid.ok());
  EXPECT_EQ(pid.error().code, ErrorCode::InvalidArgument);
}

TEST_F(ProcessRunnerTest, FindsProgramsThroughTheTasksOwnPath) {
  const auto bin = dir_.path() / "bin";
  std::filesystem::create_directories(bin);
  std::ofstream(bin / "mytool") << "#!/bin/sh\necho \"mytool says $1\"\n";
  ::chmod((bin / "mytool").c_str(), 0755);
  LaunchSpec spec = program({"mytool", "hi"});
  spec.env = {"PATH=" + bin.string() + ":/usr/bin:/bin"};
  ExitInfo info = run(spec);
  EXPECT_EQ(info.exit_code, std::optional<int>(0));
  EXPECT_EQ(output(StreamKind::Stdout), "mytool says hi\n");
}

TEST_F(ProcessRunnerTest, TerminateKillsTheWholeGroup) {
  pid_t pid = start(shell("sleep 300 & echo $!; wait"));
  const pid_t grandchild = std::stoi(first_line());
  ASSERT_TRUE(test::process_alive(grandchild));
  EXPECT_EQ(runner_.running(), 1u);

  runner_.terminate(pid, 10s);
  ASSERT_TRUE(recorder_.wait_for_exits(1));
  EXPECT_EQ(recorder_.exit_info().signal, std::optional<int>(SIGTERM));
  EXPECT_TRUE(gone(grandchild));
  EXPECT_TRUE(group_gone(pid));
  EXPECT_EQ(runner_.running(), 0u);
}

TEST_F(ProcessRunnerTest, TerminateEscalatesToSigkillAfterTheGrace) {
  pid_t pid = start(shell("trap '' TERM; echo ready; while :; do sleep 1; done"));
  ASSERT_EQ(first_line(), "ready");
  runner_.terminate(pid, 200ms);
  ASSERT_TRUE(recorder_.wait_for_exits(1));
  EXPECT_EQ(recorder_.exit_info().signal, std::optional<int>(SIGKILL));
  EXPECT_TRUE(group_gone(pid));
}

TEST_F(ProcessRunnerTest, TerminateOfAnUnknownPidDoesNothing) {
  runner_.terminate(999999, 0ms);
  ExitInfo info = run(shell("exit 0"));
  EXPECT_EQ(info.exit_code, std::optional<int>(0));
  runner_.terminate(999999, 10ms);
}

TEST_F(ProcessRunnerTest, BackgroundJobsDoNotOutliveTheirTask) {
  pid_t pid = start(shell("sleep 300 & echo $!"));
  const pid_t background = std::stoi(first_line());
  ASSERT_TRUE(recorder_.wait_for_exits(1));
  EXPECT_EQ(recorder_.exit_info().exit_code, std::optional<int>(0));
  EXPECT_TRUE(gone(background));
  EXPECT_TRUE(group_gone(pid));
}

class ProcessRunnerShortGraceTest : public ProcessRunnerTest {
 protected:
  ProcessRunnerShortGraceTest() : ProcessRunnerTest(kDefaultStreamCapBytes, runner_options(300ms)) {}
};

TEST_F(ProcessRunnerShortGraceTest, StragglersThatIgnoreSigtermAreKilled) {
  // The ignored SIGTERM is inherited; the background sleep holds stdout open.
  pid_t pid = start(shell("trap '' TERM; sleep 300 & echo $!"));
  const pid_t straggler = std::stoi(first_line());
  ASSERT_TRUE(recorder_.wait_for_exits(1));
  EXPECT_EQ(recorder_.exit_info().exit_code, std::optional<int>(0));
  EXPECT_TRUE(gone(straggler));
  EXPECT_TRUE(group_gone(pid));
}

TEST_F(ProcessRunnerShortGraceTest, StragglersWithoutPipesAreKilledAfterTheReport) {
  pid_t pid = start(shell("trap '' TERM; sleep 300 >/dev/null 2>&1 & echo $!"));
  const pid_t straggler = std::stoi(first_line());
  ASSERT_TRUE(recorder_.wait_for_exits(1));
  EXPECT_EQ(recorder_.exit_info().exit_code, std::optional<int>(0));
  EXPECT_TRUE(gone(straggler));
  EXPECT_TRUE(group_gone(pid));
}

TEST_F(ProcessRunnerShortGraceTest, PipesHeldOutsideTheGroupAreGivenUpOn) {
  // setsid takes the sleep out of the group, out of reach of kill(-pgid); the
  // fifo makes the leader wait until it has left, so the SIGTERM sent when the
  // leader exits cannot catch it early.
  LaunchSpec spec = shell("mkfifo left; setsid sh -c 'echo $$ > left; exec sleep 300' & read p < left; echo $p");
  spec.cwd = dir_.path().string();
  start(spec);
  const pid_t escaped = std::stoi(first_line());
  const bool reported = recorder_.wait_for_exits(1);
  const bool still_alive = test::process_alive(escaped);
  ::kill(escaped, SIGKILL);
  ASSERT_TRUE(reported);
  EXPECT_EQ(recorder_.exit_info().exit_code, std::optional<int>(0));
#ifdef ORCH_KEEPER_BINARY
  // The keeper is a child subreaper: it inherits the escaped sleep and stops
  // it before it reports the end, so the pipes close with it.
  EXPECT_FALSE(still_alive);
#else
  EXPECT_TRUE(still_alive);
#endif
  EXPECT_TRUE(gone(escaped));
}

// Reports per task index, from the reactor thread.
struct Tally {
  std::mutex mu;
  std::map<int, std::vector<int>> exit_codes;  // task index → codes reported for it

  std::size_t reported() {
    std::lock_guard lock(mu);
    return exit_codes.size();
  }

  ProcessCallbacks callbacks(int index) {
    return {nullptr, [this, index](const ExitInfo& info) {
              std::lock_guard lock(mu);
              exit_codes[index].push_back(info.exit_code.value_or(-1));
            }};
  }
};

TEST_F(ProcessRunnerTest, OneReactorReportsManyConcurrentProcessesOnceEach) {
  constexpr int kCount = 200;
  Tally tally;
  std::set<pid_t> pids;
  for (int i = 0; i < kCount; ++i) {
    auto pid = runner_.start(program({"sleep", "0.2"}, "t" + std::to_string(i)), tally.callbacks(i));
    ASSERT_TRUE(pid.ok()) << pid.error().message;
    pids.insert(*pid);
  }
  EXPECT_EQ(pids.size(), static_cast<std::size_t>(kCount));
  ASSERT_TRUE(test::wait_until([&] { return tally.reported() == static_cast<std::size_t>(kCount); }, std::chrono::seconds(60)));
  EXPECT_EQ(runner_.running(), 0u);
  std::lock_guard lock(tally.mu);
  ASSERT_EQ(tally.exit_codes.size(), static_cast<std::size_t>(kCount));
  for (const auto& [index, codes] : tally.exit_codes) EXPECT_EQ(codes, std::vector<int>{0}) << "task " << index;
}

TEST_F(ProcessRunnerTest, ReportsEachTaskOnceWithItsOwnExitCode) {
  constexpr int kCount = 50;
  Tally tally;
  for (int i = 0; i < kCount; ++i) {
    auto pid = runner_.start(shell("exit " + std::to_string(i % 7), "t" + std::to_string(i)), tally.callbacks(i));
    ASSERT_TRUE(pid.ok()) << pid.error().message;
  }
  ASSERT_TRUE(test::wait_until([&] { return tally.reported() == static_cast<std::size_t>(kCount); }, std::chrono::seconds(60)));
  EXPECT_EQ(runner_.running(), 0u);
  std::lock_guard lock(tally.mu);
  ASSERT_EQ(tally.exit_codes.size(), static_cast<std::size_t>(kCount));
  for (const auto& [index, codes] : tally.exit_codes) EXPECT_EQ(codes, std::vector<int>{index % 7}) << "task " << index;
}

TEST_F(ProcessRunnerTest, ReportsPeakRssOfTheTaskAndWhatItWaitedFor) {
  // sort keeps its one 30 MB line in memory; the shell reaps sort, so it counts.
  ExitInfo info = run(shell("head -c 30000000 /dev/zero | sort >/dev/null"));
  EXPECT_EQ(info.exit_code, std::optional<int>(0));
  EXPECT_GT(info.peak_rss_kb, 20000);
}

TEST_F(ProcessRunnerTest, ReportsWallTime) {
  ExitInfo info = run(program({"sleep", "0.3"}));
  EXPECT_GE(info.duration_ms, 250);
  EXPECT_LT(info.duration_ms, 20000);
}

TEST_F(ProcessRunnerTest, LiveBytesCountWhileRunningAndEndWithTheTask) {
  pid_t pid = start(shell("printf 'abc\\n'; printf 'de' >&2; exec sleep 300"));
  using Bytes = std::optional<std::pair<std::uint64_t, std::uint64_t>>;
  EXPECT_TRUE(test::wait_until([&] { return runner_.live_bytes(pid) == Bytes(std::pair(4u, 2u)); }, kDeadline));
  runner_.terminate(pid, 10s);
  ASSERT_TRUE(recorder_.wait_for_exits(1));
  EXPECT_EQ(runner_.live_bytes(pid), std::nullopt);
  EXPECT_EQ(recorder_.exit_info().stdout_bytes, 4u);
  EXPECT_EQ(recorder_.exit_info().stderr_bytes, 2u);
}

TEST_F(ProcessRunnerTest, KillAllKillsEveryGroup) {
  std::vector<pid_t> pids;
  for (int i = 0; i < 3; ++i) pids.push_back(start(shell("sleep 300 & wait", "t" + std::to_string(i))));
  ASSERT_TRUE(test::wait_until(
      [&] {
        for (pid_t pid : pids) if (test::processes_in_group(pid).size() < 2) return false;
        return true;
      },
      kDeadline));
  runner_.kill_all();
  ASSERT_TRUE(recorder_.wait_for_exits(3));
  for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(recorder_.exit_info(i).signal, std::optional<int>(SIGKILL));
  for (pid_t pid : pids) EXPECT_TRUE(group_gone(pid));
}

// Without a keeper host there is nothing to hand a start to; with one, a
// spec that start() would refuse is left to start(), which says why.
TEST_F(ProcessRunnerTest, StartSoonTakesOnlyWhatTheKeeperHostCanStart) {
  auto never = [](Result<pid_t>) { ADD_FAILURE() << "started was called"; };
  LaunchSpec nowhere = shell("true", "nowhere");
  nowhere.cwd = (dir_.path() / "no-such-dir").string();
  EXPECT_FALSE(runner_.start_soon(nowhere, recorder_.callbacks(), never));
  auto pid = runner_.start(nowhere, recorder_.callbacks());
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.error().message.find("no-such-dir"), std::string::npos) << pid.error().message;
#if !defined(ORCH_KEEPER_BINARY) || defined(ORCH_KEEPER_SPAWNED)
  EXPECT_FALSE(runner_.start_soon(shell("true", "plain"), recorder_.callbacks(), never));
#endif
  EXPECT_EQ(recorder_.exit_count(), 0u);
}

TEST_F(ProcessRunnerTest, CallbacksMayStartTheNextProcess) {
  Recorder second;
  std::atomic<bool> started_next{false};
  auto first = runner_.start(shell("exit 0"),
                             {nullptr, [&](const ExitInfo&) {
                                started_next = runner_.start(shell("exit 5", "t2"), second.callbacks()).ok();
                              }});
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(second.wait_for_exits(1));
  EXPECT_TRUE(started_next);
  EXPECT_EQ(second.exit_info().exit_code, std::optional<int>(5));
}

TEST_F(ProcessRunnerTest, ChildrenStartWithDefaultSignalsAndAnEmptyMask) {
  // What a server typically does to itself; none of it may reach a task.
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_pipe {}, old_term {};
  ::sigaction(SIGPIPE, &ignore, &old_pipe);
  ::sigaction(SIGTERM, &ignore, &old_term);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  ::pthread_sigmask(SIG_BLOCK, &block, &old_mask);

  pid_t pid = start(program({"grep", "-E", "^Sig(Ign|Blk)", "/proc/self/status"}));

  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  ::sigaction(SIGTERM, &old_term, nullptr);
  ASSERT_GT(pid, 0);
  ASSERT_TRUE(recorder_.wait_for_exits(1));
  const std::string out = output(StreamKind::Stdout);
  ASSERT_EQ(out.substr(0, 8), "SigBlk:\t") << out;
  EXPECT_EQ(std::stoull(out.substr(8, 16), nullptr, 16), 0u) << out;
  const auto ignored_at = out.find("SigIgn:\t");
  ASSERT_NE(ignored_at, std::string::npos) << out;
  // Bits 0..30 are signals 1..31. glibc's posix_spawn leaves its two internal
  // signals (32, 33) ignored in the child, and no public call can reset them.
  const auto ignored = std::stoull(out.substr(ignored_at + 8, 16), nullptr, 16);
  EXPECT_EQ(ignored & 0x7fffffffull, 0u) << out;
}

TEST_F(ProcessRunnerTest, ChildrenInheritOnlyStdio) {
  UniqueFd leak(::open("/dev/null", O_RDONLY));  // not close-on-exec
  ASSERT_TRUE(leak);
  run(program({"ls", "/proc/self/fd"}));
  EXPECT_EQ(output(StreamKind::Stdout), "0\n1\n2\n3\n");  // 3: the directory ls reads
}

TEST_F(ProcessRunnerTest, EachProcessLeadsItsOwnGroup) {
  // Field 5 of /proc/<pid>/stat is the process group ("sh" has no space in its name).
  pid_t pid = start(shell("cut -d' ' -f5 /proc/$$/stat"));
  ASSERT_TRUE(recorder_.wait_for_exits(1));
  EXPECT_EQ(std::stoi(output(StreamKind::Stdout)), pid);
  EXPECT_NE(pid, ::getpgrp());
}

TEST(ProcessRunner, DestructionKillsAndReapsWithoutReporting) {
  test::TempDir dir;
  Spool spool(dir.path());
  Recorder recorder;
  pid_t pid = 0;
  pid_t grandchild = 0;
  {
    ProcessRunner runner(spool, {});
    auto started = runner.start(shell("sleep 300 & echo $!; wait"), recorder.callbacks());
    ASSERT_TRUE(started.ok());
    pid = *started;
    ASSERT_TRUE(test::wait_until([&] { return slurp(spool.path("t1", StreamKind::Stdout)).find('\n') != std::string::npos; },
                                 kDeadline));
    grandchild = std::stoi(slurp(spool.path("t1", StreamKind::Stdout)));
  }
  // Reaped by the destructor: not even a zombie is left.
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(pid)));
  EXPECT_TRUE(test::wait_until([&] { return !test::process_alive(grandchild); }, kDeadline));
  EXPECT_EQ(recorder.exit_count(), 0u);
}

#ifdef ORCH_KEEPER_BINARY
// Keepers record their ends in the spool's status log (engine/task_keeper.h).
// It is rotated as it grows, and a rotated log stays as long as a process
// that may have written to it is not reported: after a crash, its record
// would be the only account of its end.
TEST(ProcessRunnerKeeper, TheStatusLogIsRotatedAndARotatedLogStaysWhileAProcessMayNeedIt) {
  test::TempDir dir;
  Spool spool(dir.path() / "spool");
  ProcessRunner::Options options = runner_options();
  options.status_log_rotate_bytes = 1;  // every start rotates a log with a record in it
  options.status_log_check_every = 1;
  auto log = [&](int n) {
    auto path = spool.dir() / kKeeperStatusLog;
    if (n > 0) path += "." + std::to_string(n);
    return path;
  };
  Recorder recorder;
  {
    ProcessRunner runner(spool, options);
    auto run = [&](const std::string& script, const TaskId& id) {
      const std::size_t before = recorder.exit_count();
      ASSERT_TRUE(runner.start(shell(script, id), recorder.callbacks()).ok());
      ASSERT_TRUE(recorder.wait_for_exits(before + 1));
    };
    auto slow = runner.start(shell("sleep 300", "slow"), recorder.callbacks());
    ASSERT_TRUE(slow.ok());
    run("exit 7", "t1");
    auto t1 = read_keeper_status(spool.dir(), "t1", 0);
    ASSERT_TRUE(t1);
    EXPECT_EQ(t1->value, 7);
    run("exit 0", "t2");  // rotates t1's record into exits.log.1
    EXPECT_TRUE(std::filesystem::exists(log(1)));
    EXPECT_TRUE(read_keeper_status(spool.dir(), "t1", 0)) << "a rotated log is read too";
    run("exit 0", "t3");  // rotates again; "slow" started before exits.log.1 was rotated
    EXPECT_TRUE(std::filesystem::exists(log(1))) << "slow may still write to it";
    EXPECT_TRUE(std::filesystem::exists(log(2)));
    runner.terminate(*slow, 10s);  // SIGTERM: the keeper outlives its command and records it
    ASSERT_TRUE(recorder.wait_for_exits(4));
    run("exit 0", "t4");
    EXPECT_FALSE(std::filesystem::exists(log(1))) << "every process that could write to it is reported";
    EXPECT_FALSE(std::filesystem::exists(log(2)));
    EXPECT_TRUE(std::filesystem::exists(log(3)));
    EXPECT_TRUE(read_keeper_status(spool.dir(), "slow", 0)) << "its end went to the log current then";
  }
  // A later runner numbers on from the logs it finds.
  ProcessRunner next(spool, options);
  ASSERT_TRUE(next.start(shell("exit 0", "t5"), recorder.callbacks()).ok());
  ASSERT_TRUE(recorder.wait_for_exits(6));
  ASSERT_TRUE(next.start(shell("exit 0", "t6"), recorder.callbacks()).ok());
  ASSERT_TRUE(recorder.wait_for_exits(7));
  EXPECT_FALSE(std::filesystem::exists(log(3))) << "nothing adopted needs an earlier server's logs";
  EXPECT_FALSE(std::filesystem::exists(log(4)));
  EXPECT_TRUE(std::filesystem::exists(log(5)));
}
#endif

TEST_F(ProcessRunnerTest, ATaskWithoutACwdRunsInTheRunnersDirectoryAndARelativeOneFromThere) {
  const std::filesystem::path here = std::filesystem::current_path();
  EXPECT_EQ(run(shell("pwd -P", "t1")).exit_code, std::optional<int>(0));
  EXPECT_EQ(output(StreamKind::Stdout, "t1"), std::filesystem::canonical(here).string() + "\n");
  const std::filesystem::path sub = dir_.path() / "sub";
  std::filesystem::create_directories(sub);
  LaunchSpec relative = shell("pwd -P", "t2");
  relative.cwd = std::filesystem::relative(sub, here).string();
  EXPECT_EQ(run(relative).exit_code, std::optional<int>(0));
  EXPECT_EQ(output(StreamKind::Stdout, "t2"), std::filesystem::canonical(sub).string() + "\n");
}

#if defined(ORCH_KEEPER_BINARY) && !defined(ORCH_KEEPER_SPAWNED) && defined(__linux__)
// The keeper host (engine/keeper_host.h): a child of this process, found by
// its command line.
std::optional<pid_t> keeper_host_child() {
  for (pid_t pid : test::children_of(::getpid())) {
    if (test::process_cmdline(pid).find(std::string("\0--host\0", 8)) != std::string::npos) return pid;
  }
  return std::nullopt;
}

pid_t parent_of(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text;
  std::getline(in, text);
  std::istringstream rest(text.substr(text.rfind(')') + 2));
  char state = 0;
  pid_t ppid = 0;
  rest >> state >> ppid;
  return ppid;
}

TEST_F(ProcessRunnerTest, AKeeperForkedByTheHostIsTheRunnersChildAndShowsItsOwnCommandLine) {
  const pid_t pid = start(shell("sleep 300", "tk"));
  ASSERT_GT(pid, 0);
  EXPECT_EQ(parent_of(pid), ::getpid()) << "CLONE_PARENT: the keeper is ours, not the host's";
  EXPECT_EQ(::getpgid(pid), pid) << "it leads the task's group";
  EXPECT_TRUE(is_keeper_of(test::process_cmdline(pid), "tk")) << "a new server finds it by its command line";
  EXPECT_FALSE(is_keeper_of(test::process_cmdline(pid), "t1"));
  auto host = keeper_host_child();
  ASSERT_TRUE(host);
  EXPECT_NE(*host, pid);
  EXPECT_FALSE(is_keeper_of(test::process_cmdline(*host), "tk")) << "the host itself is no task's keeper";
  runner_.terminate(pid, 10s);
  ASSERT_TRUE(recorder_.wait_for_exits(1));
  EXPECT_EQ(recorder_.exit_info().signal, std::optional<int>(SIGTERM));
}

TEST_F(ProcessRunnerTest, WhenTheKeeperHostIsGoneKeepersAreSpawnedAndTasksStillRun) {
  EXPECT_EQ(run(shell("echo first", "t0")).exit_code, std::optional<int>(0));
  auto host = keeper_host_child();
  ASSERT_TRUE(host);
  ASSERT_EQ(::kill(*host, SIGKILL), 0);
  for (int i = 1; i <= 3; ++i) {
    const TaskId id = "t" + std::to_string(i);
    ExitInfo info = run(shell("echo again " + std::to_string(i), id));
    EXPECT_EQ(info.exit_code, std::optional<int>(0)) << id;
    EXPECT_EQ(output(StreamKind::Stdout, id), "again " + std::to_string(i) + "\n");
  }
}

// start_soon: the reactor reads the keeper's report and says how the start
// went, before anything else of the process.
TEST_F(ProcessRunnerTest, StartSoonReportsThePidFromTheReactorBeforeTheEnd) {
  struct Seen {
    std::mutex mu;
    std::vector<std::string> events;
    std::optional<std::thread::id> started_on;
    Result<pid_t> pid = make_error(ErrorCode::Internal, "not reported");
  };
  auto seen = std::make_shared<Seen>();
  ProcessCallbacks callbacks;
  callbacks.on_exit = [seen](const ExitInfo&) {
    std::lock_guard lock(seen->mu);
    seen->events.push_back("exit");
  };
  auto started = [seen](Result<pid_t> pid) {
    std::lock_guard lock(seen->mu);
    seen->events.push_back("started");
    seen->started_on = std::this_thread::get_id();
    seen->pid = std::move(pid);
  };
  ASSERT_TRUE(runner_.start_soon(shell("exit 3", "soon"), callbacks, started)) << "the keeper host takes a plain start";
  ASSERT_TRUE(test::wait_until(
      [&] {
        std::lock_guard lock(seen->mu);
        return seen->events.size() == 2;
      },
      kDeadline));
  std::lock_guard lock(seen->mu);
  EXPECT_EQ(seen->events, (std::vector<std::string>{"started", "exit"}));
  ASSERT_TRUE(seen->pid.ok()) << seen->pid.error().message;
  EXPECT_GT(*seen->pid, 0);
  EXPECT_TRUE(seen->started_on && *seen->started_on != std::this_thread::get_id()) << "reported by the reactor";
}

// The host takes a request (it sits in the stopped host's socket) and dies
// before reading it: the report ends with no record, and the reactor spawns
// the keeper from the descriptors it kept. Later starts skip the host.
TEST_F(ProcessRunnerTest, AStartWhoseHostDiesWithTheRequestIsSpawnedInstead) {
  EXPECT_EQ(run(shell("true", "t0")).exit_code, std::optional<int>(0));
  auto host = keeper_host_child();
  ASSERT_TRUE(host);
  ASSERT_EQ(::kill(*host, SIGSTOP), 0);
  auto result = std::make_shared<std::promise<Result<pid_t>>>();
  auto future = result->get_future();
  ASSERT_TRUE(runner_.start_soon(shell("echo spawned; exit 4", "t1"), recorder_.callbacks(),
                                 [result](Result<pid_t> pid) { result->set_value(std::move(pid)); }))
      << "the stopped host's socket still takes the request";
  ASSERT_EQ(::kill(*host, SIGKILL), 0);
  ASSERT_EQ(future.wait_for(kDeadline), std::future_status::ready);
  auto pid = future.get();
  ASSERT_TRUE(pid.ok()) << pid.error().message;
  ASSERT_TRUE(recorder_.wait_for_exits(2));
  EXPECT_EQ(recorder_.exit_info(1).exit_code, std::optional<int>(4));
  EXPECT_EQ(output(StreamKind::Stdout, "t1"), "spawned\n");
  EXPECT_FALSE(runner_.start_soon(shell("true", "t2"), recorder_.callbacks(), [](Result<pid_t>) {}))
      << "the host is known to be gone";
}

TEST_F(ProcessRunnerTest, ACommandLineTooLongForTheHostsAreaIsSpawnedAndRuns) {
  LaunchSpec spec = program({"/bin/sh", "-c", "echo ${#1}", "sh", std::string(40000, 'x')}, "long");
  EXPECT_EQ(run(spec).exit_code, std::optional<int>(0));
  EXPECT_EQ(output(StreamKind::Stdout, "long"), "40000\n");
}

TEST(ProcessRunnerKeeperHost, HandOverAndTheDestructorStopAndReapTheHost) {
  test::TempDir dir;
  Spool spool(dir.path() / "spool");
  Recorder recorder;
  pid_t host = 0;
  {
    ProcessRunner runner(spool, runner_options());
    EXPECT_FALSE(keeper_host_child()) << "started with the first kept task, not before";
    ASSERT_TRUE(runner.start(shell("true"), recorder.callbacks()).ok());
    ASSERT_TRUE(recorder.wait_for_exits(1));
    auto found = keeper_host_child();
    ASSERT_TRUE(found);
    host = *found;
    EXPECT_TRUE(runner.hand_over().empty());
    EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(host))) << "stopped and reaped, not a zombie";
  }
  {
    ProcessRunner runner(spool, runner_options());
    ASSERT_TRUE(runner.start(shell("true"), recorder.callbacks()).ok());
    ASSERT_TRUE(recorder.wait_for_exits(2));
    auto found = keeper_host_child();
    ASSERT_TRUE(found);
    host = *found;
  }
  EXPECT_FALSE(std::filesystem::exists("/proc/" + std::to_string(host)));
}
#endif

TEST(ProcessRunnerKeeper, AKeeperThatEndsWithoutReportingIsAnErrorNotARun) {
  test::TempDir dir;
  Spool spool(dir.path() / "spool");
  ProcessRunner::Options options;
  options.keeper_path = "/bin/true";  // exits at once, never writes the report
  ProcessRunner runner(spool, options);
  Recorder recorder;
  auto pid = runner.start(shell("echo never"), recorder.callbacks());
  ASSERT_FALSE(pid.ok());
  EXPECT_NE(pid.error().message.find("ended before starting the task"), std::string::npos) << pid.error().message;
  EXPECT_EQ(runner.running(), 0u);
  EXPECT_EQ(recorder.exit_count(), 0u);
}

TEST_F(ProcessRunnerTest, AdoptingAPidThatIsNoTasksKeeperIsRefused) {
  pid_t pid = start(shell("sleep 300", "t2"));
  auto adopted = runner_.adopt_orphan(pid, "t1", 1, recorder_.callbacks());
  ASSERT_FALSE(adopted.ok());
  EXPECT_EQ(adopted.error().code, ErrorCode::NotFound);
  EXPECT_FALSE(runner_.adopt_orphan(999999999, "t1", 1, recorder_.callbacks()).ok());
  runner_.terminate(pid, 0ms);
  ASSERT_TRUE(recorder_.wait_for_exits(1));
  EXPECT_EQ(recorder_.exit_count(), 1u) << "a refused adoption reports nothing";
}

// --- hand-over (restart in place) ------------------------------------------

// A second runner (standing in for the next image) takes over a process the
// first one handed over: output written while nobody watched is kept, the
// counters go on, and the real exit code is reported.
TEST(ProcessRunnerHandOver, AnotherRunnerWatchesTheProcessToItsEnd) {
  test::TempDir dir;
  Spool spool(dir.path() / "spool");
  std::vector<RunningProcess> handed;
  Lifeline lifeline;  // with a keeper: the next runner must hold it, or the keeper takes over the pipes
  const std::string fifo = (dir.path() / "go").string();
  ASSERT_EQ(::mkfifo(fifo.c_str(), 0600), 0);
  {
    ProcessRunner first(spool, runner_options());
    Recorder unused;
    // Prints one line, waits for the test, prints more, exits 5.
    auto pid = first.start(shell("echo one; read x < " + fifo + "; echo two; echo ::progress 2/2; echo err >&2; exit 5"),
                           unused.callbacks());
    ASSERT_TRUE(pid.ok()) << pid.error().message;
    ASSERT_TRUE(test::wait_until([&] { return first.live_bytes(*pid) && first.live_bytes(*pid)->first == 4; }, kDeadline));
    handed = first.hand_over();
    lifeline = first.release_lifeline();
    EXPECT_EQ(first.running(), 0u);
    EXPECT_FALSE(first.start(shell("true"), unused.callbacks()).ok()) << "a runner that handed over starts nothing";
  }  // the first runner is gone and did not kill the process
  ASSERT_EQ(handed.size(), 1u);
  const RunningProcess& p = handed.front();
  EXPECT_EQ(p.task_id, "t1");
  EXPECT_EQ(p.stdout_progress.total_bytes, 4u);
  EXPECT_GE(p.fd("stdout"), 0);
  EXPECT_GE(p.fd("stderr"), 0);
  EXPECT_GE(p.fd("exit"), 0);
  EXPECT_TRUE(test::process_alive(p.pid));

  {
    std::ofstream(fifo) << "go\n";  // it prints the rest while nobody watches
  }
  ProcessRunner::Options next = runner_options();
  next.inherited_lifeline = lifeline;
  ProcessRunner second(spool, next);
  Recorder recorder;
  ASSERT_TRUE(second.adopt(p, recorder.callbacks()).ok());
  ASSERT_TRUE(recorder.wait_for_exits(1));
  ExitInfo info = recorder.exit_info();
  EXPECT_EQ(info.exit_code, 5) << "an orphaned keeper would have ended its group with SIGKILL";
  EXPECT_EQ(info.stdout_bytes, 4u + 4u + 15u);
  EXPECT_EQ(info.stderr_bytes, 4u);
  EXPECT_EQ(slurp(spool.path("t1", StreamKind::Stdout)), "one\ntwo\n::progress 2/2\n");
  EXPECT_EQ(slurp(spool.path("t1", StreamKind::Stderr)), "err\n");
  ASSERT_FALSE(recorder.progress().empty());
  EXPECT_EQ(recorder.progress().back().current, 2);
}

TEST(ProcessRunnerHandOver, AdoptingWithoutItsSpoolStopsAndReapsTheProcess) {
  test::TempDir dir;
  Spool spool(dir.path() / "spool");
  std::vector<RunningProcess> handed;
  {
    ProcessRunner first(spool, {});
    Recorder unused;
    ASSERT_TRUE(first.start(shell("sleep 300"), unused.callbacks()).ok());
    handed = first.hand_over();
  }
  ASSERT_EQ(handed.size(), 1u);
  RunningProcess p = handed.front();
  p.task_id = "..";  // cannot name a spool directory
  ProcessRunner second(spool, {});
  Recorder recorder;
  auto adopted = second.adopt(p, recorder.callbacks());
  EXPECT_FALSE(adopted.ok());
  EXPECT_FALSE(test::process_alive(p.pid)) << "killed and reaped, not left unwatched";
}

}  // namespace
}  // namespace orch::engine
