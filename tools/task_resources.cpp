#include "tools/task_resources.h"

#include <spdlog/spdlog.h>

#include <charconv>
#include <utility>
#include <vector>

#include "common/thread_name.h"
#include "tools/change_feed.h"
#include "tools/task_json.h"
#include "tools/tool.h"

namespace orch::tools {

using nlohmann::json;

namespace {

constexpr std::string_view kScheme = "task://";
constexpr std::uint64_t kDefaultReadBytes = 65536;
constexpr std::uint64_t kMaxReadBytes = 1 << 20;
constexpr std::size_t kListPage = 50;  // tasks per resources/list page (two resources each)

Error bad_uri(const std::string& uri, const std::string& why) {
  return make_error(ErrorCode::InvalidArgument,
                    "'" + uri + "' is not a task output URI: " + why +
                        "; use task://<taskId>/stdout or task://<taskId>/stderr, optionally with "
                        "?offset=N&maxBytes=M or ?tail=M");
}

std::optional<std::uint64_t> number(std::string_view text) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return v;
}

std::string uri_of(const std::string& id, engine::StreamKind stream) {
  return std::string(kScheme) + id + "/" + engine::to_string(stream);
}

}  // namespace

Result<TaskResourceUri> parse_task_uri(const std::string& uri) {
  if (uri.rfind(kScheme, 0) != 0) return bad_uri(uri, "it does not start with task://");
  std::string rest = uri.substr(kScheme.size());
  std::string query;
  if (auto q = rest.find('?'); q != std::string::npos) {
    query = rest.substr(q + 1);
    rest.resize(q);
  }
  auto slash = rest.find('/');
  if (slash == std::string::npos) return bad_uri(uri, "the stream is missing");
  TaskResourceUri out;
  out.task_id = rest.substr(0, slash);
  const std::string stream = rest.substr(slash + 1);
  if (stream == "stdout") out.stream = engine::StreamKind::Stdout;
  else if (stream == "stderr") out.stream = engine::StreamKind::Stderr;
  else return bad_uri(uri, "the stream must be stdout or stderr");
  if (out.task_id.empty()) return bad_uri(uri, "the task id is empty");
  out.window.max_bytes = kDefaultReadBytes;
  bool offset_given = false;
  std::size_t start = 0;
  while (!query.empty() && start <= query.size()) {
    std::size_t amp = query.find('&', start);
    const std::string pair = query.substr(start, amp == std::string::npos ? std::string::npos : amp - start);
    start = amp == std::string::npos ? query.size() + 1 : amp + 1;
    auto eq = pair.find('=');
    const std::string key = pair.substr(0, eq);
    auto value = eq == std::string::npos ? std::nullopt : number(std::string_view(pair).substr(eq + 1));
    if (!value) return bad_uri(uri, "'" + pair + "' is not key=<whole number>");
    if (key == "offset") {
      out.window.offset = *value;
      offset_given = true;
    } else if (key == "maxBytes" || key == "tail") {
      if (*value < 1 || *value > kMaxReadBytes) return bad_uri(uri, key + " must be from 1 to 1048576");
      out.window.max_bytes = *value;
      if (key == "tail") out.window.tail = true;
    } else {
      return bad_uri(uri, "unknown query key '" + key + "'");
    }
  }
  if (offset_given && out.window.tail) return bad_uri(uri, "offset and tail exclude each other");
  return out;
}

TaskResources::TaskResources(engine::Engine& engine) : engine_(engine) {
  watcher_ = std::jthread([this](std::stop_token stop) {
    name_this_thread("orch-watch-res");
    watch(std::move(stop));
  });
}

TaskResources::~TaskResources() {
  watcher_.request_stop();
  if (watcher_.joinable()) watcher_.join();
}

