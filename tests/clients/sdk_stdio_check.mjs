#!/usr/bin/env node
// Drives the real mcp-orchestrator binary over stdio with the official MCP
// TypeScript SDK v1 client (Client + StdioClientTransport), the way an editor
// does: initialize, tools/list, then every tool through client.callTool.
//
//   node sdk_stdio_check.mjs <binary> <state-dir>
//
// The checks themselves are in sdk_checks.mjs (shared with the HTTP run).
// One line per check; the first failure prints the evidence (and the tail of
// the server's stderr) and exits 1. The client is always closed and the server
// process must be gone afterwards.

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CheckFailure, REQUEST, expect, fail, ok, processGone, runToolChecks, waitFor } from './sdk_checks.mjs';
import { runNativeTaskChecks } from './sdk_tasks.mjs';

const [binary, stateDir] = process.argv.slice(2);
if (!binary || !stateDir) {
  console.error('usage: node sdk_stdio_check.mjs <mcp-orchestrator binary> <state-dir>');
  process.exit(2);
}

const TOTAL_LIMIT_MS = 60000;

const stderrLines = [];
function keepStderr(chunk) {
  for (const line of chunk.toString('utf8').split('\n')) {
    if (line.length === 0) continue;
    stderrLines.push(line);
    if (stderrLines.length > 60) stderrLines.shift();
  }
}

// ---------------------------------------------------------------- client

const transport = new StdioClientTransport({
  command: binary,
  args: ['--state-dir', stateDir],
  stderr: 'pipe',
});
transport.stderr?.on('data', chunk => {
  keepStderr(chunk);
  if (process.env.ORCH_CHECK_VERBOSE) process.stderr.write(chunk);
});

// Taps every server-to-client message (Protocol.connect chains an onmessage
// set before connect) and every transport/protocol error (stdout noise that is
// not JSON-RPC, progress for an unknown or finished request, ...).
const fromServer = [];
transport.onmessage = message => fromServer.push(message);
const protocolErrors = [];

const client = new Client({ name: 'mcp-orchestrator-sdk-check', version: '1.0.0' }, { capabilities: {} });
client.onerror = error => protocolErrors.push(String(error?.message ?? error));

let child = null;
let childExit = null;

// ---------------------------------------------------------------- the checks

async function run() {
  // connect = spawn + initialize + notifications/initialized
  await client.connect(transport, REQUEST);
  child = transport._process ?? null;   // private in the SDK; used only to watch the exit
  child?.once('exit', (code, signal) => { childExit = { code, signal }; });
  await runToolChecks(client, fromServer, protocolErrors);
  await runNativeTaskChecks(client, fromServer);
}

// ---------------------------------------------------------------- main

async function closeAndCheckExit() {
  const pid = transport.pid ?? child?.pid;
  const t0 = Date.now();
  await client.close();   // ends stdin; SIGTERM after 2 s, SIGKILL after 4 s
  const ms = Date.now() - t0;
  if (pid == null) return;
  await waitFor(() => childExit !== null || processGone(pid), 3000);
  expect(processGone(pid), `close: server process ${pid} is still alive after client.close()`);
  if (childExit?.signal) {
    fail(`close: the server did not exit when its stdin closed; the SDK had to send ${childExit.signal} ` +
         `(after ${ms} ms)`);
  }
  expect(!childExit || childExit.code === 0, `close: the server exited with code ${childExit?.code}`);
  ok(`close: server exited by itself after stdin closed (code ${childExit?.code ?? '?'}, ${ms} ms)`);
}

const watchdog = setTimeout(() => {
  console.error(`FAIL sdk_stdio_check: did not finish within ${TOTAL_LIMIT_MS / 1000} s`);
  dumpStderr();
  try { child?.kill('SIGKILL'); } catch { /* gone */ }
  process.exit(1);
}, TOTAL_LIMIT_MS);
watchdog.unref();

function dumpStderr() {
  if (stderrLines.length) {
    console.error('--- last lines of the server\'s stderr:');
    for (const line of stderrLines.slice(-30)) console.error(`    ${line}`);
  }
}

let exitCode = 0;
try {
  await run();
  await closeAndCheckExit();
} catch (e) {
  exitCode = 1;
  const msg = e instanceof CheckFailure ? e.message : (e?.stack ?? String(e));
  console.error(`FAIL ${msg}`);
  if (protocolErrors.length) console.error(`--- protocol errors:\n    ${protocolErrors.join('\n    ')}`);
  dumpStderr();
  try { await client.close(); } catch { /* already closed */ }
  try { child?.kill('SIGKILL'); } catch { /* gone */ }
}
clearTimeout(watchdog);
process.exit(exitCode);
