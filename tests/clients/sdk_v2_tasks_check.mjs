#!/usr/bin/env node
// The TypeScript SDK v2 client (@modelcontextprotocol/client, pinned to the
// 2026-07-28 era) with the Tasks extension's requester
// (@modelcontextprotocol/ext-tasks) against the real binary over Streamable
// HTTP: server/discover, then session.callTool("runTask") → CreateTaskResult
// → tasks/get until the outcome. ext-tasks sends its 2026-07-28 task traffic
// through a raw dispatch the host provides; this one is a plain POST with the
// headers the era requires (MCP-Protocol-Version, Mcp-Method, Mcp-Name).
//
//   node sdk_v2_tasks_check.mjs <binary> <state-dir>

import { spawn } from 'node:child_process';
import { readFileSync, existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { createTaskSessionFromClient, resultFromTaskOutcome } from '@modelcontextprotocol/ext-tasks/client';
import { CheckFailure, expect, ok, processGone, waitFor } from './sdk_checks.mjs';

const [binary, stateDir] = process.argv.slice(2);
if (!binary || !stateDir) {
  console.error('usage: node sdk_v2_tasks_check.mjs <mcp-orchestrator binary> <state-dir>');
  process.exit(2);
}
mkdirSync(stateDir, { recursive: true });
const TASKS = 'io.modelcontextprotocol/tasks';
const clientInfo = { name: 'mcp-orchestrator-sdk-v2-check', version: '1.0.0' };
const clientCapabilities = { extensions: { [TASKS]: {} } };

const stderrLines = [];
const server = spawn(binary, ['--http', '127.0.0.1:0', '--state-dir', stateDir], { stdio: ['ignore', 'ignore', 'pipe'] });
server.stderr.on('data', c => { for (const l of c.toString().split('\n')) if (l) stderrLines.push(l); });
let serverExit = null;
server.on('exit', (code, signal) => { serverExit = { code, signal }; });

const nameParam = { 'tools/call': 'name', 'prompts/get': 'name', 'resources/read': 'uri',
                    'tasks/get': 'taskId', 'tasks/update': 'taskId', 'tasks/cancel': 'taskId' };

async function run() {
  const endpoint = path.join(stateDir, 'http.json');
  expect(await waitFor(() => existsSync(endpoint), 10000), 'the server did not write http.json within 10 s');
  const url = JSON.parse(readFileSync(endpoint, 'utf8')).mcp;
  const token = readFileSync(path.join(stateDir, 'http-token'), 'utf8').trim();
  const auth = { Authorization: `Bearer ${token}` };

  const client = new Client(clientInfo, { capabilities: clientCapabilities,
                                          versionNegotiation: { mode: { pin: '2026-07-28' } } });
  await client.connect(new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers: auth } }));
  expect(client.getProtocolEra() === 'modern', `the SDK v2 client should be in the modern era, is ${client.getProtocolEra()}`);
  const caps = client.getServerCapabilities();
  expect(caps?.extensions?.[TASKS], 'server/discover: capabilities.extensions lacks the Tasks extension', caps);
  ok(`SDK v2 connected in the 2026-07-28 era; server/discover declares ${TASKS}`);
  const { tools } = await client.listTools();
  expect(tools.some(t => t.name === 'runTask'), 'tools/list (modern): runTask missing', tools.map(t => t.name));
  ok(`tools/list (modern): ${tools.length} tools`);

  const seen = [];
  let rawId = 1000;
  const rawDispatch = async request => {
    seen.push(request.method);
    const headers = { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
                      'MCP-Protocol-Version': '2026-07-28', 'Mcp-Method': request.method, ...auth };
    const key = nameParam[request.method];
    if (key && typeof request.params?.[key] === 'string') headers['Mcp-Name'] = request.params[key];
    // The host owns the JSON-RPC envelope: ext-tasks hands over method and params.
    const message = { jsonrpc: '2.0', id: ++rawId, ...request };
    const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(message) });
    const body = await res.json();
    if (process.env.ORCH_CHECK_VERBOSE) console.error(JSON.stringify(message).slice(0, 400), '->', JSON.stringify(body).slice(0, 400));
    return body;
  };
  const session = createTaskSessionFromClient(client, {
    endpointId: 'mcp-orchestrator-check', rawDispatch,
    v2RequestFraming: { protocolVersion: '2026-07-28', clientInfo, clientCapabilities },
  });
  try {
    const execution = await session.callTool('runTask', { command: 'echo from-ext-tasks; sleep 0.3' });
    const { outcome } = await execution.settle();
    const result = resultFromTaskOutcome(outcome);
    const sc = result?.structuredContent;
    expect(sc?.status === 'completed' && sc.stdout?.text === 'from-ext-tasks\n',
           'ext-tasks: the settled outcome should be the completed command', { outcome, result });
    expect(seen.includes('tools/call') && seen.includes('tasks/get'),
           'ext-tasks: expected tools/call then tasks/get on the wire', seen);
    ok(`ext-tasks session.callTool runTask: ${seen.join(' → ')}; outcome completed, stdout "from-ext-tasks\\n"`);
    const status = await client.callTool({ name: 'getStatus', arguments: { taskId: sc.taskId } });
    expect(status.structuredContent?.task?.status === 'completed', 'getStatus: the task is the engine task', status);
    ok(`getStatus sees ${sc.taskId} completed: the extension's task is the engine task`);
  } finally {
    await session.close();
    await client.close();
  }
}

let exitCode = 0;
const watchdog = setTimeout(() => { console.error('FAIL sdk_v2_tasks_check: no end within 60 s'); server.kill('SIGKILL'); process.exit(1); }, 60000);
try {
  await run();
  server.kill('SIGTERM');
  expect(await waitFor(() => serverExit !== null, 10000), 'the server did not exit within 10 s of SIGTERM');
  expect(serverExit.code === 0 && processGone(server.pid), `the server exited with ${JSON.stringify(serverExit)}`);
  ok('SIGTERM: the server exited 0');
} catch (e) {
  exitCode = 1;
  console.error(`FAIL ${e instanceof CheckFailure ? e.message : (e?.stack ?? String(e))}`);
  for (const l of stderrLines.slice(-20)) console.error(`    ${l}`);
  server.kill('SIGKILL');
}
clearTimeout(watchdog);
process.exit(exitCode);