Result<mcp::ResourcePage> TaskResources::list(const std::string& cursor) {
  auto page = engine_.list({}, kListPage, cursor);
  if (!page) {
    if (page.error().code == ErrorCode::InvalidArgument) {
      return make_error(ErrorCode::InvalidArgument, "resources/list: '" + cursor +
                                                        "' is not a cursor this server gave; omit it for the first page");
    }
    return page.error();
  }
  mcp::ResourcePage out;
  for (const engine::TaskView& view : page->tasks) {
    const engine::TaskRecord& t = view.task;
    const std::string label = t.spec.name.empty() ? t.id : t.spec.name;
    for (auto stream : {engine::StreamKind::Stdout, engine::StreamKind::Stderr}) {
      const char* s = engine::to_string(stream);
      out.resources.push_back({{"uri", uri_of(t.id, stream)},
                               {"name", t.id + "/" + s},
                               {"title", std::string(s) + " of " + label},
                               {"description", std::string(s) + " of task " + t.id + " (" +
                                                   engine::to_string(t.status) + ")"},
                               {"mimeType", "text/plain"},
                               {"size", stream == engine::StreamKind::Stdout ? t.stdout_bytes : t.stderr_bytes}});
    }
  }
  out.next_cursor = page->next_cursor;
  return out;
}

json TaskResources::templates() {
  json out = json::array();
  for (const char* s : {"stdout", "stderr"}) {
    out.push_back({{"uriTemplate", std::string("task://{taskId}/") + s},
                   {"name", std::string("task-") + s},
                   {"title", std::string("A task's ") + s},
                   {"description", std::string("The ") + s +
                                       " of a task (ids from submitTask or listTasks). Add ?offset=N&maxBytes=M "
                                       "to read a window, or ?tail=M for the last M bytes (at most 1 MiB; "
                                       "default: the first 64 KiB)."},
                   {"mimeType", "text/plain"}});
  }
  return out;
}

Result<json> TaskResources::read(const std::string& uri) {
  auto parsed = parse_task_uri(uri);
  if (!parsed) return parsed.error();
  auto view = engine_.get(parsed->task_id);
  if (!view) return make_error(ErrorCode::NotFound, "no task " + parsed->task_id + " (resources/list shows tasks)");
  auto window = engine_.read_output(parsed->task_id, parsed->stream, parsed->window);
  if (!window) return window.error();
  const std::uint64_t produced =
      parsed->stream == engine::StreamKind::Stdout ? view->task.stdout_bytes : view->task.stderr_bytes;
  json meta = window_to_json(std::move(*window), produced, engine_.options().stream_cap_bytes);
  std::string text = std::move(meta.at("text").get_ref<std::string&>());
  meta.erase("text");
  meta["status"] = engine::to_string(view->task.status);
  return json::array({{{"uri", uri}, {"mimeType", "text/plain"}, {"text", std::move(text)}, {"_meta", std::move(meta)}}});
}

Status TaskResources::check(const std::string& uri) {
  auto parsed = parse_task_uri(uri);
  if (!parsed) return parsed.error();
  if (!engine_.get(parsed->task_id)) return make_error(ErrorCode::NotFound, "no task " + parsed->task_id);
  return {};
}

void TaskResources::on_updated(mcp::ResourceUpdated updated) {
  std::lock_guard lock(mu_);
  updated_ = std::move(updated);
}

void TaskResources::watch(std::stop_token stop) {
  struct Seen {
    std::uint64_t out = 0, err = 0;
  };
  std::map<engine::TaskId, Seen> seen;  // live tasks only
  const std::uint64_t cursor =
      engine_.changes_since(0, engine_clock(engine_).now(), stop, engine::OnDrain::Return, engine::ViewDetail::State)
          .cursor;
  follow_changes(engine_, cursor, stop, [&](const engine::TaskChanges& changes) {
    std::vector<std::string> uris;
    for (const engine::TaskView& view : changes.changed) {
      const engine::TaskRecord& t = view.task;
      Seen& last = seen[t.id];
      const bool ended = engine::is_terminal(t.status);
      // An ended task is reported once more: its output is now complete.
      if (t.stdout_bytes != last.out || ended) uris.push_back(uri_of(t.id, engine::StreamKind::Stdout));
      if (t.stderr_bytes != last.err || ended) uris.push_back(uri_of(t.id, engine::StreamKind::Stderr));
      last = {t.stdout_bytes, t.stderr_bytes};
      if (ended) seen.erase(t.id);
    }
    for (const engine::TaskId& id : changes.removed) seen.erase(id);
    // Called under the lock, so that on_updated({}) returning means no call
    // is under way: its target may then go. A call is a few sink writes.
    std::lock_guard lock(mu_);
    if (!updated_) return;
    for (const std::string& uri : uris) {
      try {
        updated_(uri);
      } catch (const std::exception& e) {
        spdlog::error("resources: update of {} failed: {}", uri, e.what());
      }
    }
  });
}

}  // namespace orch::tools
