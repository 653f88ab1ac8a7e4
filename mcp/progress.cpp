#include "mcp/progress.h"

#include <cmath>
#include <string>
#include <utility>

#include "mcp/jsonrpc.h"

namespace orch::mcp {

using nlohmann::json;

std::optional<json> progress_token(const json& params) {
  auto meta = params.find("_meta");
  if (meta == params.end() || !meta->is_object()) return std::nullopt;
  auto token = meta->find("progressToken");
  if (token == meta->end() || !is_valid_request_id(*token)) return std::nullopt;
  return *token;
}

ProgressReporter::ProgressReporter(std::optional<json> token, Send send)
    : token_(std::move(token)), send_(std::move(send)) {}

bool ProgressReporter::report(double progress, std::optional<double> total,
                              std::string_view message) {
  if (!token_ || !std::isfinite(progress)) return false;
  json params{{"progressToken", *token_}, {"progress", progress}};
  if (total && std::isfinite(*total)) params["total"] = *total;
  if (!message.empty()) params["message"] = message;
  json notification = notification_message("notifications/progress", std::move(params));

  // Sent with the lock held, against the usual rule: two reports racing
  // outside it could reach the peer as 2 then 1, and the spec requires the
  // values it sees to increase. The sink never calls back into this object.
  std::lock_guard lock(mu_);
  if (finished_ || (last_ && progress <= *last_)) return false;
  last_ = progress;
  return send_(notification);
}

void ProgressReporter::finish() {
  std::lock_guard lock(mu_);
  finished_ = true;
}

}  // namespace orch::mcp
