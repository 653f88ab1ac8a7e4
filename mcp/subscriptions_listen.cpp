#include "mcp/subscriptions_listen.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <optional>
#include <utility>
#include <vector>

#include "mcp/modern_era.h"

namespace orch::mcp {

using nlohmann::json;
using transport::EventStream;

namespace {

std::string sse_event(const json& message) { return "event: message\ndata: " + message.dump() + "\n\n"; }

// A JSON array of strings, each once, in the order given; nullopt if it is not one.
std::optional<std::vector<std::string>> string_list(const json& filter, const char* key) {
  std::vector<std::string> out;
  auto it = filter.find(key);
  if (it == filter.end() || it->is_null()) return out;
  if (!it->is_array()) return std::nullopt;
  for (const json& v : *it) {
    if (!v.is_string()) return std::nullopt;
    std::string s = v.get<std::string>();
    if (std::find(out.begin(), out.end(), s) == out.end()) out.push_back(std::move(s));
  }
  return out;
}

}  // namespace

// One open stream.
struct Listener {
  RequestId id;
  std::shared_ptr<EventStream> stream;
  // Held while the stream is being set up, so nothing overtakes the
  // acknowledgement, and while each notification is pushed.
  std::mutex gate;
  std::shared_ptr<NotificationOutlet> outlet;  // what resource updates and task watchers send through
  std::vector<std::string> uris;               // in ResourceSubscriptions

  bool push(json message) {
    json& params = message["params"];
    if (!params.is_object()) params = json::object();
    params["_meta"][kSubscriptionIdMeta] = id;
    std::lock_guard lock(gate);
    return stream->push(sse_event(message));
  }
};

struct ListenHub::State {
  Server& server;
  const ListenOptions options;
  mutable std::mutex mu;
  std::map<std::uint64_t, std::shared_ptr<Listener>> listeners;  // guarded by mu
  std::uint64_t next_key = 1;                                    // guarded by mu
  bool closed = false;                                           // guarded by mu
  std::vector<std::shared_ptr<EventStream>> closing;             // guarded by mu; ended by close_all

  State(Server& s, ListenOptions o) : server(s), options(o) {}

  // The stream has gone (client closed it: cancellation) or ended.
  void drop(std::uint64_t key) {
    std::shared_ptr<Listener> l;
    {
      std::lock_guard lock(mu);
      auto it = listeners.find(key);
      if (it == listeners.end()) return;
      l = std::move(it->second);
      listeners.erase(it);
    }
    // The outlet is not closed here: this may run inside one of its sends
    // (a push over the bound). Task watchers hold it weakly; it goes with `l`.
    for (const std::string& uri : l->uris) server.subscriptions().remove(uri, l->outlet);
  }
};

ListenHub::ListenHub(Server& server, ListenOptions options) : state_(std::make_shared<State>(server, options)) {}

ListenHub::~ListenHub() { close_all(true); }

std::size_t ListenHub::count() const {
  std::lock_guard lock(state_->mu);
  return state_->listeners.size();
}

Result<std::shared_ptr<EventStream>> ListenHub::open(const RequestId& id, const json& params, const std::string& owner,
                                                     bool tasks_declared) {
  auto filter = params.find("notifications");
  if (filter == params.end() || !filter->is_object()) {
    return make_error(ErrorCode::InvalidArgument,
                      "subscriptions/listen needs params.notifications, an object naming what to listen for");
  }
  auto uris = string_list(*filter, "resourceSubscriptions");
  auto task_ids = string_list(*filter, "taskIds");
  if (!uris || !task_ids) {
    return make_error(ErrorCode::InvalidArgument,
                      "params.notifications.resourceSubscriptions and .taskIds must be arrays of strings");
  }
  auto l = std::make_shared<Listener>();
  l->id = id;
  l->stream = std::make_shared<EventStream>(state_->options.stream_buffer_bytes);
  std::weak_ptr<Listener> weak = l;
  l->outlet = std::make_shared<NotificationOutlet>([weak](const json& m) {
    auto alive = weak.lock();
    return alive && alive->push(m);
  });
  std::uint64_t key = 0;
  {
    std::lock_guard lock(state_->mu);
    if (state_->closed) return make_error(ErrorCode::Unavailable, "the server is shutting down");
    if (state_->listeners.size() >= state_->options.max_listeners) {
      return make_error(ErrorCode::QueueFull, std::to_string(state_->options.max_listeners) +
                                                  " subscriptions/listen streams are open; close one or retry later");
    }
    key = state_->next_key++;
    state_->listeners.emplace(key, l);
  }

  std::unique_lock gate(l->gate);  // the acknowledgement goes first
  json accepted = json::object();
  Server& server = state_->server;
  if (ResourceProvider* resources = server.resources(); resources && !uris->empty()) {
    json list = json::array();
    for (const std::string& uri : *uris) {
      if (!resources->check(uri)) continue;
      server.subscriptions().add(uri, l->outlet);
      l->uris.push_back(uri);
      list.push_back(uri);
    }
    accepted["resourceSubscriptions"] = std::move(list);
  }
  std::vector<NativeTask> now;
  if (TaskProvider* tasks = server.tasks(); tasks && tasks_declared && !task_ids->empty()) {
    json list = json::array();
    std::weak_ptr<NotificationOutlet> outlet = l->outlet;
    for (const std::string& task_id : *task_ids) {
      auto task = tasks->watch(owner, task_id, [outlet](const NativeTask& changed) {
        if (auto o = outlet.lock()) o->send(notification_message("notifications/tasks", modern_task_json(changed)));
      });
      if (!task) continue;  // unknown, or another owner's: not accepted
      now.push_back(std::move(*task));
      list.push_back(task_id);
    }
    accepted["taskIds"] = std::move(list);
  }
  json ack = notification_message("notifications/subscriptions/acknowledged", {{"notifications", accepted}});
  ack["params"]["_meta"][kSubscriptionIdMeta] = id;
  l->stream->push(sse_event(ack));
  for (const NativeTask& task : now) {
    json n = notification_message("notifications/tasks", modern_task_json(task));
    n["params"]["_meta"][kSubscriptionIdMeta] = id;
    l->stream->push(sse_event(n));
  }
  gate.unlock();

  std::weak_ptr<State> hub = state_;
  l->stream->on_gone([hub, key] {
    if (auto s = hub.lock()) s->drop(key);
  });
  return l->stream;
}

void ListenHub::close_all(bool final) {
  std::map<std::uint64_t, std::shared_ptr<Listener>> all;
  {
    std::lock_guard lock(state_->mu);
    if (final) state_->closed = true;
    all.swap(state_->listeners);
  }
  for (auto& [key, l] : all) {
    for (const std::string& uri : l->uris) state_->server.subscriptions().remove(uri, l->outlet);
    l->push(notification_message("notifications/cancelled",
                                 {{"requestId", l->id}, {"reason", "the server is shutting down or restarting"}}));
    l->outlet->close();
    l->stream->close();
  }
  std::lock_guard lock(state_->mu);
  for (auto& [key, l] : all) state_->closing.push_back(l->stream);
}

bool ListenHub::wait_closed(std::chrono::steady_clock::time_point deadline) {
  std::vector<std::shared_ptr<EventStream>> closing;
  {
    std::lock_guard lock(state_->mu);
    closing.swap(state_->closing);
  }
  bool all = true;
  for (auto& stream : closing) all = stream->wait_finished(deadline) && all;
  return all;
}

}  // namespace orch::mcp
