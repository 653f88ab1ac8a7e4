// subscriptions/listen of the 2026-07-28 era (MCP-NOTES §5b): a POST whose
// response is a long-lived SSE stream of change notifications.
//
// params.notifications is the filter the client asks for. We accept what we
// can deliver: resourceSubscriptions for URIs the resource provider can watch
// (task output, task://<id>/stdout|stderr) and, for a client that declared
// the Tasks extension, taskIds of its own tasks. Tool, prompt and resource
// lists never change while we run, so toolsListChanged, promptsListChanged
// and resourcesListChanged are left out of the acknowledged filter.
//
// The stream: notifications/subscriptions/acknowledged {notifications:
// accepted filter} first, then notifications/tasks (the extension's detailed
// task, without the inlined result: tasks/get has it) for each accepted task
// as it is now, then notifications/tasks on each status change and
// notifications/resources/updated {uri} on new output. Every one carries
// _meta["io.modelcontextprotocol/subscriptionId"] = the listen request's id.
// Nothing else ever goes on it (no progress, no log messages). The client
// ends it by closing the stream; the server's teardown sends
// notifications/cancelled {requestId} and ends it.
//
// Each open stream holds one HTTP thread while it lasts, so at most
// max_listeners are open at once; past that the request is refused (503)
// instead of starving other requests of threads.
//
// Reuses the legacy plumbing: resource updates through the Server's
// ResourceSubscriptions, task status through TaskProvider::watch.
// Thread-safe. The Server must outlive it; streams may outlive it (they end).
#pragma once

#include <chrono>
#include <cstddef>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "common/result.h"
#include "mcp/jsonrpc.h"
#include "mcp/server.h"
#include "transport/event_stream.h"

namespace orch::mcp {

inline constexpr const char* kSubscriptionIdMeta = "io.modelcontextprotocol/subscriptionId";

struct ListenOptions {
  std::size_t max_listeners = 16;
  std::size_t stream_buffer_bytes = transport::kDefaultStreamBufferBytes;
};

class ListenHub {
 public:
  ListenHub(Server& server, ListenOptions options);
  ~ListenHub();  // close_all()
  ListenHub(const ListenHub&) = delete;
  ListenHub& operator=(const ListenHub&) = delete;

  // Opens the stream for a request that passed the era's checks. Errors:
  // InvalidArgument (params.notifications is not a filter object),
  // QueueFull (max_listeners are open), Unavailable (closed).
  Result<std::shared_ptr<transport::EventStream>> open(const RequestId& id, const nlohmann::json& params,
                                                       const std::string& owner, bool tasks_declared);

  // Server teardown (or a restart in place): notifications/cancelled on each
  // stream, then they end. `final`: later open() calls are refused.
  void close_all(bool final);
  // Waits until the streams close_all() ended have been written out, so the
  // last notifications/cancelled reaches the client before the HTTP threads stop.
  bool wait_closed(std::chrono::steady_clock::time_point deadline);
  std::size_t count() const;

 private:
  struct State;
  std::shared_ptr<State> state_;
};

}  // namespace orch::mcp
