#!/usr/bin/env node
// Drives the real mcp-orchestrator binary over Streamable HTTP with the
// official MCP TypeScript SDK v1 client (Client +
// StreamableHTTPClientTransport), running the same tool checks as the stdio
// run (sdk_checks.mjs), plus what only HTTP has: the bearer token is required,
// the session ends with DELETE and its id is then refused with 404.
//
//   node sdk_http_check.mjs <binary> <state-dir>
//
// The server is started here with `--http 127.0.0.1:0`; its address and token
// come from <state-dir>/http.json and <state-dir>/http-token. It is stopped
// with SIGTERM at the end and must exit 0.

import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { CheckFailure, REQUEST, expect, ok, processGone, runToolChecks, waitFor } from './sdk_checks.mjs';
import { runNativeTaskChecks } from './sdk_tasks.mjs';

const [binary, stateDir] = process.argv.slice(2);
if (!binary || !stateDir) {
  console.error('usage: node sdk_http_check.mjs <mcp-orchestrator binary> <state-dir>');
  process.exit(2);
}
const TOTAL_LIMIT_MS = 90000;

const stderrLines = [];
const server = spawn(binary, ['--http', '127.0.0.1:0', '--state-dir', stateDir], {
  stdio: ['ignore', 'ignore', 'pipe'],
});
let serverExit = null;
server.once('exit', (code, signal) => { serverExit = { code, signal }; });
server.stderr.on('data', chunk => {
  for (const line of chunk.toString('utf8').split('\n')) {
    if (line.length === 0) continue;
    stderrLines.push(line);
    if (stderrLines.length > 60) stderrLines.shift();
  }
  if (process.env.ORCH_CHECK_VERBOSE) process.stderr.write(chunk);
});

function readEndpoint() {
  try {
    return JSON.parse(readFileSync(join(stateDir, 'http.json'), 'utf8'));
  } catch {
    return null;
  }
}

async function run() {
  expect(await waitFor(() => readEndpoint() !== null || serverExit !== null, 10000),
         'the server did not write http.json within 10 s');
  expect(serverExit === null, `the server exited at start: ${JSON.stringify(serverExit)}`);
  const endpoint = readEndpoint();
  const token = readFileSync(join(stateDir, 'http-token'), 'utf8').trim();
  const mcpUrl = new URL(endpoint.mcp);
  ok(`server listening: ${endpoint.mcp}`);

  // Without the token the SDK's connect must fail with a 401.
  const anonymous = new Client({ name: 'anonymous', version: '1.0.0' }, { capabilities: {} });
  let refused;
  try {
    await anonymous.connect(new StreamableHTTPClientTransport(mcpUrl), REQUEST);
  } catch (e) {
    refused = e;
  }
  // The SDK's StreamableHTTPError carries the HTTP status as its code.
  expect(refused && (refused.code === 401 || /\b401\b/.test(String(refused?.message ?? refused))),
         'connect without the bearer token should fail with HTTP 401', `code ${refused?.code}: ${refused}`);
  ok(`no token: refused with HTTP 401 (${String(refused.message).slice(0, 60)}…)`);

  const transport = new StreamableHTTPClientTransport(mcpUrl, {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  });
  const fromServer = [];
  transport.onmessage = message => fromServer.push(message);
  const protocolErrors = [];
  const client = new Client({ name: 'mcp-orchestrator-sdk-http-check', version: '1.0.0' }, { capabilities: {} });
  client.onerror = error => protocolErrors.push(String(error?.message ?? error));
  await client.connect(transport, REQUEST);
  const sessionId = transport.sessionId;
  expect(typeof sessionId === 'string' && sessionId.length >= 32, 'no Mcp-Session-Id after initialize', sessionId);
  ok(`session ${sessionId.slice(0, 8)}…`);

  await runToolChecks(client, fromServer, protocolErrors);
  await runNativeTaskChecks(client, fromServer);

  // DELETE ends the session; its id is then unknown (404), as the spec says.
  await transport.terminateSession();
  const after = await fetch(mcpUrl, {
    method: 'POST',
    headers: {
      Authorization: `Bearer ${token}`,
      'Content-Type': 'application/json',
      Accept: 'application/json, text/event-stream',
      'Mcp-Session-Id': sessionId,
      'MCP-Protocol-Version': '2025-11-25',
    },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
  });
  expect(after.status === 404, `a terminated session should get 404, got ${after.status}`, await after.text());
  ok('DELETE: the session ended and its id now gets 404');
  await client.close();
}

async function stopServer() {
  server.kill('SIGTERM');
  expect(await waitFor(() => serverExit !== null, 10000), 'the server did not exit within 10 s of SIGTERM');
  expect(serverExit.code === 0, `the server exited with ${JSON.stringify(serverExit)} after SIGTERM`);
  expect(processGone(server.pid), `server process ${server.pid} is still alive`);
  ok('SIGTERM: the server exited 0');
}

const watchdog = setTimeout(() => {
  console.error(`FAIL sdk_http_check: did not finish within ${TOTAL_LIMIT_MS / 1000} s`);
  dumpStderr();
  server.kill('SIGKILL');
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
  await stopServer();
} catch (e) {
  exitCode = 1;
  console.error(`FAIL ${e instanceof CheckFailure ? e.message : (e?.stack ?? String(e))}`);
  dumpStderr();
  server.kill('SIGKILL');
}
clearTimeout(watchdog);
process.exit(exitCode);
