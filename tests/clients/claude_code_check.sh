#!/usr/bin/env bash
# Registers the real mcp-orchestrator binary with the real Claude Code CLI
# (@anthropic-ai/claude-code, pinned in package-lock.json) using exactly the
# `claude mcp add` lines that `mcp-orchestrator install claude-code` prints,
# once over stdio and once over Streamable HTTP with the bearer token, and
# requires `claude mcp list` to report both "✔ Connected" (Claude Code's own
# client completed initialize and tools/list), then "✘ Failed" for HTTP with a
# wrong token. The entries `install claude-code --write` merges into Claude
# Code's user file and a project's .mcp.json must connect too. `claude mcp list` exits 0 either way, so its text is checked.
#
#   tests/clients/claude_code_check.sh <binary> <work-dir>
#
# Runs with a throwaway HOME and CLAUDE_CONFIG_DIR, no login, telemetry,
# auto-update and non-essential traffic off; the HTTP server listens on
# 127.0.0.1 only and is stopped before the script ends.
set -euo pipefail

if [ $# -ne 2 ]; then
  echo "usage: $0 <mcp-orchestrator binary> <work-dir>" >&2
  exit 2
fi
bin="$(realpath "$1")"
mkdir -p "$2"
work="$(realpath "$2")"
here="$(cd "$(dirname "$0")" && pwd)"
# The package's postinstall only copies this native binary over a placeholder
# (bin/claude.exe); with --ignore-scripts it stays where npm put it.
case "$(uname -m)" in
  aarch64|arm64) claude_arch=arm64 ;;
  *) claude_arch=x64 ;;
esac
claude_native="$here/node_modules/@anthropic-ai/claude-code-linux-$claude_arch/claude"
[ -x "$claude_native" ] || { echo "FAIL $claude_native missing: run 'npm ci' in $here" >&2; exit 1; }

mkdir -p "$work/home" "$work/bin" "$work/project"
ln -sf "$claude_native" "$work/bin/claude"
export HOME="$work/home"
export CLAUDE_CONFIG_DIR="$work/home/.claude"
export XDG_CONFIG_HOME="$work/home/.config" XDG_STATE_HOME="$work/home/.local/state"
export DISABLE_TELEMETRY=1 DISABLE_AUTOUPDATER=1 CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1
export DISABLE_ERROR_REPORTING=1 MCP_TIMEOUT=10000
export PATH="$work/bin:$PATH"
unset ANTHROPIC_API_KEY ORCH_TOKEN ORCH_URL
cd "$work/project"

server_pid=""
stop_server() {
  [ -n "$server_pid" ] || return 0
  kill -TERM "$server_pid" 2>/dev/null || true
  local deadline=$((SECONDS + 10))
  while kill -0 "$server_pid" 2>/dev/null && [ $SECONDS -lt $deadline ]; do
    sleep 0.05  # poll interval
  done
  kill -KILL "$server_pid" 2>/dev/null || true
  wait "$server_pid" 2>/dev/null || true
  server_pid=""
}
trap stop_server EXIT

fail() {
  echo "FAIL $1" >&2
  shift
  for f in "$@"; do [ -f "$f" ] && { echo "--- $f" >&2; sed 's/^/    /' "$f" >&2; }; done
  exit 1
}

# The one `claude mcp add …` line in what `install claude-code` printed.
add_line() {
  local printed="$1" line
  line="$(grep -E '^claude mcp add --scope ' "$printed" || true)"
  [ "$(printf '%s\n' "$line" | grep -c .)" -eq 1 ] || fail "install claude-code printed no single 'claude mcp add' line" "$printed"
  printf '%s\n' "$line"
}

"$work/bin/claude" --version >"$work/version.txt" </dev/null
echo "ok   claude $(cat "$work/version.txt")"

# stdio: the editor starts this binary itself.
"$bin" install claude-code --state-dir "$work/stdio-state" >"$work/install-stdio.txt" </dev/null ||
  fail "install claude-code exited $?" "$work/install-stdio.txt"
line="$(add_line "$work/install-stdio.txt")"
echo "run  $line"
bash -c "$line" </dev/null >"$work/add-stdio.txt" 2>&1 || fail "claude mcp add (stdio) exited $?" "$work/add-stdio.txt"

# HTTP: a running server found through its state directory.
"$bin" --http 127.0.0.1:0 --state-dir "$work/http-state" </dev/null >"$work/http-server.out" 2>"$work/http-server.err" &
server_pid=$!
deadline=$((SECONDS + 20))
until [ -s "$work/http-state/http.json" ]; do
  kill -0 "$server_pid" 2>/dev/null || fail "the HTTP server exited" "$work/http-server.err"
  [ $SECONDS -lt $deadline ] || fail "the HTTP server wrote no http.json within 20 s" "$work/http-server.err"
  sleep 0.05  # poll interval; the deadline above bounds the wait
