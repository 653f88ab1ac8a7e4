// Progress notifications for one request (MCP-NOTES §8): only when the request
// carried params._meta.progressToken, only while the request is active, and
// only with a progress value greater than the last one sent.
#pragma once

#include <functional>
#include <mutex>
#include <optional>
#include <string_view>

#include <nlohmann/json.hpp>

namespace orch::mcp {

// params._meta.progressToken when it is a string or an integer, else nullopt.
std::optional<nlohmann::json> progress_token(const nlohmann::json& params);

class ProgressReporter {
 public:
  // Sends one notification message; false when it could not be delivered.
  using Send = std::function<bool(const nlohmann::json& message)>;

  // Without a token every report() is a no-op.
  ProgressReporter(std::optional<nlohmann::json> token, Send send);

  bool has_token() const { return token_.has_value(); }

  // Sends notifications/progress {progressToken, progress, total?, message?}.
  // Dropped (returns false) without a token, after finish(), when progress is
  // not finite, or when it does not exceed the last value sent. A non-finite
  // total and an empty message are left out. Thread-safe; concurrent reports
  // reach the peer in increasing order.
  bool report(double progress, std::optional<double> total, std::string_view message);

  // The request is complete: later reports are dropped. Waits for a report
  // being sent, so no progress follows the reply.
  void finish();

 private:
  const std::optional<nlohmann::json> token_;
  const Send send_;
  std::mutex mu_;
  std::optional<double> last_;  // guarded by mu_
  bool finished_ = false;       // guarded by mu_
};

}  // namespace orch::mcp
