#include "engine/platform.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/wait_until.h"

namespace orch::engine::platform {
namespace {

// Spawns `argv` as a plain child of the test; the caller reaps it.
pid_t spawn(std::vector<const char*> argv) {
  argv.push_back(nullptr);
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, argv[0], nullptr, nullptr, const_cast<char* const*>(argv.data()), environ);
  EXPECT_EQ(rc, 0) << std::strerror(rc);
  return pid;
}

bool readable(int fd, int timeout_ms) {
  pollfd pfd{fd, POLLIN, 0};
  return ::poll(&pfd, 1, timeout_ms) == 1 && (pfd.revents & POLLIN);
}

TEST(Platform, ReportsThisProcesssResidentMemory) {
  const std::int64_t rss = current_rss_kb();
  const std::int64_t peak = peak_rss_kb();
  EXPECT_GT(rss, 0);
  // The high-water mark never falls, so a later peak covers an earlier RSS.
  EXPECT_GE(peak, rss);
}

TEST(Platform, ResidentMemoryAgreesWithProcSelfStatus) {
  std::ifstream status("/proc/self/status");
  std::int64_t vm_rss = -1, vm_hwm = -1;
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) vm_rss = std::stoll(line.substr(6));
    if (line.rfind("VmHWM:", 0) == 0) vm_hwm = std::stoll(line.substr(6));
  }
  ASSERT_GT(vm_rss, 0);
  // Read a moment apart, so allow the few pages the test itself touches between.
  EXPECT_NEAR(static_cast<double>(current_rss_kb()), static_cast<double>(vm_rss), 1024.0);
  EXPECT_NEAR(static_cast<double>(peak_rss_kb()), static_cast<double>(vm_hwm), 1024.0);
}

TEST(Platform, PeakRssRisesWhenMemoryIsTouched) {
  constexpr std::size_t kBytes = 64u << 20;
  std::vector<char> block(kBytes);
  // Touch every page so it is resident, and keep the compiler from eliding it.
  for (std::size_t i = 0; i < kBytes; i += 4096) block[i] = static_cast<char>(i);
  volatile char sink = block[kBytes / 2];
  (void)sink;
  EXPECT_GE(peak_rss_kb(), static_cast<std::int64_t>(kBytes / 1024));
}

TEST(Platform, TheRecentPeakCatchesUpWithinHalfASecond) {
  const std::int64_t first = recent_peak_rss_kb();
  EXPECT_GT(first, 0);
  EXPECT_LE(first, peak_rss_kb());  // the mark never falls, so the exact one is at least as high
  constexpr std::size_t kBytes = 96u << 20;
  std::vector<char> block(kBytes);
  for (std::size_t i = 0; i < kBytes; i += 4096) block[i] = static_cast<char>(i);
  volatile char sink = block[kBytes / 2];
  (void)sink;
  const std::int64_t exact = peak_rss_kb();
  ASSERT_GE(exact, static_cast<std::int64_t>(kBytes / 1024));
  // Within its 500 ms the reading may be the old one; after it, the new mark.
  EXPECT_TRUE(orch::test::wait_until([&] { return recent_peak_rss_kb() >= exact; }, std::chrono::seconds(5)));
}

// Sanitizers bring their own allocator, which glibc's malloc_trim and
// mallopt do not reach.
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
constexpr bool kGlibcAllocator = false;
#else
constexpr bool kGlibcAllocator = true;
#endif

TEST(Platform, ReleasingFreeMemoryLowersTheResidentSet) {
  if (!kGlibcAllocator) GTEST_SKIP() << "the sanitizer's allocator is not glibc's";
  // Small blocks come from the heap, not mmap; freeing all but the last
  // leaves their pages free inside the heap, held below a block in use, so
  // only a trim can hand them back.
  constexpr std::size_t kBlock = 16u << 10, kCount = 4096;  // 64 MiB
  std::vector<char*> blocks;
  for (std::size_t i = 0; i < kCount; ++i) {
    char* p = static_cast<char*>(std::malloc(kBlock));
    ASSERT_NE(p, nullptr);
    std::memset(p, 1, kBlock);
    blocks.push_back(p);
  }
  for (std::size_t i = 0; i + 1 < kCount; ++i) std::free(blocks[i]);
  const std::int64_t held = current_rss_kb();
  release_free_memory();
  const std::int64_t released = current_rss_kb();
  std::free(blocks.back());
  EXPECT_LT(released, held - 32 * 1024) << "held " << held << " KiB, after the trim " << released << " KiB";
}

TEST(Platform, TheAllocatorTakesAnArenaLimit) {
  if (!kGlibcAllocator) GTEST_SKIP() << "the sanitizer's allocator is not glibc's";
  EXPECT_TRUE(limit_allocator_arenas(8));
}

TEST(Platform, TheAllocatorKeepsFreedBlocksUpToAThreshold) {
  if (!kGlibcAllocator) GTEST_SKIP() << "the sanitizer's allocator is not glibc's";
  ASSERT_TRUE(keep_freed_blocks_up_to(8u << 20));
  release_free_memory();
  const std::int64_t before = current_rss_kb();
  // A 4 MiB block, freed, stays resident for the next one...
  constexpr std::size_t kBlock = 4u << 20;
  void* block = std::malloc(kBlock);
  ASSERT_NE(block, nullptr);
  std::memset(block, 1, kBlock);
  std::free(block);
  const std::int64_t kept = current_rss_kb();
  EXPECT_GT(kept, before + 3 * 1024) << "before " << before << " KiB, after the free " << kept << " KiB";
  // ...until the trim hands it back.
  release_free_memory();
  const std::int64_t trimmed = current_rss_kb();
  EXPECT_LT(trimmed, kept - 3 * 1024) << "kept " << kept << " KiB, after the trim " << trimmed << " KiB";
}

