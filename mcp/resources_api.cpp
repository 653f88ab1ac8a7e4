#include "mcp/resources_api.h"

#include <algorithm>
#include <utility>

#include "mcp/jsonrpc.h"

namespace orch::mcp {

using nlohmann::json;

void ResourceSubscriptions::add(const std::string& uri, const std::shared_ptr<NotificationOutlet>& outlet) {
  std::lock_guard lock(mu_);
  auto& list = by_uri_[uri];
  for (const auto& w : list) {
    if (w.lock() == outlet) return;  // subscribing twice is one subscription
  }
  list.push_back(outlet);
}

void ResourceSubscriptions::remove(const std::string& uri, const std::shared_ptr<NotificationOutlet>& outlet) {
  std::lock_guard lock(mu_);
  auto it = by_uri_.find(uri);
  if (it == by_uri_.end()) return;
  auto& list = it->second;
  list.erase(std::remove_if(list.begin(), list.end(),
                            [&](const std::weak_ptr<NotificationOutlet>& w) {
                              auto o = w.lock();
                              return !o || o == outlet;
                            }),
             list.end());
  if (list.empty()) by_uri_.erase(it);
}

void ResourceSubscriptions::updated(const std::string& uri) {
  // Outlets are asked whether they are open, and sent to, outside mu_: a
  // listen stream's outlet sends under its listener's lock, and that listener
  // takes mu_ while it subscribes (lock order: listener, then mu_).
  std::vector<std::shared_ptr<NotificationOutlet>> targets;
  {
    std::lock_guard lock(mu_);
    auto it = by_uri_.find(uri);
    if (it == by_uri_.end()) return;
    auto& list = it->second;
    for (auto w = list.begin(); w != list.end();) {
      auto o = w->lock();
      if (!o) {
        w = list.erase(w);
        continue;
      }
      targets.push_back(std::move(o));
      ++w;
    }
    if (list.empty()) by_uri_.erase(it);
  }
  const json message = notification_message("notifications/resources/updated", {{"uri", uri}});
  for (auto& o : targets) {
    if (!o->send(message) && !o->open()) remove(uri, o);
  }
}

std::size_t ResourceSubscriptions::count(const std::string& uri) const {
  std::lock_guard lock(mu_);
  auto it = by_uri_.find(uri);
  return it == by_uri_.end() ? 0 : it->second.size();
}

void answer_resource_error(Responder& responder, const Error& error, const std::string& uri) {
  switch (error.code) {
    case ErrorCode::NotFound:
      responder.error(kResourceNotFound, error.message, json{{"uri", uri}});
      return;
    case ErrorCode::InvalidArgument:
      responder.error(kInvalidParams, error.message);
      return;
    default:
      responder.error(kInternalError, error.message);
  }
}

namespace {

std::optional<std::string> string_param(const json& params, const char* key, std::string_view method,
                                        Responder& responder) {
  auto v = params.find(key);
  if (v == params.end() || !v->is_string() || v->get<std::string>().empty()) {
    responder.error(kInvalidParams, std::string(method) + " needs params." + key + ", a string");
    return std::nullopt;
  }
  return v->get<std::string>();
}

}  // namespace

void register_resource_methods(Dispatcher& dispatcher, ResourceProvider& provider,
                               ResourceSubscriptions& subscriptions, std::shared_ptr<NotificationOutlet> outlet) {
  dispatcher.on_request("resources/list", Run::OnExecutor, [&provider](const json& params, Responder r) {
    std::string cursor;
    if (auto c = params.find("cursor"); c != params.end() && !c->is_null()) {
      if (!c->is_string()) return r.error(kInvalidParams, "resources/list params.cursor must be a nextCursor string");
      cursor = c->get<std::string>();
    }
    auto page = provider.list(cursor);
    if (!page) return answer_resource_error(r, page.error(), "");
    json out{{"resources", std::move(page->resources)}};
    if (page->next_cursor) out["nextCursor"] = *page->next_cursor;
    r.result(std::move(out));
  });
  dispatcher.on_request("resources/templates/list", Run::OnExecutor, [&provider](const json&, Responder r) {
    r.result(json{{"resourceTemplates", provider.templates()}});
  });
  dispatcher.on_request("resources/read", Run::OnExecutor, [&provider](const json& params, Responder r) {
    auto uri = string_param(params, "uri", "resources/read", r);
    if (!uri) return;
    auto contents = provider.read(*uri);
    if (!contents) return answer_resource_error(r, contents.error(), *uri);
    r.result(json{{"contents", std::move(*contents)}});
  });
  dispatcher.on_request("resources/subscribe", Run::OnExecutor,
                        [&provider, &subscriptions, outlet](const json& params, Responder r) {
                          auto uri = string_param(params, "uri", "resources/subscribe", r);
                          if (!uri) return;
                          if (auto ok = provider.check(*uri); !ok) return answer_resource_error(r, ok.error(), *uri);
                          subscriptions.add(*uri, outlet);
                          r.result(json::object());
                        });
  dispatcher.on_request("resources/unsubscribe", Run::OnExecutor,
                        [&subscriptions, outlet](const json& params, Responder r) {
                          auto uri = string_param(params, "uri", "resources/unsubscribe", r);
                          if (!uri) return;
                          // Unsubscribing from what was never subscribed is harmless: {}.
                          subscriptions.remove(*uri, outlet);
                          r.result(json::object());
                        });
}

void register_prompt_methods(Dispatcher& dispatcher, PromptProvider& provider) {
  dispatcher.on_request("prompts/list", Run::OnExecutor,
                        [&provider](const json&, Responder r) { r.result(json{{"prompts", provider.list()}}); });
  dispatcher.on_request("prompts/get", Run::OnExecutor, [&provider](const json& params, Responder r) {
    auto name = string_param(params, "name", "prompts/get", r);
    if (!name) return;
    json arguments = json::object();
    if (auto a = params.find("arguments"); a != params.end() && !a->is_null()) {
      if (!a->is_object()) return r.error(kInvalidParams, "prompts/get params.arguments must be an object of strings");
      arguments = *a;
    }
    auto got = provider.get(*name, arguments);
    if (!got) {
      return r.error(got.error().code == ErrorCode::Internal ? kInternalError : kInvalidParams, got.error().message);
    }
    r.result(std::move(*got));
  });
}

}  // namespace orch::mcp
