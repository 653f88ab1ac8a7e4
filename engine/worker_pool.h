// WorkerPool: an elastic pool of threads for short and long jobs alike (MCP
// requests, long-polls, task starts). It grows a thread whenever a job waits
// and no thread is idle, up to max_threads, and a thread that stays idle for
// idle_timeout exits. The job queue is bounded: post() refuses rather than
// letting work pile up without limit.
//
// Thread-safety: post() and stats() are thread-safe. The destructor requests
// stop on every job's stop_token, drains nothing further, and joins all
// threads (jobs must watch their token to end promptly).
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <set>
#include <stop_token>
#include <thread>
#include <vector>

namespace orch::engine {

class WorkerPool {
 public:
  using Job = std::function<void(std::stop_token)>;

  struct Options {
    std::size_t max_threads = 128;
    std::size_t max_queued = 4096;
    std::chrono::milliseconds idle_timeout{30000};
  };

  explicit WorkerPool(Options options);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues a job. False when the pool is stopping or the queue is full.
  bool post(Job job);
  // Stops accepting jobs, requests stop on running ones and joins every thread.
  void stop();

  struct Stats {
    std::size_t threads = 0;
    std::size_t busy = 0;
    std::size_t queued = 0;
    std::size_t max_threads = 0;
    // When the longest-running job started (the health watchdog's input).
    std::optional<std::chrono::steady_clock::time_point> oldest_job_started;
  };
  Stats stats() const;

 private:
  void run(std::stop_token stop, std::size_t slot);
  void reap_finished_locked();

  const Options options_;
  mutable std::mutex mu_;
  std::condition_variable_any wake_;
  std::condition_variable_any all_stopped_;
  std::deque<Job> jobs_;          // guarded by mu_; bounded by options_.max_queued
  std::size_t busy_ = 0;          // guarded by mu_
  std::size_t idle_ = 0;          // guarded by mu_
  std::multiset<std::chrono::steady_clock::time_point> running_since_;  // guarded by mu_
  bool stopping_ = false;         // guarded by mu_
  std::vector<std::size_t> exited_;  // slots whose thread left after idling; guarded by mu_
  std::vector<std::jthread> threads_;  // guarded by mu_; declared last: stopped and joined first
};

}  // namespace orch::engine
