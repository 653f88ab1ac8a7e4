#include "transport/http_thread_pool.h"

#include <algorithm>
#include <chrono>
#include <unordered_set>

#include "common/thread_name.h"

namespace orch::transport {

namespace {

constexpr std::chrono::seconds kIdleThreadTimeout{30};

}  // namespace

HttpThreadPool::HttpThreadPool(std::size_t max_threads, std::size_t max_pending)
    : max_threads_(std::max<std::size_t>(1, max_threads)), max_pending_(std::max<std::size_t>(1, max_pending)) {}

HttpThreadPool::~HttpThreadPool() { shutdown(); }

void HttpThreadPool::enqueue(std::function<void()> job) {
  std::unique_lock lock(mu_);
  room_.wait(lock, [&] { return stopping_ || jobs_.size() < max_pending_; });
  if (stopping_) {
    lock.unlock();
    job();
    return;
  }
  jobs_.push_back(std::move(job));
  if (jobs_.size() > idle_ && threads_.size() - exited_ < max_threads_) {
    reap_locked();
    threads_.emplace_back([this] {
      name_this_thread("orch-http");
      work();
    });
  }
  lock.unlock();
  ready_.notify_one();
}

bool HttpThreadPool::wait_no_pending(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  return room_.wait_until(lock, deadline, [&] { return jobs_.empty(); });
}

void HttpThreadPool::shutdown() {
  std::vector<std::thread> threads;
  {
    std::lock_guard lock(mu_);
    if (stopping_ && threads_.empty()) return;
    stopping_ = true;
    threads.swap(threads_);
  }
  ready_.notify_all();
  room_.notify_all();
  for (auto& t : threads) {
    if (t.joinable()) t.join();
  }
  std::lock_guard lock(mu_);
  finished_.clear();
  exited_ = 0;
}

HttpThreadPool::Stats HttpThreadPool::stats() const {
  std::lock_guard lock(mu_);
  return Stats{threads_.size() - exited_, busy_, jobs_.size()};
}

void HttpThreadPool::work() {
  std::unique_lock lock(mu_);
  for (;;) {
    ++idle_;
    bool woke = ready_.wait_for(lock, kIdleThreadTimeout, [&] { return stopping_ || !jobs_.empty(); });
    --idle_;
    if (jobs_.empty() && (stopping_ || !woke)) break;
    auto job = std::move(jobs_.front());
    jobs_.pop_front();
    ++busy_;
    lock.unlock();
    room_.notify_all();  // enqueue() and wait_no_pending() both wait on it
    job();
    lock.lock();
    --busy_;
  }
  finished_.push_back(std::this_thread::get_id());
  ++exited_;
}

// Joins threads that retired on their own: they have left work() and released
// the lock, so join() only waits for the thread's exit.
void HttpThreadPool::reap_locked() {
  if (finished_.empty()) return;
  std::unordered_set<std::thread::id> done(finished_.begin(), finished_.end());
  for (auto it = threads_.begin(); it != threads_.end();) {
    if (done.count(it->get_id())) {
      it->join();
      it = threads_.erase(it);
      --exited_;
    } else {
      ++it;
    }
  }
  finished_.clear();
}

}  // namespace orch::transport
