#!/usr/bin/env node
// The files `mcp-orchestrator install cursor|vscode|claude-desktop --write`
// writes, checked against each editor's documented shape (shared
// research/peers.md §4) and then used the way the editor uses them: the
// official MCP TypeScript SDK client starts the server from the command, args
// and env read from that very file (stdio), or connects to the url with the
// headers from the file, the token reference resolved the way the editor
// would (HTTP). Each file starts with another server in it, which must
// survive the merge.
//
//   node editor_configs_check.mjs <binary> <work-dir>
//
// Throwaway HOME and XDG_CONFIG_HOME under <work-dir>; the HTTP server binds
// 127.0.0.1 and is stopped at the end. One line per check; exits 1 on the
// first failure with the evidence.

import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [binaryArg, workArg] = process.argv.slice(2);
if (!binaryArg || !workArg) {
  console.error('usage: node editor_configs_check.mjs <mcp-orchestrator binary> <work-dir>');
  process.exit(2);
}
const binary = fs.realpathSync(binaryArg);
fs.mkdirSync(workArg, { recursive: true });
const work = fs.realpathSync(workArg);
const home = path.join(work, 'home');
const configHome = path.join(home, '.config');
const project = path.join(work, 'project');
fs.mkdirSync(project, { recursive: true });
const env = { ...process.env, HOME: home, XDG_CONFIG_HOME: configHome, XDG_STATE_HOME: path.join(home, '.local/state') };
delete env.ORCH_TOKEN;
delete env.CLAUDE_CONFIG_DIR;

const TOOLS = ['cancelTask', 'getResult', 'getStatus', 'listTasks', 'runTask', 'submitTask'];
const OTHER = { command: '/usr/bin/other-server', args: ['--flag'] };

function ok(what) { console.log(`ok   ${what}`); }
function fail(what, evidence) {
  console.error(`FAIL ${what}`);
  if (evidence !== undefined) console.error(typeof evidence === 'string' ? evidence : JSON.stringify(evidence, null, 2));
  cleanup();
  process.exit(1);
}
function expect(condition, what, evidence) { if (!condition) fail(what, evidence); }
const isStringArray = v => Array.isArray(v) && v.every(s => typeof s === 'string');
const isStringMap = v => v && typeof v === 'object' && !Array.isArray(v) && Object.values(v).every(s => typeof s === 'string');

function install(args) {
  const r = spawnSync(binary, ['install', ...args], { env, cwd: project, encoding: 'utf8', timeout: 20000 });
  expect(r.status === 0, `install ${args.join(' ')} exited ${r.status}`, r.stderr + r.stdout);
  return r.stdout;
}

function seed(file, key) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify({ [key]: { other: OTHER } }, null, 2));
}

function readConfig(file) {
  const text = fs.readFileSync(file, 'utf8');
  try { return { text, json: JSON.parse(text) }; } catch (e) { fail(`${file} is not JSON`, text); }
}

// Documented shapes (peers.md §4). stdio: Cursor and Desktop {command, args?, env?};
// VS Code {type: "stdio", command, args?, env?} under "servers".
function checkStdioShape(editor, entry) {
  const allowed = editor === 'vscode' ? ['type', 'command', 'args', 'env'] : ['command', 'args', 'env'];
  for (const k of Object.keys(entry)) expect(allowed.includes(k), `${editor}: unexpected key "${k}" in a stdio entry`, entry);
  if (editor === 'vscode') expect(entry.type === 'stdio', 'vscode: stdio entry needs type "stdio"', entry);
  expect(typeof entry.command === 'string' && path.isAbsolute(entry.command), `${editor}: command must be an absolute path`, entry);
  expect(entry.args === undefined || isStringArray(entry.args), `${editor}: args must be an array of strings`, entry);
  expect(entry.env === undefined || isStringMap(entry.env), `${editor}: env must map strings to strings`, entry);
}

async function connectAndList(transport, what) {
  const client = new Client({ name: 'editor-config-check', version: '1.0.0' }, { capabilities: {} });
  try {
    await client.connect(transport);
    const { tools } = await client.listTools(undefined, { timeout: 20000 });
    const names = tools.map(t => t.name).sort();
    expect(JSON.stringify(names) === JSON.stringify(TOOLS), `${what}: tools/list`, names);
    const status = await client.callTool({ name: 'getStatus', arguments: {} }, undefined, { timeout: 20000 });
    expect(!status.isError && status.structuredContent?.orchestrator, `${what}: getStatus`, status);
    ok(`${what}: initialize, tools/list (${names.length} tools), getStatus`);
    return status.structuredContent;
  } finally {
    await client.close();
  }
}

let server = null;
function cleanup() {
  if (server && server.exitCode === null) server.kill('SIGTERM');
}

