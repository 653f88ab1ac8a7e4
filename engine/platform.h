// Platform seam: the few Linux-only calls the engine makes, kept in one place
// so that a macOS port replaces this file pair and nothing else (SPEC §4
// Platforms). Each declaration names the portable fallback to use there.
//
// Thread-safety: the free functions keep no state. A Poller is waited on by
// one thread; add(), remove() and wake() may be called from any thread.
// Failures come back as Result values whose message names the failed call.
#pragma once

#include <spawn.h>
#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/result.h"
#include "common/unique_fd.h"

namespace orch::engine::platform {

// --- Processes ---

// A descriptor that turns readable once our child `pid` has exited, without
// reaping it. Linux: pidfd_open(2) (kernel 5.3+). macOS: a kqueue holding
// EVFILT_PROC/NOTE_EXIT for the pid (a kqueue fd is itself pollable).
Result<UniqueFd> open_exit_watch(pid_t pid);

// A pipe whose two ends are close-on-exec. Linux: pipe2(O_CLOEXEC). macOS:
// pipe() then fcntl(FD_CLOEXEC); close_inherited_fds() covers the gap.
Result<std::pair<UniqueFd, UniqueFd>> make_pipe();  // {read end, write end}

// Makes a spawned child close every descriptor from `first_fd` up that it
// would otherwise inherit (another library's socket, the store's file); add
// it after the dup2 actions that place the descriptors the child keeps.
// Linux: posix_spawn_file_actions_addclosefrom_np (glibc 2.34+). macOS: the
// POSIX_SPAWN_CLOEXEC_DEFAULT flag on `attr` (dup2 targets stay open).
// Returns 0 or an errno value.
int close_inherited_fds(posix_spawn_file_actions_t* actions, posix_spawnattr_t* attr, int first_fd = 3);

// --- Waiting for many descriptors ---

// Level-triggered readiness for many descriptors plus a wake-up that other
// threads can send. Linux: epoll + eventfd. macOS: kqueue + EVFILT_USER.
class Poller {
 public:
  static Result<std::unique_ptr<Poller>> create();
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  // Reports `key` from wait() while `fd` is readable, at end of file or in
  // error. `key` must not be kWakeKey.
  Status add(int fd, std::uint64_t key);
  // Stops reporting `fd`; call before closing it.
  void remove(int fd);
  // Waits up to `timeout_ms` (negative: no limit) and fills `keys` with ready
  // descriptors' keys; returns how many. Returns early, possibly with 0
  // keys, after wake() or a signal.
  std::size_t wait(std::span<std::uint64_t> keys, int timeout_ms);
  // Makes the current or next wait() return. Any thread; never blocks.
  void wake();

  static constexpr std::uint64_t kWakeKey = ~std::uint64_t{0};

 private:
  Poller(UniqueFd poll_fd, UniqueFd wake_fd);
  UniqueFd poll_fd_;
  UniqueFd wake_fd_;
};

// --- Memory (KiB; -1 when the system does not say) ---

// This process's resident set. Linux: /proc/self/statm (VmRSS in
// /proc/self/status as the fallback). macOS:
// task_info(MACH_TASK_BASIC_INFO).resident_size.
std::int64_t current_rss_kb();
// This process's peak resident set. Linux: VmHWM in /proc/self/status.
// macOS: getrusage(RUSAGE_SELF).ru_maxrss (bytes there, KiB here).
std::int64_t peak_rss_kb();
// The same, read at most 500 ms ago: for status pages asked for many times a
// second (getStatus), which show it beside current_rss_kb() and the larger wins.
std::int64_t recent_peak_rss_kb();
// Memory the system can give out without swapping, at most 200 ms old.
// Linux: MemAvailable in /proc/meminfo. macOS: host_statistics64(HOST_VM_INFO64)
// free + inactive pages.
std::int64_t mem_available_kb();
// --- The allocator (glibc malloc; elsewhere these do nothing) ---

// Caps the malloc arenas threads allocate from. glibc makes up to eight per
// core, one per thread that meets contention, and keeps what each grew: a
// burst that wakes a hundred worker threads left megabytes behind for good
// (the soak in bench/). Call before other threads start. False if refused.
bool limit_allocator_arenas(int arenas);
// Serves blocks up to `bytes` from the heap instead of fresh mappings, and
// keeps up to `bytes` of freed heap between the health check's trims
// (release_free_memory). A 1 MiB getResult window builds strings of 1–2 MiB:
// mapped afresh and unmapped on every call, their pages faulted in each time
// cost as much as the rest of the call. Call before other threads start.
bool keep_freed_blocks_up_to(std::size_t bytes);
// Hands the allocator's free pages back to the system (malloc_trim), so RSS
// measures live memory: the health check calls it before comparing RSS with
// --max-rss-mb, and a burst's freed memory does not stay resident.
void release_free_memory();

// Another process's resident set (a pool worker's). Linux: VmRSS in
// /proc/<pid>/status. macOS: proc_pidinfo(PROC_PIDTASKINFO).pti_resident_size.
std::int64_t process_rss_kb(pid_t pid);
// A process's arguments, each ended by a NUL ("" when it is gone or hidden).
// Linux: /proc/<pid>/cmdline. macOS: sysctl(KERN_PROCARGS2).
std::string process_command_line(pid_t pid);
// Every process id we can see. Linux: the numeric entries of /proc. macOS:
// proc_listallpids().
std::vector<pid_t> all_process_ids();

}  // namespace orch::engine::platform
