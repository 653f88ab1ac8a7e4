// NotificationOutlet: how a session (or a subscriptions/listen stream) sends
// notifications that outlive the request that caused them (a task's status
// change, a resource update). Those who will send later co-own it; once its
// owner closes it, they send nothing, even if the transport under it is gone.
// Sending under the lock is what makes that true; a send is one sink call.
// Thread-safe.
#pragma once

#include <functional>
#include <mutex>
#include <utility>

#include <nlohmann/json.hpp>

#include "mcp/dispatcher.h"

namespace orch::mcp {

class NotificationOutlet {
 public:
  using Send = std::function<bool(const nlohmann::json& message)>;

  explicit NotificationOutlet(Dispatcher& dispatcher)
      : send_([&dispatcher](const nlohmann::json& m) { return dispatcher.send(m); }) {}
  explicit NotificationOutlet(Send send) : send_(std::move(send)) {}

  // False once closed, or when the sink refused the message.
  bool send(const nlohmann::json& message) {
    std::lock_guard lock(mu_);
    return send_ && send_(message);
  }
  void close() {
    std::lock_guard lock(mu_);
    send_ = nullptr;
  }
  bool open() const {
    std::lock_guard lock(mu_);
    return static_cast<bool>(send_);
  }

 private:
  mutable std::mutex mu_;
  Send send_;  // guarded by mu_; empty once closed
};

}  // namespace orch::mcp
