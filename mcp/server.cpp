#include "mcp/server.h"

#include <utility>

#include <spdlog/spdlog.h>

#include "mcp/progress.h"
#include "mcp/tasks_api.h"

namespace orch::mcp {

using nlohmann::json;

namespace {

constexpr std::array<const char*, 8> kLogLevelNames = {
    "debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"};

std::string log_level_list() {
  std::string list;
  for (const char* name : kLogLevelNames) {
    if (!list.empty()) list += ", ";
    list += name;
  }
  return list;
}

}  // namespace

// "forbidden" when execution.taskSupport is not given (the spec's default).
std::string ToolProvider::task_support(const std::string& name) const {
  for (const json& t : list_tools()) {
    if (!t.is_object() || t.value("name", "") != name) continue;
    auto execution = t.find("execution");
    if (execution != t.end() && execution->is_object()) {
      auto support = execution->find("taskSupport");
      if (support != execution->end() && support->is_string()) return support->get<std::string>();
    }
    return "forbidden";
  }
  return "";
}

std::optional<LogLevel> parse_log_level(std::string_view name) {
  for (std::size_t i = 0; i < kLogLevelNames.size(); ++i) {
    if (name == kLogLevelNames[i]) return static_cast<LogLevel>(i);
  }
  return std::nullopt;
}

const char* to_string(LogLevel level) { return kLogLevelNames.at(static_cast<std::size_t>(level)); }

std::string_view negotiate_protocol_version(std::string_view requested) {
  for (std::string_view supported : kSupportedProtocolVersions) {
    if (requested == supported) return supported;
  }
  return kSupportedProtocolVersions.front();
}

// --- Server ------------------------------------------------------------------

Server::Server(ServerInfo info, ToolProvider& tools, Executor executor)
    : info_(std::move(info)), tools_(tools), executor_(std::move(executor)) {}

Server::~Server() {
  if (resources_) resources_->on_updated({});
}

void Server::serve_resources(ResourceProvider& resources) {
  resources_ = &resources;
  resources.on_updated([this](const std::string& uri) { subscriptions_.updated(uri); });
}

std::unique_ptr<Session> Server::open_session(transport::MessageSink sink, SessionOptions options) {
  return std::make_unique<Session>(*this, std::move(sink), std::move(options));
}

// --- Session -----------------------------------------------------------------

Session::Session(Server& server, transport::MessageSink sink, SessionOptions options)
    : server_(server), options_(std::move(options)), dispatcher_(std::move(sink), server.executor()) {
  outlet_ = std::make_shared<NotificationOutlet>(dispatcher_);
  if (TaskProvider* tasks = server_.tasks()) {
    register_legacy_task_methods(dispatcher_, *tasks, options_.auth_context);
  }
  if (ResourceProvider* resources = server_.resources()) {
    register_resource_methods(dispatcher_, *resources, server_.subscriptions(), outlet_);
  }
  if (PromptProvider* prompts = server_.prompts()) register_prompt_methods(dispatcher_, *prompts);
  dispatcher_.set_admission([this](const std::string& method) { return admit(method); });

  // initialize runs inline so the next message already sees its state.
  dispatcher_.on_request("initialize", Run::Inline, [this](const json& params, Responder r) {
    initialize(params, std::move(r));
  });
  // ping must answer promptly (§3a), even when the executor is saturated.
  dispatcher_.on_request("ping", Run::Inline,
                         [](const json&, Responder r) { r.result(json::object()); });
  dispatcher_.on_request("logging/setLevel", Run::Inline, [this](const json& params, Responder r) {
    set_log_level(params, std::move(r));
  });
  // The provider's code: its cost is not ours to assume.
  dispatcher_.on_request("tools/list", Run::OnExecutor,
                         [this](const json&, Responder r) { list_tools(std::move(r)); });
  dispatcher_.on_request(
      "tools/call",
      [this](const json& params) {
        auto name = params.find("name");
        const bool at_once = name != params.end() && name->is_string() &&
                             server_.tools().answers_at_once(name->get_ref<const std::string&>());
        return at_once ? Run::Inline : Run::OnExecutor;
      },
      [this](const json& params, Responder r) { call_tool(params, std::move(r)); });
  dispatcher_.on_notification("notifications/initialized", [this](const json&) {
    State expected = State::Initialized;
    if (!state_.compare_exchange_strong(expected, State::Ready)) {
      spdlog::debug("mcp: notifications/initialized ignored (not right after initialize)");
    }
  });
}

Session::~Session() { close(); }

namespace {

// The session whose batch this thread is reading, if any: its tool calls run
// inline on this thread and may answer at the batch's end.
thread_local const Session* t_batch_session = nullptr;

}  // namespace

void Session::handle(std::string_view text) { dispatcher_.handle(text); }

void Session::handle_in_batch(std::string_view text) {
  t_batch_session = this;
  dispatcher_.handle(text);
}

void Session::end_batch() {
  t_batch_session = nullptr;
  server_.tools().end_batch();
}

void Session::handle_oversized(std::size_t bytes, std::size_t limit) {
  spdlog::warn("mcp: discarded a message of {} bytes (the limit is {})", bytes, limit);
  dispatcher_.send(error_response(json(), kInvalidRequest,
                                  "message too large: " + std::to_string(bytes) +
                                      " bytes, the limit is " + std::to_string(limit)));
}

void Session::close() {
  outlet_->close();
  dispatcher_.close();
}

SessionState Session::snapshot() const {
  SessionState st;
  const State now = state_.load();
  st.initialized = now != State::New;
  st.ready = now == State::Ready;
  st.log_level = log_level_.load();
  std::lock_guard lock(mu_);
  st.protocol_version = protocol_version_;
  return st;
}

void Session::restore(const SessionState& st) {
  {
    std::lock_guard lock(mu_);
    protocol_version_ = st.protocol_version;
  }
  log_level_.store(st.log_level);
  state_.store(!st.initialized ? State::New : st.ready ? State::Ready : State::Initialized);
}

bool Session::initialized() const { return state_.load() != State::New; }

std::string Session::protocol_version() const {
  std::lock_guard lock(mu_);
  return protocol_version_;
}

bool Session::hears(LogLevel level) const { return state_.load() != State::New && level >= log_level_.load(); }

bool Session::log(LogLevel level, std::string_view logger, json data) {
  if (!hears(level)) return false;
  json params{{"level", to_string(level)}};
  if (!logger.empty()) params["logger"] = logger;
  params["data"] = std::move(data);
  return dispatcher_.send(notification_message("notifications/message", std::move(params)));
}

std::optional<RpcFault> Session::admit(const std::string& method) const {
  if (method == "initialize" || method == "ping") return std::nullopt;
  if (state_.load() == State::New) {
    return RpcFault{kInvalidRequest,
                    "the session is not initialized: send initialize first, then " + method};
  }
  // Tasks exist from 2025-11-25 on; an older session never saw the capability.
  if (method.rfind("tasks/", 0) == 0 && !tasks_negotiated()) {
    return RpcFault{kMethodNotFound, "Method not found: " + method +
                                         " (native tasks need protocol version 2025-11-25 and a server with tasks)"};
  }
  return std::nullopt;
}

bool Session::tasks_negotiated() const {
  return server_.tasks() != nullptr && protocol_version() == "2025-11-25";
}

void Session::initialize(const json& params, Responder responder) {
  auto requested = params.find("protocolVersion");
  if (requested == params.end() || !requested->is_string()) {
    responder.error(kInvalidParams,
                    R"(initialize needs params.protocolVersion, a string such as "2025-11-25")");
    return;
  }
  State expected = State::New;
  if (!state_.compare_exchange_strong(expected, State::Initialized)) {
    responder.error(kInvalidRequest, "the session is already initialized; initialize is sent once");
    return;
  }
  const std::string version(negotiate_protocol_version(requested->get<std::string>()));
  {
    std::lock_guard lock(mu_);
    protocol_version_ = version;
  }
  auto client = params.find("clientInfo");
  std::string client_name = "an unnamed client";
  if (client != params.end() && client->is_object()) {
    auto name = client->find("name");
    if (name != client->end() && name->is_string()) client_name = name->get<std::string>();
  }
  spdlog::info("mcp: session initialized by {} (asked for {}, speaking {})", client_name,
               requested->get<std::string>(), version);

  const ServerInfo& info = server_.info();
  json server_info{{"name", info.name}, {"version", info.version}};
  if (!info.title.empty()) server_info["title"] = info.title;
  // Only what we implement (§3a): no list_changed notifications, logging yes.
  json capabilities{{"tools", {{"listChanged", false}}}, {"logging", json::object()}};
  if (server_.resources()) capabilities["resources"] = {{"subscribe", true}, {"listChanged", false}};
  if (server_.prompts()) capabilities["prompts"] = {{"listChanged", false}};
  if (server_.tasks() && version == "2025-11-25") {
    capabilities["tasks"] = {{"list", json::object()},
                             {"cancel", json::object()},
                             {"requests", {{"tools", {{"call", json::object()}}}}}};
  }
  json result{
      {"protocolVersion", version},
      {"capabilities", std::move(capabilities)},
      {"serverInfo", std::move(server_info)},
  };
  if (!info.instructions.empty()) result["instructions"] = info.instructions;
  responder.result(std::move(result));
}

void Session::set_log_level(const json& params, Responder responder) {
  auto level = params.find("level");
  std::optional<LogLevel> parsed;
  if (level != params.end() && level->is_string()) parsed = parse_log_level(level->get<std::string>());
  if (!parsed) {
    responder.error(kInvalidParams, "logging/setLevel needs params.level, one of " + log_level_list());
    return;
  }
  log_level_.store(*parsed);
  responder.result(json::object());
}

void Session::list_tools(Responder responder) {
  // One page holds every tool; a cursor, if sent, is ignored (§8 pagination
  // lets the server choose the page size).
  responder.result(json{{"tools", server_.tools().list_tools()}});
}

void Session::call_tool(const json& params, Responder responder) {
  auto name = params.find("name");
  if (name == params.end() || !name->is_string()) {
    responder.error(kInvalidParams, "tools/call needs params.name, the tool's name as a string");
    return;
  }
  json arguments = json::object();
  if (auto args = params.find("arguments"); args != params.end()) {
    if (!args->is_object()) {
      responder.error(kInvalidParams,
                      "tools/call params.arguments must be an object of named arguments");
      return;
    }
    arguments = *args;
  }
  const std::string tool = name->get<std::string>();

  // execution.taskSupport decides how the tool may be called (§9a); a server
  // without tasks processes every call normally, ignoring params.task.
  if (tasks_negotiated()) {
    const std::string support = server_.tools().task_support(tool);
    auto task = params.find("task");
    const bool as_task = task != params.end() && !task->is_null();
    if (support.empty()) {
      responder.error(kInvalidParams, "Unknown tool: " + tool);
      return;
    }
    if (as_task && support == "forbidden") {
      responder.error(kMethodNotFound, "tool " + tool +
                                           " does not run as a task (its execution.taskSupport is forbidden); "
                                           "call it without params.task");
      return;
    }
    if (!as_task && support == "required") {
      responder.error(kMethodNotFound, "tool " + tool +
                                           " runs only as a task (execution.taskSupport is required): send "
                                           "params.task, e.g. {}; without native tasks use submitTask and getResult");
      return;
    }
    if (as_task) {
      call_tool_as_task(tool, arguments, *task, std::move(responder));
      return;
    }
  }

  if (t_batch_session == this && !progress_token(params)) {
    call_tool_in_batch(tool, arguments, std::move(responder));
    return;
  }
  ProgressReporter progress(progress_token(params), [this](const json& message) {
    return dispatcher_.send(message);
  });
  ToolCallContext context;
  context.stop = responder.stop_token();
  context.has_progress_token = progress.has_token();
  context.report_progress = [&progress, stop = context.stop](
                                double value, std::optional<double> total, const std::string& text) {
    // A cancelled request is no longer active: no more progress for it (§8).
    if (!stop.stop_requested()) progress.report(value, total, text);
  };

  std::optional<json> result = server_.tools().call_tool(tool, arguments, context);
  progress.finish();
  if (!result) {
    responder.error(kInvalidParams, "Unknown tool: " + tool);
    return;
  }
  responder.result(std::move(*result));
}

// Inline, in a batch, without a progress token: the reply may come at the
// batch's end, on this thread.
void Session::call_tool_in_batch(const std::string& tool, const json& arguments, Responder responder) {
  auto answer = std::make_shared<Responder>(std::move(responder));
  ToolCallContext context;
  context.stop = answer->stop_token();
  context.report_progress = [](double, std::optional<double>, const std::string&) {};
  server_.tools().call_tool_in_batch(tool, arguments, context, [answer, tool](std::optional<json> result) {
    if (!result) {
      answer->error(kInvalidParams, "Unknown tool: " + tool);
      return;
    }
    answer->result(std::move(*result));
  });
}

void Session::call_tool_as_task(const std::string& tool, const json& arguments, const json& task,
                                Responder responder) {
  if (!task.is_object()) {
    responder.error(kInvalidParams, "tools/call params.task must be an object such as {} or {\"ttl\": 60000}");
    return;
  }
  std::optional<std::int64_t> ttl;
  if (auto t = task.find("ttl"); t != task.end() && !t->is_null()) {
    if (!t->is_number_integer() || t->get<std::int64_t>() < 0) {
      responder.error(kInvalidParams, "tools/call params.task.ttl must be a whole number of milliseconds >= 0");
      return;
    }
    ttl = t->get<std::int64_t>();
  }
  std::weak_ptr<NotificationOutlet> outlet = outlet_;
  NativeTaskListener listener = [outlet](const NativeTask& changed) {
    // notifications/tasks/status carries the full Task and no related-task _meta (§9a).
    if (auto o = outlet.lock()) o->send(notification_message("notifications/tasks/status", legacy_task_json(changed)));
  };
  auto created = server_.tasks()->create(options_.auth_context, tool, arguments, ttl, std::move(listener));
  if (!created) {
    if (created.error().code == ErrorCode::NotFound) {
      responder.error(kInvalidParams, "Unknown tool: " + tool);
    } else {
      responder.error(task_fault(created.error()));
    }
    return;
  }
  json result{{"task", legacy_task_json(*created)}};
  result["_meta"] = {{"io.modelcontextprotocol/model-immediate-response",
                      "Started " + tool + " as task " + created->id +
                          "; it runs in the background and its result arrives when it ends."}};
  responder.result(std::move(result));
}

}  // namespace orch::mcp
