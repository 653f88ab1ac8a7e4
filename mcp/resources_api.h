// Resources and prompts methods of the legacy era over their providers
// (MCP-NOTES §10): resources/list, resources/templates/list, resources/read,
// resources/subscribe, resources/unsubscribe, prompts/list, prompts/get; and
// the subscription registry that turns a provider's "this URI changed" into
// notifications/resources/updated for the sessions subscribed to it.
#pragma once

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "mcp/dispatcher.h"
#include "mcp/outlet.h"
#include "mcp/resource_provider.h"

namespace orch::mcp {

inline constexpr int kResourceNotFound = -32002;  // legacy only (MCP-NOTES §2)

// Which sessions watch which URIs. Thread-safe. Entries of closed sessions are
// dropped the next time their URI changes.
class ResourceSubscriptions {
 public:
  void add(const std::string& uri, const std::shared_ptr<NotificationOutlet>& outlet);
  void remove(const std::string& uri, const std::shared_ptr<NotificationOutlet>& outlet);
  // Sends notifications/resources/updated {uri} to each subscriber.
  void updated(const std::string& uri);
  std::size_t count(const std::string& uri) const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::vector<std::weak_ptr<NotificationOutlet>>> by_uri_;  // guarded by mu_
};

// Provider errors as JSON-RPC faults: NotFound → -32002 with data.uri,
// InvalidArgument → -32602, the rest → -32603.
void answer_resource_error(Responder& responder, const Error& error, const std::string& uri);

// `provider`, `subscriptions` must outlive the dispatcher.
void register_resource_methods(Dispatcher& dispatcher, ResourceProvider& provider,
                               ResourceSubscriptions& subscriptions, std::shared_ptr<NotificationOutlet> outlet);
void register_prompt_methods(Dispatcher& dispatcher, PromptProvider& provider);

}  // namespace orch::mcp
