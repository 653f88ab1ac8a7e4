// NotificationOutlet: how a session sends notifications that outlive the
// request that caused them (a task's status change, a resource update). Those
// who will send later co-own it; once the session closes it, they send
// nothing, even if the transport under it is gone. Sending under the lock is
// what makes that true; a send is one sink call. Thread-safe.
#pragma once

#include <mutex>

#include <nlohmann/json.hpp>

#include "mcp/dispatcher.h"

namespace orch::mcp {

class NotificationOutlet {
 public:
  explicit NotificationOutlet(Dispatcher& dispatcher) : dispatcher_(&dispatcher) {}

  // False once closed, or when the sink refused the message.
  bool send(const nlohmann::json& message) {
    std::lock_guard lock(mu_);
    return dispatcher_ != nullptr && dispatcher_->send(message);
  }
  void close() {
    std::lock_guard lock(mu_);
    dispatcher_ = nullptr;
  }
  bool open() const {
    std::lock_guard lock(mu_);
    return dispatcher_ != nullptr;
  }

 private:
  mutable std::mutex mu_;
  Dispatcher* dispatcher_;  // guarded by mu_; null once closed
};

}  // namespace orch::mcp
