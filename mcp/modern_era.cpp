#include "mcp/modern_era.h"

#include <array>
#include <utility>

#include "common/clock.h"
#include "mcp/subscriptions_listen.h"
#include "mcp/tasks_api.h"

namespace orch::mcp {

using nlohmann::json;

namespace {

constexpr const char* kVersionMeta = "io.modelcontextprotocol/protocolVersion";
constexpr const char* kCapabilitiesMeta = "io.modelcontextprotocol/clientCapabilities";
constexpr const char* kServerInfoMeta = "io.modelcontextprotocol/serverInfo";
// Lists change only with a new binary; a client may keep them a minute.
constexpr std::int64_t kListTtlMs = 60000;

constexpr std::array<std::string_view, 11> kMethods = {
    "server/discover", "tools/list",  "tools/call", "resources/list", "resources/templates/list", "resources/read",
    "prompts/list",    "prompts/get", "tasks/get",  "tasks/update",   "tasks/cancel"};

bool known(std::string_view method, bool listen) {
  if (method == "subscriptions/listen") return listen;
  for (std::string_view m : kMethods) {
    if (m == method) return true;
  }
  return false;
}

// The parameter Mcp-Name mirrors, for the methods that have one.
const char* name_param(std::string_view method) {
  if (method == "tools/call" || method == "prompts/get") return "name";
  if (method == "resources/read") return "uri";
  if (method == "tasks/get" || method == "tasks/update" || method == "tasks/cancel") return "taskId";
  return nullptr;
}

int base64_value(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

ModernReply fail(const RequestId& id, int http_status, int code, std::string_view message,
                 std::optional<json> data = std::nullopt) {
  return ModernReply{http_status, error_response(id, code, message, std::move(data)), nullptr};
}

}  // namespace

json modern_task_json(const NativeTask& task) {
  // A tool result with isError is a completed task in this era; failed is only
  // for JSON-RPC errors, which a queued task never has (MCP-NOTES §9b).
  const NativeTaskStatus status = task.status == NativeTaskStatus::Failed ? NativeTaskStatus::Completed : task.status;
  json j{{"taskId", task.id},
         {"status", to_string(status)},
         {"createdAt", to_iso8601(task.created_at_ms)},
         {"lastUpdatedAt", to_iso8601(task.last_updated_at_ms)},
         {"ttlMs", task.ttl_ms ? json(*task.ttl_ms) : json(nullptr)}};
  if (!task.status_message.empty()) j["statusMessage"] = task.status_message;
  if (task.poll_interval_ms > 0) j["pollIntervalMs"] = task.poll_interval_ms;
  return j;
}

bool is_modern_request(const json& params) {
  auto meta = params.find("_meta");
  return meta != params.end() && meta->is_object() && meta->contains(kVersionMeta);
}

std::string decode_header_value(std::string_view value) {
  constexpr std::string_view kPrefix = "=?base64?";
  constexpr std::string_view kSuffix = "?=";
  if (value.size() < kPrefix.size() + kSuffix.size() || value.substr(0, kPrefix.size()) != kPrefix ||
      value.substr(value.size() - kSuffix.size()) != kSuffix) {
    return std::string(value);
  }
  std::string_view b64 = value.substr(kPrefix.size(), value.size() - kPrefix.size() - kSuffix.size());
  std::string out;
  int bits = 0;
  std::uint32_t acc = 0;
  for (char c : b64) {
    if (c == '=') break;
    int v = base64_value(c);
    if (v < 0) return std::string(value);  // not base64 after all: compare as sent
    acc = (acc << 6) | static_cast<std::uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return out;
}

ModernEra::ModernEra(Server& server, std::string auth_context, ListenHub* listen)
    : server_(server), owner_(std::move(auth_context)), listen_(listen) {}

json ModernEra::discover() const {
  json capabilities{{"tools", {{"listChanged", false}}}};
  // subscribe: resourceSubscriptions on a subscriptions/listen stream.
  if (server_.resources()) capabilities["resources"] = {{"subscribe", listen_ != nullptr}, {"listChanged", false}};
  if (server_.prompts()) capabilities["prompts"] = {{"listChanged", false}};
  if (server_.tasks()) capabilities["extensions"] = {{kTasksExtension, json::object()}};
  json out{{"supportedVersions", json::array({kModernProtocolVersion})}, {"capabilities", std::move(capabilities)}};
  if (!server_.info().instructions.empty()) out["instructions"] = server_.info().instructions;
  return out;
}

json ModernEra::call_tool(const json& params, bool tasks_declared, RpcFault& fault) {
  auto name = params.find("name");
  if (name == params.end() || !name->is_string()) {
    fault = {kInvalidParams, "tools/call needs params.name, the tool's name as a string"};
    return nullptr;
  }
  const std::string tool = name->get<std::string>();
  json arguments = params.value("arguments", json::object());
  if (arguments.is_null()) arguments = json::object();
  if (!arguments.is_object()) {
    fault = {kInvalidParams, "tools/call params.arguments must be an object of named arguments"};
    return nullptr;
  }
  // The server decides (§9b): work that runs long becomes a task for a client
  // that declared the extension; without it, the call runs to its answer.
  std::string support = "forbidden";
  for (const json& t : server_.tools().list_tools()) {
    if (t.value("name", "") == tool) support = t.value("/execution/taskSupport"_json_pointer, std::string("forbidden"));
  }
  if (tasks_declared && server_.tasks() && support != "forbidden") {
    auto created = server_.tasks()->create(owner_, tool, arguments, std::nullopt, {});
    if (!created) {
      fault = created.error().code == ErrorCode::NotFound ? RpcFault{kInvalidParams, "Unknown tool: " + tool}
                                                          : task_fault(created.error());
      return nullptr;
    }
    json out = modern_task_json(*created);
    out["resultType"] = "task";
    return out;
  }
  ToolCallContext ctx;
  ctx.report_progress = [](double, std::optional<double>, const std::string&) {};
  std::optional<json> result = server_.tools().call_tool(tool, arguments, ctx);
  if (!result) {
    fault = {kInvalidParams, "Unknown tool: " + tool};
    return nullptr;
  }
  return std::move(*result);
}

ModernReply ModernEra::handle(const Request& request, const ModernHeaders* headers) {
  const RequestId& id = request.id;
  const json& params = request.params;
  auto meta = params.find("_meta");
  if (meta == params.end() || !meta->is_object()) {
    return fail(id, 400, kInvalidParams,
                "params._meta is required in protocol 2026-07-28: it carries io.modelcontextprotocol/protocolVersion "
                "and io.modelcontextprotocol/clientCapabilities (or send initialize for a 2025-11-25 session)");
  }
  auto version = meta->find(kVersionMeta);
  if (version == meta->end() || !version->is_string()) {
    return fail(id, 400, kInvalidParams, std::string("params._meta needs ") + kVersionMeta + ", a string");
  }
  auto caps = meta->find(kCapabilitiesMeta);
  if (caps == meta->end() || !caps->is_object()) {
    return fail(id, 400, kInvalidParams, std::string("params._meta needs ") + kCapabilitiesMeta + ", an object");
  }
  const std::string requested = version->get<std::string>();
  if (headers) {
    if (headers->protocol_version != requested) {
      return fail(id, 400, kHeaderMismatch, "the MCP-Protocol-Version header (" + headers->protocol_version +
                                                ") must equal params._meta protocolVersion (" + requested + ")");
    }
    if (decode_header_value(headers->method) != request.method) {
      return fail(id, 400, kHeaderMismatch, "the Mcp-Method header must equal the method (" + request.method + ")");
    }
    if (const char* key = name_param(request.method)) {
      auto p = params.find(key);
      const std::string want = p != params.end() && p->is_string() ? p->get<std::string>() : std::string();
      if (!headers->has_name || decode_header_value(headers->name) != want) {
        return fail(id, 400, kHeaderMismatch,
                    std::string("the Mcp-Name header must equal params.") + key + " for " + request.method);
      }
    }
  }
  if (requested != kModernProtocolVersion) {
    return fail(id, 400, kUnsupportedProtocolVersion,
                "unsupported protocol version " + requested + "; this endpoint speaks 2026-07-28 per request, or "
                "2025-11-25 after initialize",
                json{{"supported", json::array({kModernProtocolVersion})}, {"requested", requested}});
  }
  if (!known(request.method, listen_ != nullptr)) {
    return fail(id, 404, kMethodNotFound, "Method not found: " + request.method + " (not in protocol 2026-07-28)");
  }
  const bool tasks_declared = caps->contains("extensions") && (*caps)["extensions"].is_object() &&
                              (*caps)["extensions"].contains(kTasksExtension);
  const bool is_task_method = request.method.rfind("tasks/", 0) == 0;
  if (is_task_method && (!server_.tasks() || !tasks_declared)) {
    if (!server_.tasks()) return fail(id, 404, kMethodNotFound, "Method not found: " + request.method);
    return fail(id, 400, kMissingRequiredClientCapability,
                std::string(request.method) + " needs the client to declare the " + kTasksExtension + " extension",
                json{{"requiredCapabilities", {{"extensions", {{kTasksExtension, json::object()}}}}}});
  }

  if (request.method == "subscriptions/listen") {
    auto stream = listen_->open(id, params, owner_, tasks_declared);
    if (stream) return ModernReply{200, nullptr, std::move(*stream)};
    if (stream.error().code == ErrorCode::InvalidArgument) {
      return fail(id, 200, kInvalidParams, stream.error().message);
    }
    return fail(id, 503, kInternalError, stream.error().message);
  }

  RpcFault fault{0, ""};
  json result;
  bool cacheable = false;
  const std::string& m = request.method;
  auto string_param = [&](const char* key) -> std::optional<std::string> {
    auto v = params.find(key);
    if (v == params.end() || !v->is_string() || v->get<std::string>().empty()) {
      fault = {kInvalidParams, m + " needs params." + key + ", a string"};
      return std::nullopt;
    }
    return v->get<std::string>();
  };
  if (m == "server/discover") {
    result = discover();
    cacheable = true;
  } else if (m == "tools/list") {
    json tools = server_.tools().list_tools();
    for (json& t : tools) t.erase("execution");  // no taskSupport in this era: the server decides
    result = {{"tools", std::move(tools)}};
    cacheable = true;
  } else if (m == "tools/call") {
    result = call_tool(params, tasks_declared, fault);
  } else if (m == "resources/list" || m == "resources/templates/list" || m == "resources/read") {
    ResourceProvider* resources = server_.resources();
    cacheable = true;
    if (!resources) {
      return fail(id, 404, kMethodNotFound, "Method not found: " + m);
    } else if (m == "resources/templates/list") {
      result = {{"resourceTemplates", resources->templates()}};
    } else if (m == "resources/list") {
      std::string cursor = params.value("cursor", std::string());
      auto page = resources->list(cursor);
      if (!page) fault = {kInvalidParams, page.error().message};
      else {
        result = {{"resources", page->resources}};
        if (page->next_cursor) result["nextCursor"] = *page->next_cursor;
      }
    } else if (auto uri = string_param("uri")) {
      auto contents = resources->read(*uri);
      // -32002 is legacy only; this era says -32602 for a resource it cannot
      // serve, naming the URI in data (SEP-2164).
      if (!contents && contents.error().code != ErrorCode::Internal) {
        return fail(id, 200, kInvalidParams, contents.error().message, json{{"uri", *uri}});
      }
      if (!contents) fault = {contents.error().code == ErrorCode::Internal ? kInternalError : kInvalidParams,
                              contents.error().message};
      else result = {{"contents", std::move(*contents)}};
    }
  } else if (m == "prompts/list" || m == "prompts/get") {
    PromptProvider* prompts = server_.prompts();
    if (!prompts) return fail(id, 404, kMethodNotFound, "Method not found: " + m);
    if (m == "prompts/list") {
      result = {{"prompts", prompts->list()}};
      cacheable = true;
    } else if (auto name = string_param("name")) {
      auto got = prompts->get(*name, params.value("arguments", json::object()));
      if (!got) fault = {kInvalidParams, got.error().message};
      else result = std::move(*got);
    }
  } else if (auto task_id = string_param("taskId")) {
    TaskProvider& tasks = *server_.tasks();
    if (m == "tasks/get") {
      auto task = tasks.get(owner_, *task_id);
      if (!task) fault = task_fault(task.error());
      else {
        result = modern_task_json(*task);
        if (is_terminal(task->status) && task->status != NativeTaskStatus::Cancelled) {
          auto done = tasks.result_if_done(owner_, *task_id);
          if (done && done->has_value()) {
            // The inlined result is a 2026-07-28 CallToolResult: it has its own resultType.
            result["result"] = **done;
            result["result"]["resultType"] = "complete";
          }
        }
      }
    } else if (m == "tasks/update") {
      // No task of ours asks for input; an update is acknowledged and ignored.
      auto task = tasks.get(owner_, *task_id);
      if (!task) fault = task_fault(task.error());
      else result = json::object();
    } else {  // tasks/cancel: cooperative, an ended task just stays as it ended
      auto task = tasks.get(owner_, *task_id);
      if (!task) fault = task_fault(task.error());
      else {
        if (!is_terminal(task->status)) (void)tasks.cancel(owner_, *task_id);
        result = json::object();
      }
    }
  }
  if (fault.code != 0) return fail(id, 200, fault.code, fault.message);
  if (!result.is_object()) result = json::object();
  if (!result.contains("resultType")) result["resultType"] = "complete";
  if (cacheable) {
    // Task output changes while tasks run, and the list of them with it.
    const bool live = m == "resources/list" || m == "resources/read";
    result["ttlMs"] = live ? 0 : kListTtlMs;
    result["cacheScope"] = live ? "private" : "public";
  }
  const ServerInfo& info = server_.info();
  json server_info{{"name", info.name}, {"version", info.version}};
  if (!info.title.empty()) server_info["title"] = info.title;
  if (!result.contains("_meta") || !result["_meta"].is_object()) result["_meta"] = json::object();
  result["_meta"][kServerInfoMeta] = std::move(server_info);
  return ModernReply{200, result_response(id, std::move(result)), nullptr};
}

}  // namespace orch::mcp
