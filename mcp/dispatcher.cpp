#include "mcp/dispatcher.h"

#include <cassert>
#include <exception>
#include <utility>
#include <vector>

#include <spdlog/spdlog.h>

namespace orch::mcp {

using nlohmann::json;

namespace detail {

// One request from acceptance to its answer. Co-owned by the Responder and by
// the executor job that has not run yet; when the last owner lets go of an
// unanswered call, the call answers "dropped" itself. That covers the job an
// executor destroys without running it, so no request can go unanswered.
class Call {
 public:
  Call(Dispatcher& dispatcher, RequestId id) : dispatcher_(dispatcher), id_(std::move(id)) {}
  ~Call() {
    // Sole owner here, so answered_ needs no lock.
    if (!answered_) {
      dispatcher_.answer(*this, error_response(id_, kInternalError,
                                               "internal error: the request was dropped"));
    }
    dispatcher_.forget(*this);
  }
  Call(const Call&) = delete;
  Call& operator=(const Call&) = delete;

  Dispatcher& dispatcher_;
  const RequestId id_;
  std::stop_source stop_;
  bool answered_ = false;    // guarded by dispatcher_.mu_
  bool suppressed_ = false;  // guarded by dispatcher_.mu_; the peer cancelled the request
};

}  // namespace detail

namespace {

template <typename... Fs>
struct Overloaded : Fs... {
  using Fs::operator()...;
};
template <typename... Fs>
Overloaded(Fs...) -> Overloaded<Fs...>;

}  // namespace

// --- Responder ---------------------------------------------------------------

Responder::Responder(std::shared_ptr<detail::Call> call) : call_(std::move(call)) {}

Responder& Responder::operator=(Responder&& other) noexcept {
  if (this != &other) {
    if (call_) {
      answer(error_response(call_->id_, kInternalError, "internal error: the request was dropped"));
    }
    call_ = std::move(other.call_);
  }
  return *this;
}

Responder::~Responder() {
  if (!call_) return;
  // Destroyed while an exception unwinds: the handler threw, and the job
  // boundary logs what. Otherwise the handler forgot to answer.
  const char* message = std::uncaught_exceptions() > 0
                            ? "internal error: the request failed (the server log has details)"
                            : "internal error: the request was dropped";
  answer(error_response(call_->id_, kInternalError, message));
}

void Responder::result(json result) {
  assert(call_ && "a request is answered exactly once");
  if (!call_) return;
  answer(result_response(call_->id_, std::move(result)));
}

void Responder::error(int code, std::string_view message, std::optional<json> data) {
  assert(call_ && "a request is answered exactly once");
  if (!call_) return;
  answer(error_response(call_->id_, code, message, std::move(data)));
}

const RequestId& Responder::id() const {
  assert(call_ && "id() of an answered request");
  return call_->id_;
}

std::stop_token Responder::stop_token() const {
  assert(call_ && "stop_token() of an answered request");
  return call_->stop_.get_token();
}

void Responder::answer(json message) {
  auto call = std::move(call_);
  call->dispatcher_.answer(*call, std::move(message));
}

// --- Dispatcher --------------------------------------------------------------

Dispatcher::Dispatcher(transport::MessageSink sink, Executor executor)
    : sink_(std::move(sink)), executor_(std::move(executor)) {}

Dispatcher::~Dispatcher() { close(); }

void Dispatcher::on_request(std::string method, Run run, RequestHandler handler) {
  requests_[std::move(method)] = Entry{run, nullptr, std::move(handler)};
}

void Dispatcher::on_request(std::string method, RunChooser choose, RequestHandler handler) {
  requests_[std::move(method)] = Entry{Run::OnExecutor, std::move(choose), std::move(handler)};
}

void Dispatcher::on_notification(std::string method, NotificationHandler handler) {
  notifications_[std::move(method)] = std::move(handler);
}

void Dispatcher::set_admission(Admission admission) { admission_ = std::move(admission); }

void Dispatcher::handle(std::string_view text) { handle(parse_message(text)); }

void Dispatcher::handle(Message message) {
  std::visit(Overloaded{
                 [&](Request& request) { dispatch_request(std::move(request)); },
                 [&](Notification& notification) { dispatch_notification(notification); },
                 [&](Response& response) {
                   // We send no requests yet, so no response is expected.
                   spdlog::debug("mcp: ignored a response to request {} (none was sent)",
                                 to_string(response.id));
                 },
                 [&](Invalid& invalid) {
                   spdlog::warn("mcp: invalid message ({}): {}", invalid.code, invalid.message);
                   send(error_response(invalid.id, invalid.code, invalid.message));
                 },
             },
             message);
}

bool Dispatcher::send(const json& message) { return sink_(serialize(message)); }

void Dispatcher::dispatch_request(Request request) {
  if (admission_) {
    if (auto fault = admission_(request.method)) {
      send(error_response(request.id, fault->code, fault->message));
      return;
    }
  }
  auto entry = requests_.find(request.method);
  if (entry == requests_.end()) {
    send(error_response(request.id, kMethodNotFound, "Method not found: " + request.method));
    return;
  }

  auto call = std::make_shared<detail::Call>(*this, request.id);
  std::optional<RpcFault> refusal;
  {
    std::lock_guard lock(mu_);
    if (closing_) {
      refusal = RpcFault{kInternalError, "the server is shutting down"};
    } else if (pending_.count(request.id) != 0) {
      refusal = RpcFault{kInvalidRequest, "request id " + to_string(request.id) +
                                              " is already used by a request in progress"};
    } else {
      pending_.emplace(request.id, Pending{call.get(), call});
      live_.emplace(call.get(), call);
    }
    // A refused call was never registered; it must not answer on its own.
    if (refusal) call->answered_ = true;
  }
  if (refusal) {
    send(error_response(request.id, refusal->code, refusal->message));
    return;
  }

  const Entry& target = entry->second;
  if ((target.choose ? target.choose(request.params) : target.run) == Run::Inline) {
    run_call(request.method, target.handler, request.params, std::move(call));
    return;
  }
  std::function<void()> job = [method = request.method, handler = target.handler,
                               params = std::move(request.params), call]() mutable {
    // Moving the call out ties the request's life to this run, not to when
    // the executor gets round to destroying the job.
    if (call) run_call(method, handler, params, std::move(call));
  };
  if (!executor_(std::move(job))) {
    spdlog::warn("mcp: the executor refused request {} ({})", to_string(request.id), request.method);
    Responder(std::move(call)).error(kInternalError, "server busy, retry");
  }
}

void Dispatcher::run_call(const std::string& method, const RequestHandler& handler,
                          const json& params, std::shared_ptr<detail::Call> call) {
  const std::string id = to_string(call->id_);
  // Cancelled by the peer while queued: nobody waits for it, skip the work.
  // Stopped by close() instead, it still runs, with its stop requested: a
  // client that writes a request and closes stdin at once (a script) still
  // gets a real answer to it.
  bool cancelled = false;
  {
    std::lock_guard lock(call->dispatcher_.mu_);
    cancelled = call->suppressed_;
  }
  Responder responder(std::move(call));
  if (cancelled) {
    responder.error(kInternalError, "request cancelled before it started");
    return;
  }
  // The job boundary: nothing a handler throws may escape into the executor's
  // thread. The Responder, destroyed while unwinding, answers -32603.
  try {
    handler(params, std::move(responder));
  } catch (const std::exception& e) {
    spdlog::error("mcp: {} request {} failed: {}", method, id, e.what());
  } catch (...) {
    spdlog::error("mcp: {} request {} failed with an unknown exception", method, id);
  }
}

void Dispatcher::dispatch_notification(const Notification& notification) {
  {
    std::lock_guard lock(mu_);
    if (closing_) return;
  }
  if (notification.method == "notifications/cancelled") {
    cancel(notification.params);
    return;
  }
  auto it = notifications_.find(notification.method);
  if (it == notifications_.end()) {
    spdlog::debug("mcp: ignored notification {}", notification.method);
    return;
  }
  try {
    it->second(notification.params);
  } catch (const std::exception& e) {
    spdlog::error("mcp: {} notification failed: {}", notification.method, e.what());
  } catch (...) {
    spdlog::error("mcp: {} notification failed with an unknown exception", notification.method);
  }
}

void Dispatcher::cancel(const json& params) {
  auto id = params.find("requestId");
  if (id == params.end() || !is_valid_request_id(*id)) {
    spdlog::debug("mcp: ignored notifications/cancelled without a usable requestId");
    return;
  }
  std::shared_ptr<detail::Call> call;  // released after the lock: it may be the last owner
  {
    std::lock_guard lock(mu_);
    auto it = pending_.find(*id);
    if (it == pending_.end()) return;  // finished or never seen: races are expected (§8)
    call = it->second.weak.lock();
    if (!call) return;
    call->suppressed_ = true;
  }
  auto reason = params.find("reason");
  spdlog::debug("mcp: request {} cancelled by the client{}{}", to_string(*id),
                reason != params.end() && reason->is_string() ? ": " : "",
                reason != params.end() && reason->is_string() ? reason->get<std::string>() : "");
  // Outside the lock: request_stop runs the handler's stop callbacks right here.
  call->stop_.request_stop();
}

void Dispatcher::answer(detail::Call& call, json message) {
  bool suppressed = false;
  {
    std::lock_guard lock(mu_);
    if (call.answered_) return;
    call.answered_ = true;
    auto it = pending_.find(call.id_);
    if (it != pending_.end() && it->second.call == &call) pending_.erase(it);
    suppressed = call.suppressed_;
  }
  if (suppressed) {
    spdlog::debug("mcp: reply to cancelled request {} suppressed", to_string(call.id_));
    return;
  }
  send(message);
}

void Dispatcher::forget(detail::Call& call) {
  std::lock_guard lock(mu_);
  live_.erase(&call);
  if (live_.empty()) idle_.notify_all();
}

void Dispatcher::close() {
  std::vector<std::shared_ptr<detail::Call>> calls;
  {
    std::lock_guard lock(mu_);
    closing_ = true;
    calls.reserve(live_.size());
    for (auto& entry : live_) {
      if (auto call = entry.second.lock()) calls.push_back(std::move(call));
    }
  }
  for (auto& call : calls) call->stop_.request_stop();
  calls.clear();  // outside the lock: a call may be destroyed here
  std::unique_lock lock(mu_);
  idle_.wait(lock, [&] { return live_.empty(); });
}

bool Dispatcher::closing() const {
  std::lock_guard lock(mu_);
  return closing_;
}

std::size_t Dispatcher::in_flight() const {
  std::lock_guard lock(mu_);
  return pending_.size();
}

}  // namespace orch::mcp
