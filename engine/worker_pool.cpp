#include "engine/worker_pool.h"

#include <spdlog/spdlog.h>

#include <exception>

#include "common/thread_name.h"

namespace orch::engine {

WorkerPool::WorkerPool(Options options) : options_(options) {}

WorkerPool::~WorkerPool() { stop(); }

bool WorkerPool::post(Job job) {
  std::unique_lock lock(mu_);
  if (stopping_ || jobs_.size() >= options_.max_queued) return false;
  jobs_.push_back(std::move(job));
  // Grow only when nobody idle can take it: a long-poll parks a thread, and
  // the next request must not wait behind it.
  if (idle_ < jobs_.size()) {
    reap_finished_locked();
    std::size_t live = threads_.size() - exited_.size();
    if (live < options_.max_threads) {
      std::size_t slot = threads_.size();
      if (!exited_.empty()) {
        slot = exited_.back();
        exited_.pop_back();
        threads_[slot] = std::jthread([this, slot](std::stop_token st) { run(st, slot); });
      } else {
        threads_.emplace_back([this, slot](std::stop_token st) { run(st, slot); });
      }
    }
  }
  lock.unlock();
  wake_.notify_one();
  return true;
}

void WorkerPool::reap_finished_locked() {
  // Threads that timed out idle have returned from run(); join them so their
  // slot can be reused. Joining a finished thread does not block.
  for (std::size_t slot : exited_) {
    if (threads_[slot].joinable()) threads_[slot].join();
  }
}

void WorkerPool::run(std::stop_token stop, std::size_t slot) {
  name_this_thread("orch-worker");
  std::unique_lock lock(mu_);
  while (true) {
    ++idle_;
    bool got = wake_.wait_for(lock, stop, options_.idle_timeout,
                              [&] { return !jobs_.empty() || stopping_; });
    --idle_;
    if (stopping_ || stop.stop_requested()) return;
    if (!got) {
      // Idle for too long: leave, and let post() reuse the slot.
      exited_.push_back(slot);
      return;
    }
    Job job = std::move(jobs_.front());
    jobs_.pop_front();
    ++busy_;
    auto since = running_since_.insert(std::chrono::steady_clock::now());
    lock.unlock();
    try {
      job(stop);
    } catch (const std::exception& e) {
      spdlog::error("worker job failed: {}", e.what());
    } catch (...) {
      spdlog::error("worker job failed with an unknown exception");
    }
    job = nullptr;  // destroy captures outside the lock
    lock.lock();
    running_since_.erase(since);
    --busy_;
  }
}

void WorkerPool::stop() {
  std::vector<std::jthread> threads;
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    jobs_.clear();
    threads = std::move(threads_);
    threads_.clear();
    exited_.clear();
  }
  wake_.notify_all();
  for (auto& t : threads) t.request_stop();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
}

WorkerPool::Stats WorkerPool::stats() const {
  std::lock_guard lock(mu_);
  Stats s;
  s.threads = threads_.size() - exited_.size();
  s.busy = busy_;
  s.queued = jobs_.size();
  s.max_threads = options_.max_threads;
  if (!running_since_.empty()) s.oldest_job_started = *running_since_.begin();
  return s;
}

}  // namespace orch::engine
