#include "engine/platform.h"

#include <dirent.h>
#include <fcntl.h>
#include <malloc.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <chrono>
#include <cassert>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace orch::engine::platform {

namespace {

Error sys_error(const char* call) {
  return make_error(ErrorCode::Io, std::string(call) + ": " + std::strerror(errno));
}

// Reads "<key>:   <n> kB" from a small /proc file. These files are a few KiB;
// a stack buffer keeps the periodic health check free of allocations.
// A figure the kernel is slow to format, read again only when the last
// reading is older than max_age_ms. Any thread; racing readers may both read.
class CachedFigure {
 public:
  explicit CachedFigure(std::int64_t max_age_ms) : max_age_ms_(max_age_ms) {}

  template <class Read>
  std::int64_t get(Read read) {
    using namespace std::chrono;
    const std::int64_t now = duration_cast<milliseconds>(steady_clock::now().time_since_epoch()).count();
    const std::int64_t kept = value_.load();
    if (kept >= 0 && now - read_at_ms_.load() < max_age_ms_) return kept;
    const std::int64_t fresh = read();
    value_.store(fresh);
    read_at_ms_.store(now);
    return fresh;
  }

 private:
  const std::int64_t max_age_ms_;
  std::atomic<std::int64_t> value_{-1};
  std::atomic<std::int64_t> read_at_ms_{0};
};

std::int64_t read_kib_field(const char* path, std::string_view key) {
  UniqueFd fd(::open(path, O_RDONLY | O_CLOEXEC));
  if (!fd) return -1;
  std::array<char, 8192> buf;
  std::size_t used = 0;
  while (used < buf.size()) {
    ssize_t n = ::read(fd.get(), buf.data() + used, buf.size() - used);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    used += static_cast<std::size_t>(n);
  }
  std::string_view text(buf.data(), used);
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    pos = end + 1;
    if (line.size() <= key.size() || line.substr(0, key.size()) != key || line[key.size()] != ':') {
      continue;
    }
    std::int64_t value = 0;
    bool digits = false;
    for (char c : line.substr(key.size() + 1)) {
      if (c >= '0' && c <= '9') {
        value = value * 10 + (c - '0');
        digits = true;
      } else if (digits) {
        break;
      }
    }
    return digits ? value : -1;
  }
  return -1;
}

}  // namespace

Result<UniqueFd> open_exit_watch(pid_t pid) {
  // glibc 2.36 has no wrapper for pidfd_open; the syscall number is in its headers.
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) return sys_error("pidfd_open");
  return UniqueFd(fd);
}

Result<std::pair<UniqueFd, UniqueFd>> make_pipe() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return sys_error("pipe2");
  return std::pair<UniqueFd, UniqueFd>(UniqueFd(fds[0]), UniqueFd(fds[1]));
}

int close_inherited_fds(posix_spawn_file_actions_t* actions, posix_spawnattr_t* /*attr*/, int first_fd) {
  return ::posix_spawn_file_actions_addclosefrom_np(actions, first_fd);
}

Result<std::unique_ptr<Poller>> Poller::create() {
  UniqueFd poll_fd(::epoll_create1(EPOLL_CLOEXEC));
  if (!poll_fd) return sys_error("epoll_create1");
  UniqueFd wake_fd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!wake_fd) return sys_error("eventfd");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kWakeKey;
  if (::epoll_ctl(poll_fd.get(), EPOLL_CTL_ADD, wake_fd.get(), &ev) != 0) return sys_error("epoll_ctl");
  return std::unique_ptr<Poller>(new Poller(std::move(poll_fd), std::move(wake_fd)));
}

Poller::Poller(UniqueFd poll_fd, UniqueFd wake_fd)
    : poll_fd_(std::move(poll_fd)), wake_fd_(std::move(wake_fd)) {}

Poller::~Poller() = default;

Status Poller::add(int fd, std::uint64_t key) {
  assert(key != kWakeKey);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = key;
  if (::epoll_ctl(poll_fd_.get(), EPOLL_CTL_ADD, fd, &ev) != 0) return sys_error("epoll_ctl");
  return {};
}

void Poller::remove(int fd) {
  ::epoll_ctl(poll_fd_.get(), EPOLL_CTL_DEL, fd, nullptr);
}

std::size_t Poller::wait(std::span<std::uint64_t> keys, int timeout_ms) {
  constexpr std::size_t kMaxEvents = 64;
  std::array<epoll_event, kMaxEvents> events;
  int capacity = static_cast<int>(std::min(keys.size(), kMaxEvents));
  int n = ::epoll_wait(poll_fd_.get(), events.data(), capacity, timeout_ms);
  if (n < 0) {
    // Only a signal can interrupt a valid epoll fd; anything else is a bug here.
    assert(errno == EINTR);
    return 0;
  }
  std::size_t out = 0;
  for (int i = 0; i < n; ++i) {
    if (events[i].data.u64 == kWakeKey) {
      std::uint64_t count;
      while (::read(wake_fd_.get(), &count, sizeof count) < 0 && errno == EINTR) {
      }
      continue;
    }
    keys[out++] = events[i].data.u64;
  }
  return out;
}

