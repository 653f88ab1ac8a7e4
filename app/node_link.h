// The HTTP link between the nodes of a cluster (docs/CLUSTER.md): a task's
// output and pool result stay in the spool of the node that ran it, and any
// other node reads them from there.
//
// Server side, on every node that serves HTTP (both routes need the same
// bearer token as /mcp, unless --no-auth):
//   GET /nodes/output?task=ID&stream=stdout|stderr&offset=N&maxBytes=M&tail=0|1
//       → {"data": <base64 of the bytes>, "offset", "nextOffset", "fileBytes", "more"}
//   GET /nodes/result?task=ID
//       → {"result": <the worker's JSON result, or null>}
// Errors answer {"error": "…"}: 400 for a bad parameter (the message says
// which and what is allowed), 404 when the task did not run here, 503 when
// the node cannot read it now, 500 otherwise.
//
// Client side: fetch_node_output and fetch_node_result have the shapes of
// engine::ClusterOptions::fetch_output and fetch_result. Each call opens its
// own connection (5 s to connect, 5 s per read), so they are thread-safe.
// Failures are Result errors whose messages name the node and its URL but
// never its token: Unavailable when the node cannot be reached, answers 5xx,
// refuses the token or answers something that is not this protocol;
// NotFound when it answers 404.
#pragma once

#include <functional>
#include <optional>
#include <string>
#include <utility>

#include "common/result.h"
#include "engine/engine.h"
#include "engine/shared_queue.h"
#include "engine/spool.h"
#include "transport/http_server.h"

namespace orch::app {

// The largest window one /nodes/output answers; a larger request is cut to
// this (a window may be shorter than asked: `more` says there is more).
inline constexpr std::uint64_t kMaxNodeWindowBytes = 1 << 20;

// Where the routes read from: the engine's local reads in the server, fakes
// in tests. Called on HTTP threads; must be thread-safe.
struct NodeReads {
  std::function<Result<engine::OutputWindow>(const engine::TaskId& id, engine::StreamKind stream,
                                             const engine::ReadRequest& req)>
      output;
  std::function<Result<std::optional<std::string>>(const engine::TaskId& id)> result;
};

// Registers both routes (before http.start()). `reads` is copied.
void add_node_routes(transport::HttpServer& http, NodeReads reads);
// The same over engine.read_local_output and read_local_result; `engine`
// must outlive the server's threads.
inline void add_node_routes(transport::HttpServer& http, engine::Engine& engine) {
  NodeReads reads;
  reads.output = [&engine](const engine::TaskId& id, engine::StreamKind stream, const engine::ReadRequest& req) {
    return engine.read_local_output(id, stream, req);
  };
  reads.result = [&engine](const engine::TaskId& id) { return engine.read_local_result(id); };
  add_node_routes(http, std::move(reads));
}

// The URL other nodes are told to reach this one at: `base_url` itself,
// except that a server bound to every interface (0.0.0.0, [::]) names
// itself by `host_name` (another machine cannot connect to 0.0.0.0).
std::string advertised_url(const std::string& base_url, const std::string& host_name);
// This machine's host name (gethostname), or "localhost" when it has none.
std::string this_host_name();

Result<engine::OutputWindow> fetch_node_output(const engine::NodeInfo& node, const engine::TaskId& id,
                                               engine::StreamKind stream, const engine::ReadRequest& req);
Result<std::optional<std::string>> fetch_node_result(const engine::NodeInfo& node, const engine::TaskId& id);

}  // namespace orch::app