done
"$bin" install claude-code --http --name orchestrator-http --state-dir "$work/http-state" \
  >"$work/install-http.txt" </dev/null || fail "install claude-code --http exited $?" "$work/install-http.txt"
line="$(add_line "$work/install-http.txt")"
echo "run  $line"
bash -c "$line" </dev/null >"$work/add-http.txt" 2>&1 || fail "claude mcp add (http) exited $?" "$work/add-http.txt"
token="$(cat "$work/http-state/http-token")"
[ -n "$token" ] || fail "no token in $work/http-state/http-token"
if grep -rqF "$token" "$CLAUDE_CONFIG_DIR" "$work/install-http.txt"; then
  fail "the bearer token was written into Claude Code's config or printed"
fi

# --write: into Claude Code's own user file (which claude mcp add made above,
# with its own settings in it), and a project's .mcp.json. A project server
# waits for approval in `claude`; record it the way approving does.
"$bin" install claude-code --write --name orchestrator-written --state-dir "$work/written-state" \
  >"$work/write-user.txt" </dev/null || fail "install claude-code --write exited $?" "$work/write-user.txt"
grep -q "^backup of the previous file: $CLAUDE_CONFIG_DIR/.claude.json.bak" "$work/write-user.txt" ||
  fail "install --write kept no backup of Claude Code's file" "$work/write-user.txt"
"$bin" install claude-code --scope project --write --name orchestrator-project --state-dir "$work/project-state" \
  >"$work/write-project.txt" </dev/null || fail "install claude-code --scope project --write exited $?" "$work/write-project.txt"
[ -f "$work/project/.mcp.json" ] || fail "no .mcp.json in the project" "$work/write-project.txt"
node -e '
  const fs = require("fs");
  const [file, project] = process.argv.slice(1);
  const config = JSON.parse(fs.readFileSync(file, "utf8"));
  config.projects = config.projects || {};
  config.projects[project] = { ...(config.projects[project] || {}), hasTrustDialogAccepted: true,
                               enabledMcpjsonServers: ["orchestrator-project"] };
  fs.writeFileSync(file, JSON.stringify(config, null, 2));
' "$CLAUDE_CONFIG_DIR/.claude.json" "$work/project"

# list_servers <token> <out>: `claude mcp list` with ORCH_TOKEN set for the header reference.
list_servers() {
  ORCH_TOKEN="$1" timeout -k 5 90 "$work/bin/claude" mcp list </dev/null >"$2" 2>&1 ||
    fail "claude mcp list exited $?" "$2"
}

list_servers "$token" "$work/list.txt"
sed 's/^/     /' "$work/list.txt"
grep -E "^orchestrator: .*$bin.* - ✔ Connected$" "$work/list.txt" >/dev/null ||
  fail "stdio server not ✔ Connected" "$work/list.txt" "$work/install-stdio.txt"
grep -E '^orchestrator-http: http://127\.0\.0\.1:[0-9]+/mcp \(HTTP\) - ✔ Connected$' "$work/list.txt" >/dev/null ||
  fail "HTTP server not ✔ Connected" "$work/list.txt" "$work/http-server.err"
sessions_before="$(grep -c 'session initialized by claude-code' "$work/http-server.err" || true)"
[ "$sessions_before" -ge 1 ] || fail "the HTTP server logged no session from Claude Code" "$work/http-server.err"
grep -E "^orchestrator-written: .* - ✔ Connected$" "$work/list.txt" >/dev/null ||
  fail "the entry install --write merged into Claude Code's user file is not ✔ Connected" "$work/list.txt"
grep -E "^orchestrator-project: .* - ✔ Connected$" "$work/list.txt" >/dev/null ||
  fail "the entry install --scope project --write put in .mcp.json is not ✔ Connected" "$work/list.txt"
echo "ok   stdio and HTTP registrations, and both --write files: ✔ Connected"

list_servers "0000000000000000000000000000000000000000000000000000000000000000" "$work/list-wrong.txt"
sed 's/^/     /' "$work/list-wrong.txt"
grep -E '^orchestrator-http: .* - ✘ Failed' "$work/list-wrong.txt" >/dev/null ||
  fail "HTTP with a wrong token was not ✘ Failed" "$work/list-wrong.txt"
grep -E '^orchestrator: .* - ✔ Connected$' "$work/list-wrong.txt" >/dev/null ||
  fail "stdio server not ✔ Connected in the wrong-token run" "$work/list-wrong.txt"
# It was the token: the server saw no new session from Claude Code in that run.
sessions="$(grep -c 'session initialized by claude-code' "$work/http-server.err" || true)"
[ "$sessions" -eq "$sessions_before" ] ||
  fail "a session was initialized with the wrong token ($sessions_before before, $sessions after)" "$work/http-server.err"
echo "ok   wrong token: ✘ Failed"

stop_server
echo "claude-code: all checks passed"
