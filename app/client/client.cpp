#include "app/client/client.h"

#include <unistd.h>

#include <CLI/CLI.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <thread>

#include <nlohmann/json.hpp>

#include "app/client/mcp_http_client.h"
#include "app/client/render.h"
#include "app/client/server_endpoint.h"
#include "app/config.h"
#include "transport/http_client.h"

namespace orch::app::client {

using nlohmann::json;

namespace {

constexpr std::array<std::string_view, 7> kCommands = {"submit", "status", "result", "cancel",
                                                       "list",   "logs",   "restart"};
// getResult's longest long-poll (tools/get_result.cpp).
constexpr int kMaxWaitSec = 50;
// How often --follow looks for new output while a task runs.
constexpr double kFollowPollSec = 0.5;

struct Common {
  std::string url;
  std::string token;
  std::string state_dir;
  bool json_output = false;
};

void add_common(CLI::App& cmd, Common& c) {
  cmd.add_option("--url", c.url, "Server address, e.g. http://127.0.0.1:8765 (default: $ORCH_URL, else <state-dir>/http.json)");
  cmd.add_option("--token", c.token, "Bearer token (default: $ORCH_TOKEN, else <state-dir>/http-token)");
  cmd.add_option("--state-dir", c.state_dir, "The server's state directory (default: the server's default)");
  cmd.add_flag("--json", c.json_output, "Print the tool's JSON answer instead of a table");
}

// Where the server is and which token it wants.
struct Endpoint {
  std::string url;
  std::string token;
  std::string token_origin;
};

Result<Endpoint> find_endpoint(const Common& c) {
  std::filesystem::path state = c.state_dir.empty() ? default_state_dir() : std::filesystem::path(c.state_dir);
  std::string url = c.url;
  if (url.empty() && std::getenv("ORCH_URL")) url = std::getenv("ORCH_URL");
  if (url.empty()) {
    auto endpoint = find_server(state);
    if (!endpoint) return endpoint.error();
    url = endpoint->url;
  }
  std::string token = c.token, origin = "--token";
  if (token.empty() && std::getenv("ORCH_TOKEN")) {
    token = std::getenv("ORCH_TOKEN");
    origin = "$ORCH_TOKEN";
  }
  if (token.empty()) {
    token = read_trimmed(state / "http-token");
    origin = (state / "http-token").string();
  }
  return Endpoint{url, token, origin};
}

Result<std::unique_ptr<McpHttpClient>> open_client(const Common& c) {
  auto endpoint = find_endpoint(c);
  if (!endpoint) return endpoint.error();
  auto client = std::make_unique<McpHttpClient>(endpoint->url, endpoint->token, endpoint->token_origin);
  if (auto st = client->connect(); !st) return st.error();
  return client;
}

int fail(const std::string& message) {
  std::fprintf(stderr, "mcp-orchestrator: %s\n", message.c_str());
  return 1;
}

// structuredContent of a successful call; prints the tool's error otherwise.
std::optional<json> call(McpHttpClient& client, const std::string& tool, const json& args,
                         const std::function<void(const json&)>& on_progress = nullptr) {
  auto result = client.call_tool(tool, args, on_progress);
  if (!result) {
    fail(result.error().message);
    return std::nullopt;
  }
  if (result->value("isError", false)) {
    std::string text;
    for (const json& block : result->value("content", json::array())) text += block.value("text", "");
    fail(text.empty() ? tool + " failed" : text);
    return std::nullopt;
  }
  return result->value("structuredContent", json::object());
}

void print_json(const json& value) { std::cout << value.dump(2) << "\n"; }

bool is_terminal(const std::string& status) {
  return status == "completed" || status == "failed" || status == "cancelled";
}

// The exit code `result --wait` ends with.
int exit_code_of(const json& result) {
  const std::string status = result.value("status", "");
  if (status == "completed") return 0;
  if (status == "cancelled") return 130;
  if (result.value("reason", "") == "timeout") return 124;
  if (result.contains("exitCode") && result["exitCode"].is_number_integer()) {
    int code = result["exitCode"];
    return code == 0 ? 1 : code;
  }
  return 1;
}

// Prints new output of `stream` from `offset` until the task ends; returns
// the last getResult answer.
std::optional<json> follow(McpHttpClient& client, const std::string& id, const std::string& stream,
                           std::optional<std::chrono::steady_clock::time_point> deadline) {
  const bool bar = ::isatty(STDERR_FILENO) == 1;
  std::uint64_t offset = 0;
  for (;;) {
    json args{{"taskId", id}, {"stream", stream}, {"offset", offset}, {"waitSec", kFollowPollSec}};
    auto r = call(client, "getResult", args);
    if (!r) return std::nullopt;
    const json& window = r->value(stream, json::object());
    const std::string text = window.value("text", "");
    if (bar && !text.empty()) std::fputs(clear_line().c_str(), stderr);
    (stream == "stderr" ? std::cerr : std::cout) << text << std::flush;
    offset = window.value("nextOffset", offset);
    const bool more = window.value("nextOffset", offset) < window.value("totalBytes", offset);
    const bool done = is_terminal(r->value("status", ""));
    if (done && !more) {
      if (bar) std::fputs(clear_line().c_str(), stderr);
      return r;
    }
    if (bar && r->contains("progress")) std::fputs(progress_line(r->at("progress")).c_str(), stderr);
    if (deadline && std::chrono::steady_clock::now() > *deadline) {
      if (bar) std::fputs(clear_line().c_str(), stderr);
      fail("gave up waiting: the task is still " + r->value("status", std::string("running")));
      return std::nullopt;
    }
  }
}

// Long-polls until the task ends (or `deadline`).
std::optional<json> wait_end(McpHttpClient& client, const std::string& id,
                             std::optional<std::chrono::steady_clock::time_point> deadline) {
  for (;;) {
    auto r = call(client, "getResult", {{"taskId", id}, {"waitSec", kMaxWaitSec}});
    if (!r || is_terminal(r->value("status", ""))) return r;
    if (deadline && std::chrono::steady_clock::now() > *deadline) {
      fail("gave up waiting: the task is still " + r->value("status", std::string("running")));
      return std::nullopt;
    }
  }
}

void print_output(const json& result) {
  std::cout << result.value("stdout", json::object()).value("text", "") << std::flush;
  std::cerr << result.value("stderr", json::object()).value("text", "") << std::flush;
}

std::optional<std::chrono::steady_clock::time_point> deadline_after(double seconds) {
  if (seconds <= 0) return std::nullopt;
  return std::chrono::steady_clock::now() + std::chrono::milliseconds(static_cast<std::int64_t>(seconds * 1000));
}

// --- commands ----------------------------------------------------------------

struct SubmitOptions {
  SubmitFlags flags;
  bool wait = false;
  bool follow = false;
};

int run_submit(McpHttpClient& client, const Common& c, SubmitOptions& o) {
  auto args = submit_arguments(o.flags);
  if (!args) {
    std::fprintf(stderr, "mcp-orchestrator submit: %s\n", args.error().message.c_str());
    return 2;
  }
  auto r = call(client, "submitTask", *args);
  if (!r) return 1;
  const std::string id = r->value("taskId", "");
  if (!o.wait && !o.follow) {
    if (c.json_output) print_json(*r);
    else std::cout << describe_submit(*r) << "\n";
    return 0;
  }
  std::cerr << describe_submit(*r) << "\n";
  auto end = o.follow ? follow(client, id, "stdout", std::nullopt) : wait_end(client, id, std::nullopt);
  if (!end) return 1;
  if (c.json_output) print_json(*end);
  else if (!o.follow) print_output(*end);
  return exit_code_of(*end);
}

int run_status(McpHttpClient& client, const Common& c, const std::vector<std::string>& ids) {
  if (ids.empty()) {
    auto r = call(client, "getStatus", json::object());
    if (!r) return 1;
    if (c.json_output) print_json(*r);
    else std::cout << render_orchestrator(r->value("orchestrator", json::object()));
    return 0;
  }
  json tasks = json::array();
  int code = 0;
  for (const std::string& id : ids) {
    auto r = call(client, "getStatus", {{"taskId", id}});
    if (!r) {
      code = 1;
      continue;
    }
    tasks.push_back(r->value("task", json::object()));
  }
  if (c.json_output) print_json(json{{"tasks", tasks}});
  else std::cout << render_task_table(tasks, now_unix_ms());
  return code;
}

int run_list(McpHttpClient& client, const Common& c, const std::string& status, const std::string& tag,
             int limit, bool all) {
  json tasks = json::array();
  std::string cursor;
  do {
    json args{{"limit", limit}};
    if (!status.empty()) args["status"] = status;
    if (!tag.empty()) args["tag"] = tag;
    if (!cursor.empty()) args["cursor"] = cursor;
    auto r = call(client, "listTasks", args);
    if (!r) return 1;
    for (const json& t : r->value("tasks", json::array())) tasks.push_back(t);
    cursor = r->contains("nextCursor") && (*r)["nextCursor"].is_string() ? (*r)["nextCursor"].get<std::string>() : "";
  } while (all && !cursor.empty());
  if (c.json_output) print_json(json{{"tasks", tasks}});
  else std::cout << render_task_table(tasks, now_unix_ms());
  return 0;
}

int run_result(McpHttpClient& client, const Common& c, const std::string& id, bool wait, bool do_follow,
               const std::string& stream, double timeout_sec) {
  auto deadline = deadline_after(timeout_sec);
  std::optional<json> r;
  if (do_follow) r = follow(client, id, stream == "both" ? "stdout" : stream, deadline);
  else if (wait) r = wait_end(client, id, deadline);
  else r = call(client, "getResult", {{"taskId", id}, {"stream", stream}});
  if (!r) return 1;
  if (c.json_output) {
    print_json(*r);
  } else {
    std::cerr << describe_result(*r) << "\n";
    if (!do_follow) print_output(*r);
  }
  return wait || do_follow ? exit_code_of(*r) : 0;
}

int run_cancel(McpHttpClient& client, const Common& c, const std::vector<std::string>& ids, bool all,
               const std::string& tag) {
  if (ids.empty() && !all) {
    std::fprintf(stderr, "mcp-orchestrator cancel: name task ids, or --all (optionally with --tag)\n");
    return 2;
  }
  std::vector<json> answers;
  int code = 0;
  if (all) {
    json args{{"all", true}};
    if (!tag.empty()) args["tag"] = tag;
    if (auto r = call(client, "cancelTask", args)) answers.push_back(*r);
    else code = 1;
  }
  for (const std::string& id : ids) {
    if (auto r = call(client, "cancelTask", {{"taskId", id}})) answers.push_back(*r);
    else code = 1;
  }
  for (const json& a : answers) {
    if (c.json_output) {
      print_json(a);
      continue;
    }
    const json cancelled = a.value("cancelled", json::array());
    std::cout << (cancelled.empty() ? std::string("nothing to cancel") : "cancelled " + join_ids(cancelled)) << "\n";
  }
  return code;
}

int run_logs(McpHttpClient& client, const Common& c, const std::string& id, const std::string& stream,
             std::int64_t tail, bool do_follow) {
  if (do_follow) {
    auto r = follow(client, id, stream == "both" ? "stdout" : stream, std::nullopt);
    return r ? 0 : 1;
  }
  json args{{"taskId", id}, {"stream", stream}};
  if (tail > 0) {
    args["tail"] = true;
    args["maxBytes"] = tail;
  }
  auto r = call(client, "getResult", args);
  if (!r) return 1;
  if (c.json_output) print_json(*r);
  else print_output(*r);
  return 0;
}

// POST /admin/restart: the server re-execs itself in place (same pid); its
// clients keep their sessions.
int run_restart(const Common& c, const std::string& reason) {
  auto endpoint = find_endpoint(c);
  if (!endpoint) return fail(endpoint.error().message);
  auto http = transport::HttpClient::open(endpoint->url, {.read_timeout = std::chrono::seconds(30)});
  if (!http) return fail(http.error().message);
  transport::HttpHeaders headers;
  if (!endpoint->token.empty()) headers.emplace_back("Authorization", "Bearer " + endpoint->token);
  json body = json::object();
  if (!reason.empty()) body["reason"] = reason;
  auto res = (*http)->post("/admin/restart", headers, body.dump(), "application/json");
  if (!res) return fail("cannot reach " + endpoint->url + ": " + res.error().message);
  json answer = json::parse(res->body, nullptr, false);
  if (res->status != 202) {
    std::string message = answer.is_object() && answer.contains("error") ? answer["error"].value("message", res->body)
                                                                          : res->body;
    if (res->status == 401) message += " (token from " + endpoint->token_origin + ")";
    return fail("restart refused (HTTP " + std::to_string(res->status) + "): " + message);
  }
  if (c.json_output) print_json(answer);
  else std::cout << "restarting in place (pid " << answer.value("pid", 0) << ")\n";
  return 0;
}

}  // namespace

bool is_client_command(std::string_view word) {
  return std::find(kCommands.begin(), kCommands.end(), word) != kCommands.end();
}

int run(int argc, char** argv) {
  // `submit … -- CMD ARGS` runs an argv; everything after "--" is the task's.
  std::vector<std::string> task_argv;
  int parsed_argc = argc;
  for (int i = 2; i < argc; ++i) {
    if (std::string_view(argv[i]) == "--") {
      task_argv.assign(argv + i + 1, argv + argc);
      parsed_argc = i;
      break;
    }
  }
  const std::string command = argv[1];
  CLI::App app{"mcp-orchestrator " + command + ": talk to a running server over HTTP", "mcp-orchestrator " + command};
  Common common;
  add_common(app, common);

  SubmitOptions submit;
  std::vector<std::string> words, ids;
  std::string status, tag, stream = "both";
  int limit = 50;
  bool all = false, wait = false, do_follow = false;
  double timeout_sec = 0;
  std::int64_t tail = 0;
  if (command == "submit") {
    app.description("Queue a task: `submit [options] \"shell command\"` or `submit [options] -- PROGRAM ARGS...`.\n"
                    "--wait and --follow exit with the task's exit code (130 if cancelled, 124 on timeout).");
    app.add_option("command", words, "The shell command (one string), when no -- is given");
    app.add_option("--name", submit.flags.name, "A name to find the task by");
    app.add_option("--tag", submit.flags.tags, "A tag (repeatable)");
    app.add_option("--cwd", submit.flags.cwd, "Working directory");
    app.add_option("--env", submit.flags.env, "KEY=VALUE for the task's environment (repeatable)");
    app.add_option("--priority", submit.flags.priority, "0..10, higher runs first (default 5)");
    app.add_option("--timeout", submit.flags.timeout_sec, "Seconds before the task is stopped");
    app.add_option("--depends-on", submit.flags.depends_on, "A task id that must complete first (repeatable)");
    app.add_option("--retries", submit.flags.retries, "Retries after a failure");
    app.add_option("--idempotency-key", submit.flags.idempotency_key, "Submitting the same key again returns the first task");
    app.add_flag("--wait", submit.wait, "Wait for the task to end; print its output");
    app.add_flag("--follow", submit.follow, "Stream the task's output as it runs");
  } else if (command == "status") {
    app.description("Without ids: the server itself. With ids: those tasks.");
    app.add_option("ids", ids, "Task ids");
  } else if (command == "list") {
    app.description("Tasks, newest first.");
    app.add_option("--status", status, "queued, waiting, running, completed, failed or cancelled");
    app.add_option("--tag", tag, "Only tasks with this tag");
    app.add_option("--limit", limit, "Tasks per page (1..500)")->check(CLI::Range(1, 500));
    app.add_flag("--all", all, "Follow every page");
  } else if (command == "result") {
    app.description("A task's status and output. --wait/--follow exit with the task's exit code\n"
                    "(1 when it failed without one, 130 when cancelled, 124 when it timed out).");
    app.add_option("id", ids, "Task id")->required()->expected(1);
    app.add_flag("--wait", wait, "Wait until the task ends");
    app.add_flag("--follow", do_follow, "Stream the output as it is produced, with a progress bar on a terminal");
    app.add_option("--stream", stream, "stdout, stderr or both")->check(CLI::IsMember({"stdout", "stderr", "both"}));
    app.add_option("--timeout", timeout_sec, "Give up waiting after this many seconds (exit 1)");
  } else if (command == "cancel") {
    app.description("Cancel tasks: running ones get SIGTERM to their process group, then SIGKILL.");
    app.add_option("ids", ids, "Task ids");
    app.add_flag("--all", all, "Every live task (with --tag: those with the tag)");
    app.add_option("--tag", tag, "With --all: only tasks with this tag");
  } else if (command == "restart") {
    app.description("Restart the server in place (same pid): tasks keep running, clients keep their sessions.");
    app.add_option("--reason", tag, "Why, for the server's log and getStatus");
  } else if (command == "logs") {
    app.description("A task's output.");
    app.add_option("id", ids, "Task id")->required()->expected(1);
    app.add_option("--stream", stream, "stdout, stderr or both")->check(CLI::IsMember({"stdout", "stderr", "both"}));
    app.add_option("--tail", tail, "Only the last N bytes")->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 20));
    app.add_flag("--follow", do_follow, "Keep printing new output until the task ends");
  }
  try {
    app.parse(parsed_argc - 1, argv + 1);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  if (command == "submit") {
    if (!task_argv.empty() && !words.empty()) {
      std::fprintf(stderr, "mcp-orchestrator submit: give a shell command or -- PROGRAM ARGS, not both\n");
      return 2;
    }
    if (task_argv.empty() && words.size() != 1) {
      std::fprintf(stderr, "mcp-orchestrator submit: give one quoted shell command, or -- PROGRAM ARGS...\n");
      return 2;
    }
    submit.flags.argv = task_argv;
    if (!words.empty()) submit.flags.command = words.front();
  }

  if (command == "restart") return run_restart(common, tag);
  auto client = open_client(common);
  if (!client) return fail(client.error().message);
  McpHttpClient& mcp = **client;
  if (command == "submit") return run_submit(mcp, common, submit);
  if (command == "status") return run_status(mcp, common, ids);
  if (command == "list") return run_list(mcp, common, status, tag, limit, all);
  if (command == "result") return run_result(mcp, common, ids.front(), wait, do_follow, stream, timeout_sec);
  if (command == "cancel") return run_cancel(mcp, common, ids, all, tag);
  return run_logs(mcp, common, ids.front(), stream, tail, do_follow);
}

}  // namespace orch::app::client
