#!/usr/bin/env bash
# Runs the official MCP conformance suite (@modelcontextprotocol/conformance,
# server mode; shared CONFORMANCE notes §3-§5) against the real binary's
# Streamable HTTP endpoint. The suite drives HTTP only and has no way to send
# a bearer token, so the server runs with --no-auth on 127.0.0.1 for it.
#
#   tests/clients/conformance_check.sh <binary> <state-dir>
#
# Runs every scenario: the stable release's active suite, and the 0.2.0
# prerelease with --requirements 2025-11-25 and --requirements 2026-07-28
# (exactly what each revision requires). Each run uses a baseline
# (conformance-baseline.yaml, conformance-baseline-2026-07-28.yaml) that lists
# only scenarios calling the suite's own test_* fixtures, each with the
# reason; any other failure, or a listed scenario that passes, fails the check. Needs Node >= 22
# first on PATH and `npm ci` done in tests/clients.
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
stable="$here/node_modules/@modelcontextprotocol/conformance/dist/index.js"
alpha="$here/node_modules/conformance-next/dist/index.js"
for tool in "$stable" "$alpha"; do
  [ -f "$tool" ] || { echo "FAIL $tool missing: run 'npm ci' in $here" >&2; exit 1; }
done

work="$(mktemp -d)"
server_pid=""
cleanup() {
  if [ -n "$server_pid" ] && kill -0 "$server_pid" 2>/dev/null; then
    kill -TERM "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$bin" --http 127.0.0.1:0 --no-auth --state-dir "$state" </dev/null 2>"$work/server.err" &
server_pid=$!
for _ in $(seq 1 100); do
  [ -f "$state/http.json" ] && break
  kill -0 "$server_pid" 2>/dev/null || { cat "$work/server.err" >&2; echo "FAIL the server exited at start" >&2; exit 1; }
  sleep 0.1
done
[ -f "$state/http.json" ] || { echo "FAIL the server did not write http.json within 10 s" >&2; exit 1; }
url="$(node -e 'console.log(JSON.parse(require("fs").readFileSync(process.argv[1], "utf8")).mcp)' "$state/http.json")"
echo "server: $url"

failed=0
# run <label> <baseline> <index.js> <args...>: one suite run, its output kept
# for failures; prints the suite's totals and the scenarios the baseline
# expected to fail.
run() {
  local label="$1" baseline="$here/$2" tool="$3"
  shift 3
  local out="$work/run$((++runs)).out"
  if timeout -k 5 300 node "$tool" server --url "$url" "$@" --expected-failures "$baseline" </dev/null >"$out" 2>&1; then
    local total expected
    total="$(grep -E '^Total: ' "$out" | tail -1)"
    expected="$(grep -cE '^ +~ ' "$out" || true)"
    echo "ok  $label: ${total:-no total line}; ${expected} of the failures are baseline fixture scenarios"
  else
    echo "FAIL $label" >&2
    sed -n '/=== SUMMARY ===/,$p' "$out" | sed 's/^/    /' >&2
    grep -A12 'Failed Checks' "$out" | head -n 80 | sed 's/^/    /' >&2
    failed=1
  fi
}
runs=0

stable_version="$(node "$stable" --version 2>/dev/null || echo stable)"
alpha_version="$(node "$alpha" --version 2>/dev/null || echo next)"
run "conformance $stable_version active suite" conformance-baseline.yaml "$stable" --suite active
run "conformance $alpha_version --requirements 2025-11-25" conformance-baseline.yaml "$alpha" --requirements 2025-11-25
run "conformance $alpha_version --requirements 2026-07-28" conformance-baseline-2026-07-28.yaml "$alpha" \
  --requirements 2026-07-28

kill -TERM "$server_pid"
if ! wait "$server_pid"; then
  echo "FAIL the server did not exit 0 after SIGTERM" >&2
  tail -n 30 "$work/server.err" >&2
  failed=1
fi
server_pid=""
if [ "$failed" -ne 0 ]; then
  echo "--- server stderr (last 30 lines):" >&2
  tail -n 30 "$work/server.err" >&2 || true
  exit 1
fi
echo "conformance: every scenario passed or is a baseline fixture scenario"
