// HttpThreadPool: the threads HTTP connections are served on. At most
// max_threads threads, started when a connection arrives and no thread is
// idle, retired after 30 s idle. At most max_pending connections wait for a
// thread; past that enqueue() blocks, so the accept loop pauses and the
// kernel's listen queue holds the rest: a flood costs no memory here.
//
// Every connection gets a thread of its own while there is room: a long-poll
// or an SSE stream may hold its thread for minutes, and nothing may queue
// behind it while another thread could start.
//
// Thread-safe. shutdown() joins every thread (jobs already queued still run);
// the destructor calls it. No thread is ever detached.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace orch::transport {

class HttpThreadPool {
 public:
  HttpThreadPool(std::size_t max_threads, std::size_t max_pending);
  ~HttpThreadPool();
  HttpThreadPool(const HttpThreadPool&) = delete;
  HttpThreadPool& operator=(const HttpThreadPool&) = delete;

  // Runs `job` on a pool thread. Once shut down, runs it on the caller's
  // thread instead: httplib's job owns the connection's socket, and running
  // it is the only way to close it.
  void enqueue(std::function<void()> job);
  void shutdown();
  // Until every queued job has been taken by a thread, or `deadline`.
  bool wait_no_pending(std::chrono::steady_clock::time_point deadline);

  struct Stats {
    std::size_t threads = 0;
    std::size_t busy = 0;
    std::size_t pending = 0;
  };
  Stats stats() const;

 private:
  void work();
  void reap_locked();

  const std::size_t max_threads_;
  const std::size_t max_pending_;
  mutable std::mutex mu_;
  std::condition_variable ready_;  // a job arrived, or stopping
  std::condition_variable room_;   // a pending slot freed, or stopping
  std::deque<std::function<void()>> jobs_;  // guarded by mu_
  std::vector<std::thread> threads_;        // guarded by mu_; joined in shutdown() or reap_locked()
  std::vector<std::thread::id> finished_;   // guarded by mu_: left work(), not yet joined
  std::size_t exited_ = 0;                  // guarded by mu_
  std::size_t idle_ = 0;                    // guarded by mu_
  std::size_t busy_ = 0;                    // guarded by mu_
  bool stopping_ = false;                   // guarded by mu_
};

}  // namespace orch::transport
