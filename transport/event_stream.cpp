#include "transport/event_stream.h"

#include <utility>

namespace orch::transport {

EventStream::EventStream(std::size_t max_buffered_bytes) : max_buffered_bytes_(max_buffered_bytes) {}

bool EventStream::push(std::string chunk) {
  std::unique_lock lock(mu_);
  if (closed_ || gone_) return false;
  if (buffered_bytes_ + chunk.size() > max_buffered_bytes_) {
    become_gone(lock);
    return false;
  }
  buffered_bytes_ += chunk.size();
  chunks_.push_back(std::move(chunk));
  lock.unlock();
  ready_.notify_all();
  return true;
}

void EventStream::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  ready_.notify_all();
}

bool EventStream::gone() const {
  std::lock_guard lock(mu_);
  return gone_;
}

void EventStream::on_gone(std::function<void()> callback) {
  std::unique_lock lock(mu_);
  if (!gone_) {
    on_gone_ = std::move(callback);
    return;
  }
  lock.unlock();
  if (callback) callback();
}

bool EventStream::wait_finished(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(mu_);
  return finished_cv_.wait_until(lock, deadline, [&] { return finished_ || gone_; });
}

EventStream::Pull EventStream::pull(std::string& chunk, std::chrono::milliseconds wait) {
  std::unique_lock lock(mu_);
  ready_.wait_for(lock, wait, [&] { return !chunks_.empty() || closed_ || gone_; });
  if (gone_) return Pull::End;
  if (!chunks_.empty()) {
    chunk = std::move(chunks_.front());
    chunks_.pop_front();
    buffered_bytes_ -= chunk.size();
    return Pull::Chunk;
  }
  if (!closed_) return Pull::Timeout;
  finished_ = true;
  lock.unlock();
  finished_cv_.notify_all();
  return Pull::End;
}

void EventStream::mark_gone() {
  std::unique_lock lock(mu_);
  if (gone_) return;
  become_gone(lock);
}

void EventStream::become_gone(std::unique_lock<std::mutex>& lock) {
  gone_ = true;
  chunks_.clear();
  buffered_bytes_ = 0;
  std::function<void()> callback = std::exchange(on_gone_, nullptr);
  lock.unlock();
  ready_.notify_all();
  finished_cv_.notify_all();
  if (callback) callback();
}

}  // namespace orch::transport