void Poller::wake() {
  std::uint64_t one = 1;
  // EAGAIN means the counter is already non-zero: a wake-up is pending anyway.
  while (::write(wake_fd_.get(), &one, sizeof one) < 0 && errno == EINTR) {
  }
}

// getStatus asks for these on every call, so each is the cheapest source the
// kernel has: /proc/self/status formats some 60 lines (≈20 µs), statm one,
// read again through a descriptor kept open (opening costs as much as reading).
std::int64_t current_rss_kb() {
  static const int statm = ::open("/proc/self/statm", O_RDONLY | O_CLOEXEC);  // for the life of the image
  if (statm >= 0) {
    std::array<char, 128> buf;
    ssize_t n;
    while ((n = ::pread(statm, buf.data(), buf.size() - 1, 0)) < 0 && errno == EINTR) {
    }
    if (n > 0) {
      buf[static_cast<std::size_t>(n)] = '\0';
      unsigned long long size_pages = 0, resident_pages = 0;  // "size resident shared ..."
      if (std::sscanf(buf.data(), "%llu %llu", &size_pages, &resident_pages) == 2) {
        return static_cast<std::int64_t>(resident_pages) * (::sysconf(_SC_PAGESIZE) / 1024);
      }
    }
  }
  return read_kib_field("/proc/self/status", "VmRSS");
}

std::int64_t peak_rss_kb() {
  // Not ru_maxrss: exec carries the previous image's high-water mark into it
  // (for a posix_spawn child, the spawning parent's), so a server started by
  // a large editor would report the editor's peak. VmHWM is this image's own.
  std::int64_t kb = read_kib_field("/proc/self/status", "VmHWM");
  if (kb >= 0) return kb;
  rusage usage{};  // /proc may be missing in a sandbox
  if (::getrusage(RUSAGE_SELF, &usage) != 0) return -1;
  return usage.ru_maxrss;
}

bool limit_allocator_arenas(int arenas) {
#ifdef __GLIBC__
  return ::mallopt(M_ARENA_MAX, arenas) == 1;
#else
  (void)arenas;
  return false;
#endif
}

bool keep_freed_blocks_up_to(std::size_t bytes) {
#ifdef __GLIBC__
  const int n = static_cast<int>(std::min<std::size_t>(bytes, 1u << 30));
  return ::mallopt(M_MMAP_THRESHOLD, n) == 1 && ::mallopt(M_TRIM_THRESHOLD, n) == 1;
#else
  (void)bytes;
  return false;
#endif
}

void release_free_memory() {
#ifdef __GLIBC__
  ::malloc_trim(0);
#endif
}

std::int64_t recent_peak_rss_kb() {
  // VmHWM needs all of /proc/self/status formatted; twice a second is enough
  // for a figure shown beside the current RSS.
  static CachedFigure peak(500);
  return peak.get(peak_rss_kb);
}

std::int64_t mem_available_kb() {
  // /proc/meminfo costs tens of µs to format. A system-wide figure a fraction
  // of a second old is still true enough for getStatus and admission.
  static CachedFigure available(200);
  return available.get([] { return read_kib_field("/proc/meminfo", "MemAvailable"); });
}

}  // namespace orch::engine::platform

namespace orch::engine::platform {

std::int64_t process_rss_kb(pid_t pid) {
  const std::string path = "/proc/" + std::to_string(pid) + "/status";
  return read_kib_field(path.c_str(), "VmRSS");
}

std::string process_command_line(pid_t pid) {
  std::string cmdline;
  UniqueFd fd(::open(("/proc/" + std::to_string(pid) + "/cmdline").c_str(), O_RDONLY | O_CLOEXEC));
  char buf[4096];
  ssize_t n;
  while (fd && (n = ::read(fd.get(), buf, sizeof buf)) > 0) cmdline.append(buf, static_cast<std::size_t>(n));
  return cmdline;
}

std::vector<pid_t> all_process_ids() {
  std::vector<pid_t> pids;
  DIR* dir = ::opendir("/proc");
  if (!dir) return pids;
  while (const dirent* entry = ::readdir(dir)) {
    char* end = nullptr;
    const long pid = std::strtol(entry->d_name, &end, 10);
    if (pid > 0 && end && *end == '\0') pids.push_back(static_cast<pid_t>(pid));
  }
  ::closedir(dir);
  return pids;
}

}  // namespace orch::engine::platform
