// Dispatcher: routes JSON-RPC messages of one connection to handlers and
// guarantees each request exactly one reply (STYLE.md, Errors).
//
// - Requests run on the Executor (or inline for cheap ones, see Run), so a slow
//   call or a long-poll never blocks ping or another call.
// - Each request gets a move-only Responder. Answering twice is a bug (assert);
//   a Responder destroyed unanswered replies -32603 "internal error: the request
//   was dropped". A job the executor destroys without running it replies the
//   same. An executor that refuses a job gets -32603 "server busy, retry".
// - notifications/cancelled {requestId} requests that request's stop token and
//   suppresses its reply (MCP-NOTES §8: the receiver should not respond); a
//   request cancelled while still queued never reaches its handler. Unknown
//   or finished ids are ignored.
// - close() requests stop on every request in flight, including queued ones;
//   those still run (with the stop requested) and their replies are sent.
// - A request whose id is already in flight is answered -32600 with that id.
// - Exceptions from handlers are caught at the job boundary and logged; the
//   unwinding Responder then answers -32603.
// - Responses from the peer are ignored (we send no requests yet); unknown
//   notifications are ignored; unknown methods get -32601.
//
// Threads: register handlers before the first handle(). After that every
// public function is thread-safe. Messages given to handle() by one thread are
// dispatched in that order; handlers run concurrently with each other.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <stop_token>
#include <string>
#include <string_view>
#include <unordered_map>

#include <nlohmann/json.hpp>

#include "mcp/jsonrpc.h"
#include "transport/connection.h"

namespace orch::mcp {

// Runs a job on some thread. Returns false when it cannot accept the job (full
// or stopping); then it must not run it. An accepted job is either run or
// destroyed (destroying an unrun request job answers it "dropped").
using Executor = std::function<bool(std::function<void()>)>;

// A JSON-RPC error to answer with.
struct RpcFault {
  int code = kInternalError;
  std::string message;
};

class Dispatcher;
namespace detail {
class Call;
}

// The one reply to one request. Move-only; answer with result() or error()
// exactly once, from any thread.
class Responder {
 public:
  Responder(Responder&& other) noexcept = default;
  Responder& operator=(Responder&& other) noexcept;
  Responder(const Responder&) = delete;
  Responder& operator=(const Responder&) = delete;
  // Unanswered: replies -32603 "internal error: the request was dropped".
  ~Responder();

  void result(nlohmann::json result);
  void error(int code, std::string_view message, std::optional<nlohmann::json> data = std::nullopt);
  void error(const RpcFault& fault) { error(fault.code, fault.message); }

  // Only while unanswered.
  const RequestId& id() const;
  // Stop is requested when the peer cancels the request or the session closes.
  std::stop_token stop_token() const;
  bool answered() const { return call_ == nullptr; }

 private:
  friend class Dispatcher;
  explicit Responder(std::shared_ptr<detail::Call> call);
  void answer(nlohmann::json message);

  std::shared_ptr<detail::Call> call_;  // co-owned with the executor job until answered
};

// Where a request handler runs.
enum class Run {
  Inline,      // on the thread calling handle(): for quick answers (ping, initialize)
  OnExecutor,  // on the executor: anything that may take time
};

class Dispatcher {
 public:
  using RequestHandler = std::function<void(const nlohmann::json& params, Responder responder)>;
  // Runs on the thread calling handle(); must be quick.
  using NotificationHandler = std::function<void(const nlohmann::json& params)>;
  // Consulted for every request before its handler is looked up; a fault is
  // sent as the reply instead. Runs on the thread calling handle().
  using Admission = std::function<std::optional<RpcFault>(const std::string& method)>;

  // `sink` and `executor` must stay usable until close() has returned.
  Dispatcher(transport::MessageSink sink, Executor executor);
  // Calls close().
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  void on_request(std::string method, Run run, RequestHandler handler);
  // The same, with where it runs decided per request from its params (e.g. by
  // the tool a tools/call names). `choose` runs on the thread calling handle().
  using RunChooser = std::function<Run(const nlohmann::json& params)>;
  void on_request(std::string method, RunChooser choose, RequestHandler handler);
  void on_notification(std::string method, NotificationHandler handler);
  void set_admission(Admission admission);

  // Classifies and dispatches one received message. After close() requests are
  // answered -32603 and notifications ignored.
  void handle(std::string_view text);
  void handle(Message message);

  // Serialises and sends one message (a notification, or an error that belongs
  // to no request). False when the sink refused it.
  bool send(const nlohmann::json& message);

  // Requests stop on every call in flight and waits until all of them have
  // been answered and their handlers have returned. The executor must keep
  // running meanwhile. Idempotent. Never call it from a handler.
  void close();

  // close() has begun.
  bool closing() const;
  // Requests received and not yet answered.
  std::size_t in_flight() const;

 private:
  friend class detail::Call;
  friend class Responder;

  struct Entry {
    Run run = Run::OnExecutor;
    RunChooser choose;  // when set, decides instead of `run`
    RequestHandler handler;
  };
  struct Pending {
    detail::Call* call = nullptr;
    std::weak_ptr<detail::Call> weak;
  };

  void dispatch_request(Request request);
  void dispatch_notification(const Notification& notification);
  void cancel(const nlohmann::json& params);
  static void run_call(const std::string& method, const RequestHandler& handler,
                       const nlohmann::json& params, std::shared_ptr<detail::Call> call);
  // Called by Call: records the answer; sends it unless cancelled.
  void answer(detail::Call& call, nlohmann::json message);
  void forget(detail::Call& call);

  const transport::MessageSink sink_;
  const Executor executor_;
  std::unordered_map<std::string, Entry> requests_;
  std::unordered_map<std::string, NotificationHandler> notifications_;
  Admission admission_;

  mutable std::mutex mu_;
  std::condition_variable idle_;                  // live_ became empty
  std::map<RequestId, Pending> pending_;          // unanswered, by id; guarded by mu_
  std::unordered_map<const detail::Call*, std::weak_ptr<detail::Call>> live_;  // guarded by mu_
  bool closing_ = false;                          // guarded by mu_
};

}  // namespace orch::mcp