async function stdioCase(editor, file, key) {
  seed(file, key);
  const stateDir = path.join(work, `state-${editor}`);
  install([editor, '--state-dir', stateDir, '--write']);
  const { json } = readConfig(file);
  expect(JSON.stringify(json[key]?.other) === JSON.stringify(OTHER), `${editor}: the other server did not survive`, json);
  expect(fs.readFileSync(`${file}.bak`, 'utf8').includes('other-server'), `${editor}: no backup of the old file`);
  const entry = json[key]?.orchestrator;
  expect(entry, `${editor}: no "${key}.orchestrator" in ${file}`, json);
  checkStdioShape(editor, entry);
  expect(entry.command === binary, `${editor}: command is not this binary`, entry);
  if (editor === 'claude-desktop') {
    expect(typeof entry.env?.PATH === 'string' && entry.env.PATH.length > 0, 'claude-desktop: env.PATH for a GUI app', entry);
  }
  ok(`${editor}: ${path.relative(work, file)} has the documented stdio shape, other server and backup kept`);
  expect(JSON.stringify(entry.args) === JSON.stringify(['--state-dir', stateDir]), `${editor}: args carry --state-dir`, entry);
  // The editor's own start: command, args and env exactly as in the file.
  const transport = new StdioClientTransport({
    command: entry.command,
    args: entry.args ?? [],
    env: { HOME: home, ...(entry.env ?? {}) },
    stderr: 'ignore',
  });
  await connectAndList(transport, `${editor} (stdio, from the file)`);
  expect(fs.existsSync(path.join(stateDir, 'tasks.db')), `${editor}: the server did not use the state dir from the file's args`);
}

// Resolves the token reference the way each editor does.
function resolveHeaders(editor, headers, token) {
  const out = {};
  for (const [k, v] of Object.entries(headers ?? {})) {
    out[k] = v.replace(/\$\{env:ORCH_TOKEN\}/g, editor === 'cursor' ? token : '$&')
              .replace(/\$\{input:orchestrator-token\}/g, editor === 'vscode' ? token : '$&');
  }
  return out;
}

async function httpCase(editor, file, key, stateDir, url, token, scopeArgs) {
  seed(file, key);
  install([editor, '--http', '--state-dir', stateDir, ...scopeArgs, '--write']);
  const { text, json } = readConfig(file);
  expect(!text.includes(token), `${editor}: the token is in ${file}`);
  expect(JSON.stringify(json[key]?.other) === JSON.stringify(OTHER), `${editor}: the other server did not survive`, json);
  const entry = json[key]?.orchestrator;
  expect(entry && entry.url === url, `${editor}: url`, entry);
  if (editor === 'vscode') {
    expect(entry.type === 'http', 'vscode: http entry needs type "http"', entry);
    expect(entry.headers?.Authorization === 'Bearer ${input:orchestrator-token}', 'vscode: header by input', entry);
    const input = (json.inputs ?? []).find(i => i.id === 'orchestrator-token');
    expect(input && input.type === 'promptString' && input.password === true, 'vscode: password promptString input', json.inputs);
  } else {
    expect(entry.headers?.Authorization === 'Bearer ${env:ORCH_TOKEN}', 'cursor: header by ${env:ORCH_TOKEN}', entry);
    expect(!('command' in entry), 'cursor: an HTTP entry has no command', entry);
  }
  ok(`${editor}: ${path.relative(work, file)} has the documented HTTP shape, no token in it`);
  const headers = resolveHeaders(editor, entry.headers, token);
  await connectAndList(new StreamableHTTPClientTransport(new URL(entry.url), { requestInit: { headers } }),
                       `${editor} (HTTP, url and headers from the file)`);
}

async function main() {
  const timer = setTimeout(() => fail('editor config checks did not finish within 120 s'), 120000);
  await stdioCase('cursor', path.join(home, '.cursor/mcp.json'), 'mcpServers');
  await stdioCase('vscode', path.join(configHome, 'Code/User/mcp.json'), 'servers');
  await stdioCase('claude-desktop', path.join(configHome, 'Claude/claude_desktop_config.json'), 'mcpServers');

  const stateDir = path.join(work, 'http-state');
  server = spawn(binary, ['--http', '127.0.0.1:0', '--state-dir', stateDir], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let serverErr = '';
  server.stderr.on('data', c => { serverErr += c; });
  const deadline = Date.now() + 20000;
  while (!fs.existsSync(path.join(stateDir, 'http.json'))) {
    expect(server.exitCode === null, 'the HTTP server exited', serverErr);
    expect(Date.now() < deadline, 'the HTTP server wrote no http.json within 20 s', serverErr);
    await new Promise(r => setTimeout(r, 50));  // poll interval; the deadline bounds the wait
  }
  const url = JSON.parse(fs.readFileSync(path.join(stateDir, 'http.json'), 'utf8')).mcp;
  const token = fs.readFileSync(path.join(stateDir, 'http-token'), 'utf8').trim();
  await httpCase('cursor', path.join(project, '.cursor/mcp.json'), 'mcpServers', stateDir, url, token, ['--scope', 'project']);
  await httpCase('vscode', path.join(project, '.vscode/mcp.json'), 'servers', stateDir, url, token, ['--scope', 'project']);

  const desktop = spawnSync(binary, ['install', 'claude-desktop', '--http', '--state-dir', stateDir, '--write'],
                            { env, encoding: 'utf8', timeout: 20000 });
  expect(desktop.status === 1 && desktop.stderr.includes('stdio servers only'), 'claude-desktop --http must be refused', desktop);
  ok('claude-desktop --http: refused (its file takes stdio servers only)');

  server.kill('SIGTERM');
  await new Promise(resolve => (server.exitCode !== null ? resolve() : server.once('exit', resolve)));
  clearTimeout(timer);
  console.log('editor configs: all checks passed');
}

main().catch(e => fail(`unexpected error: ${e?.stack ?? e}`));
