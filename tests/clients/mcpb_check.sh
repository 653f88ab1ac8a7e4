#!/usr/bin/env bash
# The MCPB bundle: `mcpb validate manifest.json` (the pinned
# @anthropic-ai/mcpb), the manifest's tools and version against the real
# binary's tools/list and --version, then scripts/pack-mcpb with the given
# binary, and the packed .mcpb unzipped and started the way Claude Desktop
# starts it (mcp_config with ${__dirname} and the user_config defaults filled
# in) to answer initialize and a tool call.
#
#   tests/clients/mcpb_check.sh <binary> <work-dir>
#
# CI packs the dev binary it already built (the bundle's layout and manifest
# are what is checked; a release build would add minutes for the same
# answer); scripts/pack-mcpb without --binary packs a release build for users.
set -euo pipefail
if [ $# -ne 2 ]; then
  echo "usage: $0 <mcp-orchestrator binary> <work-dir>" >&2
  exit 2
fi
bin="$(realpath "$1")"
mkdir -p "$2"
work="$(realpath "$2")"
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
mcpb="$here/node_modules/.bin/mcpb"
[ -x "$mcpb" ] || { echo "FAIL $mcpb missing: run 'npm ci' in $here" >&2; exit 1; }

fail() {
  echo "FAIL $1" >&2
  shift
  for f in "$@"; do [ -f "$f" ] && { echo "--- $f" >&2; sed 's/^/    /' "$f" >&2; }; done
  exit 1
}

"$mcpb" validate "$root/manifest.json" </dev/null >"$work/validate.txt" 2>&1 || fail "mcpb validate manifest.json" "$work/validate.txt"
grep -q "Manifest schema validation passes" "$work/validate.txt" || fail "mcpb validate printed no pass" "$work/validate.txt"
echo "ok   mcpb validate manifest.json: $(head -1 "$work/validate.txt")"

"$root/scripts/pack-mcpb" --binary "$bin" --out "$work/mcp-orchestrator.mcpb" </dev/null >"$work/pack.txt" 2>&1 ||
  fail "scripts/pack-mcpb" "$work/pack.txt"
echo "ok   packed $(grep -Eo 'package size: .*' "$work/pack.txt" || echo "$work/mcp-orchestrator.mcpb")"

mkdir -p "$work/unpacked"
unzip -q "$work/mcp-orchestrator.mcpb" -d "$work/unpacked" || fail "the .mcpb is not a zip"
cmp -s "$work/unpacked/manifest.json" "$root/manifest.json" || fail "the bundle's manifest.json differs from the repository's"
[ -x "$work/unpacked/server/mcp-orchestrator" ] || fail "the bundle has no executable server/mcp-orchestrator"
for part in mcp-orchestrator-keeper mcp-orchestrator-http.so; do
  [ -f "$work/unpacked/server/$part" ] || fail "the bundle has no server/$part beside the binary"
done
echo "ok   unpacked: manifest.json and an executable server/mcp-orchestrator with its keeper and HTTP module"

node "$here/mcpb_bundle_check.mjs" "$root/manifest.json" "$bin" "$work/unpacked" "$work/state" </dev/null
echo "mcpb: all checks passed"