TEST(Platform, ReportsSystemAvailableMemory) {
  EXPECT_GT(mem_available_kb(), 0);
}

TEST(Platform, ExitWatchTurnsReadableOnlyOnceTheChildExits) {
  pid_t pid = spawn({"/bin/sleep", "300"});
  auto watch = open_exit_watch(pid);
  ASSERT_TRUE(watch.ok()) << watch.error().message;
  EXPECT_FALSE(readable(watch->get(), 0));
  ASSERT_EQ(::kill(pid, SIGKILL), 0);
  EXPECT_TRUE(readable(watch->get(), 10000));
  // The watch does not reap: the exit status is still ours to collect.
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, WNOHANG), pid);
  EXPECT_TRUE(WIFSIGNALED(status));
  EXPECT_EQ(WTERMSIG(status), SIGKILL);
}

TEST(Platform, PipeEndsAreCloseOnExec) {
  auto pipe = make_pipe();
  ASSERT_TRUE(pipe.ok()) << pipe.error().message;
  EXPECT_TRUE(::fcntl(pipe->first.get(), F_GETFD) & FD_CLOEXEC);
  EXPECT_TRUE(::fcntl(pipe->second.get(), F_GETFD) & FD_CLOEXEC);
  ASSERT_EQ(::write(pipe->second.get(), "x", 1), 1);
  char c = 0;
  ASSERT_EQ(::read(pipe->first.get(), &c, 1), 1);
  EXPECT_EQ(c, 'x');
}

TEST(Platform, SpawnedChildInheritsNoExtraDescriptors) {
  // Not close-on-exec, far above stdio: without the close action it would leak.
  UniqueFd leak(::open("/dev/null", O_RDONLY));
  ASSERT_TRUE(leak);
  UniqueFd high(::fcntl(leak.get(), F_DUPFD, 100));
  ASSERT_TRUE(high);
  auto pipe = make_pipe();
  ASSERT_TRUE(pipe.ok());

  posix_spawn_file_actions_t actions;
  posix_spawnattr_t attr;
  ASSERT_EQ(::posix_spawn_file_actions_init(&actions), 0);
  ASSERT_EQ(::posix_spawnattr_init(&attr), 0);
  ASSERT_EQ(::posix_spawn_file_actions_adddup2(&actions, pipe->second.get(), STDOUT_FILENO), 0);
  ASSERT_EQ(close_inherited_fds(&actions, &attr), 0);
  // `ls` lists its own fds: 0-2 and the directory it reads (3).
  const char* argv[] = {"/bin/ls", "/proc/self/fd", nullptr};
  pid_t pid = 0;
  int rc = ::posix_spawn(&pid, argv[0], &actions, &attr, const_cast<char* const*>(argv), environ);
  ::posix_spawn_file_actions_destroy(&actions);
  ::posix_spawnattr_destroy(&attr);
  ASSERT_EQ(rc, 0) << std::strerror(rc);
  pipe->second.reset();

  std::string out;
  char buf[256];
  for (ssize_t n; (n = ::read(pipe->first.get(), buf, sizeof buf)) > 0;) out.append(buf, static_cast<std::size_t>(n));
  int status = 0;
  ASSERT_EQ(::waitpid(pid, &status, 0), pid);
  EXPECT_EQ(out, "0\n1\n2\n3\n");
}

TEST(PlatformPoller, ReportsTheKeyOfAReadableDescriptor) {
  auto poller = Poller::create();
  ASSERT_TRUE(poller.ok()) << poller.error().message;
  auto pipe = make_pipe();
  ASSERT_TRUE(pipe.ok());
  ASSERT_TRUE((*poller)->add(pipe->first.get(), 42).ok());

  std::array<std::uint64_t, 8> keys{};
  EXPECT_EQ((*poller)->wait(keys, 0), 0u);
  ASSERT_EQ(::write(pipe->second.get(), "x", 1), 1);
  ASSERT_EQ((*poller)->wait(keys, 10000), 1u);
  EXPECT_EQ(keys[0], 42u);
  // Level-triggered: still reported until the data is read.
  ASSERT_EQ((*poller)->wait(keys, 0), 1u);

  (*poller)->remove(pipe->first.get());
  EXPECT_EQ((*poller)->wait(keys, 0), 0u);
}

TEST(PlatformPoller, ReportsEndOfFile) {
  auto poller = Poller::create();
  ASSERT_TRUE(poller.ok());
  auto pipe = make_pipe();
  ASSERT_TRUE(pipe.ok());
  ASSERT_TRUE((*poller)->add(pipe->first.get(), 7).ok());
  pipe->second.reset();
  std::array<std::uint64_t, 8> keys{};
  ASSERT_EQ((*poller)->wait(keys, 10000), 1u);
  EXPECT_EQ(keys[0], 7u);
}

TEST(PlatformPoller, WakeEndsAWaitFromAnotherThread) {
  auto poller = Poller::create();
  ASSERT_TRUE(poller.ok());
  std::array<std::uint64_t, 8> keys{};
  std::jthread waker([&] { (*poller)->wake(); });
  // No limit on the wait: only the wake-up can end it. It reports no key.
  EXPECT_EQ((*poller)->wait(keys, -1), 0u);
  waker.join();
  // The wake-up was consumed: the next wait times out.
  EXPECT_EQ((*poller)->wait(keys, 0), 0u);
}

}  // namespace
}  // namespace orch::engine::platform
