#!/usr/bin/env node
// Drives the live dashboard in a real browser: headless Chromium through
// playwright-core, against the real mcp-orchestrator binary over HTTP, with
// tasks submitted by the official MCP TypeScript SDK client (SPEC §7: "a live
// dashboard page at / … updates by deltas, not full reloads").
//
//   node dashboard_check.mjs <binary> [artifacts-dir]
//
// The server is started here with `--http 127.0.0.1:0` and a fresh state
// directory; its address and token come from <state-dir>/http.json and
// <state-dir>/http-token. The page is opened as URL/#token=TOKEN. Checked:
// the API refuses a missing token; the token leaves the address bar; a task
// submitted over MCP appears by itself and reaches "completed"; its output
// tail shows what it printed; Cancel stops a running task; Retry runs a
// finished one again; the page never reloads and logs no console errors;
// without the token the page says how to get in. Screenshots go to the
// artifacts dir (dashboard.png, dashboard-dark.png; dashboard-failure.png when
// a check fails). The server is stopped with SIGTERM and must exit 0.
//
// Chromium: $CHROMIUM, else `chromium` or `chromium-browser` on PATH (Debian's
// chromium package; scripts/setup installs it).

import { spawn } from 'node:child_process';
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

const [binaryArg, artifactsArg] = process.argv.slice(2);
if (!binaryArg) {
  console.error('usage: node dashboard_check.mjs <mcp-orchestrator binary> [artifacts-dir]');
  process.exit(2);
}
const binary = resolve(binaryArg);
const artifacts = resolve(artifactsArg ?? join(tmpdir(), 'mcp-orchestrator-dashboard-check'));
const TOTAL_LIMIT_MS = 120000;
const STEP_MS = 20000;           // one UI expectation
const REQUEST = { timeout: 30000 };

class CheckFailure extends Error {}

function ok(what) {
  console.log(`ok  ${what}`);
}

function expect(condition, what, evidence) {
  if (condition) return;
  let message = what;
  if (evidence !== undefined) message += `\n${typeof evidence === 'string' ? evidence : JSON.stringify(evidence, null, 2)}`;
  throw new CheckFailure(message);
}

// Polls `probe` until it returns a truthy value or `ms` pass.
async function poll(probe, ms, what) {
  const deadline = Date.now() + ms;
  let interval = 25;
  for (;;) {
    const value = await probe();
    if (value) return value;
    if (Date.now() > deadline) throw new CheckFailure(`timed out after ${ms} ms: ${what}`);
    await sleep(interval);
    interval = Math.min(interval * 2, 250);
  }
}

// A Playwright locator wait with a message that says what was expected.
async function see(locator, what, ms = STEP_MS) {
  try {
    await locator.first().waitFor({ state: 'visible', timeout: ms });
  } catch (e) {
    throw new CheckFailure(`the page did not show ${what} within ${ms} ms (${e.message.split('\n')[0]})`);
  }
  ok(`page shows ${what}`);
}

function findChromium() {
  if (process.env.CHROMIUM) return process.env.CHROMIUM;
  for (const dir of (process.env.PATH || '').split(delimiter)) {
    for (const name of ['chromium', 'chromium-browser']) {
      try {
        accessSync(join(dir, name), constants.X_OK);
        return join(dir, name);
      } catch { /* next */ }
    }
  }
  throw new CheckFailure('no Chromium found: install Debian\'s chromium package (scripts/setup does) or set CHROMIUM=/path/to/chromium');
}

// ---------------------------------------------------------------- the server

const stateDir = mkdtempSync(join(tmpdir(), 'orch-dashboard-'));
const stderrTail = [];
const server = spawn(binary, ['--http', '127.0.0.1:0', '--state-dir', stateDir], {
  stdio: ['ignore', 'ignore', 'pipe'],
});
let serverExit = null;
const serverExited = new Promise(done => server.once('exit', (code, signal) => {
  serverExit = { code, signal };
  done();
}));
server.once('error', e => { serverExit = { error: e.message }; });
server.stderr.on('data', chunk => {
  for (const line of chunk.toString('utf8').split('\n')) {
    if (!line) continue;
    stderrTail.push(line);
    if (stderrTail.length > 60) stderrTail.shift();
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

async function stopServer() {
  if (serverExit) return serverExit;
  server.kill('SIGTERM');
  const timer = setTimeout(() => server.kill('SIGKILL'), 15000);
  await serverExited;
  clearTimeout(timer);
  return serverExit;
}

// ---------------------------------------------------------------- the checks

let browser = null;
let page = null;
let mcp = null;

async function submit(args) {
  const result = await mcp.callTool({ name: 'submitTask', arguments: args }, undefined, REQUEST);
  expect(!result.isError, `submitTask failed: ${JSON.stringify(result.content)}`);
  const id = result.structuredContent?.taskId;
  expect(typeof id === 'string', 'submitTask returned no taskId', result);
  return id;
}

function row(id) {
  return page.locator(`#task-rows tr[data-task-id="${id}"]`);
}

function badge(id, status) {
  return row(id).locator('.badge').filter({ hasText: new RegExp(`^${status}$`) });
}

async function run() {
  await poll(() => readEndpoint() !== null || serverExit !== null, 15000, 'the server writes http.json');
  expect(serverExit === null, `the server exited at start: ${JSON.stringify(serverExit)}`);
  const endpoint = readEndpoint();
  const base = endpoint.url;
  const token = readFileSync(join(stateDir, 'http-token'), 'utf8').trim();
  ok(`server listening at ${base}`);

  // The API needs the token; the page itself does not.
  const anonymous = await fetch(`${base}/api/overview`);
  expect(anonymous.status === 401, `/api/overview without the token answered ${anonymous.status}, not 401`);
  ok('/api/overview without the token: 401');
  const overview = await fetch(`${base}/api/overview`, { headers: { Authorization: `Bearer ${token}` } });
  expect(overview.status === 200, `/api/overview with the token answered ${overview.status}`);
  const facts = await overview.json();
  expect(typeof facts.version === 'string' && facts.memory?.rssKb > 0, '/api/overview lacks version or memory', facts);
  ok(`/api/overview with the token: version ${facts.version}`);

  browser = await chromium.launch({ executablePath: findChromium(), args: ['--no-sandbox'] });
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 }, colorScheme: 'light' });
  page = await context.newPage();
  const consoleErrors = [];
  page.on('console', msg => { if (msg.type() === 'error') consoleErrors.push(msg.text()); });
  page.on('pageerror', e => consoleErrors.push(`uncaught: ${e.message}`));
  let loads = 0;
  page.on('load', () => { loads++; });

  await page.goto(`${base}/#token=${token}`);
  await see(page.locator('#conn[data-state="live"]'), 'the live indicator');
  const href = await page.evaluate(() => location.href);
  expect(!href.includes(token), `the token is still in the address bar: ${href}`);
  const kept = await page.evaluate(() => sessionStorage.getItem('mcp-orchestrator.token'));
  expect(kept === token, 'the token was not kept in sessionStorage');
  ok('the token left the address bar and stays in sessionStorage');
  await page.evaluate(() => { window.__dashboardCheck = 'same page'; });
  await see(page.locator('#version').filter({ hasText: facts.version }), `version ${facts.version} in the header`);

  mcp = new Client({ name: 'mcp-orchestrator-dashboard-check', version: '1.0.0' }, { capabilities: {} });
  await mcp.connect(new StreamableHTTPClientTransport(new URL(endpoint.mcp), {
    requestInit: { headers: { Authorization: `Bearer ${token}` } },
  }), REQUEST);
  ok('MCP SDK client connected over Streamable HTTP');

  // A task that prints, reports progress and completes.
  const hello = await submit({
    command: 'echo hello-dashboard; sleep 0.3; echo ::progress 50/100 halfway; sleep 0.3',
    name: 'dashboard hello',
    tags: ['dashboard-check'],
  });
  await see(row(hello), `task ${hello} in the list without a reload`);
  await see(badge(hello, 'completed'), `task ${hello} as completed`);
  await see(row(hello).locator('.bar-text').filter({ hasText: '50/100 halfway' }), 'its progress message');
  await row(hello).locator('.task-open').click();
  await see(page.locator('#details-title').filter({ hasText: 'dashboard hello' }), 'its details');
  await see(page.locator('#output').filter({ hasText: 'hello-dashboard' }), '"hello-dashboard" in its output tail');
  await page.locator('#tab-stderr').click();
  await see(page.locator('#tab-stderr[aria-selected="true"]'), 'the stderr tab selected');
  await page.locator('#tab-stdout').click();
  await see(page.locator('#output').filter({ hasText: 'hello-dashboard' }), 'stdout again after switching back');

  // A long task, cancelled from its row.
  const sleeper = await submit({ command: 'sleep 600', name: 'dashboard sleeper' });
  await see(badge(sleeper, 'running'), `task ${sleeper} running`);
  await row(sleeper).locator('button[data-action="cancel"]').click();
  await see(badge(sleeper, 'cancelled'), `task ${sleeper} cancelled after its Cancel button`);

  // Retry the finished hello task from the details pane: a new task runs.
  const before = await page.locator('#task-rows tr').count();
  await row(hello).locator('.task-open').click();
  await page.locator('#details-retry').click();
  const retried = await poll(async () => {
    const ids = await page.locator('#task-rows tr').evaluateAll(rows => rows.map(r => r.dataset.taskId));
    return ids.length > before ? ids.find(id => id !== hello && id !== sleeper) : null;
  }, STEP_MS, 'a new row after Retry');
  await see(badge(retried, 'completed'), `the retried task ${retried} completed`);
  await see(page.locator('#output').filter({ hasText: 'hello-dashboard' }), 'the retried task\'s output');

  // Filters narrow the list without asking the server.
  await page.locator('#filter-status').selectOption('cancelled');
  await poll(async () => (await page.locator('#task-rows tr').count()) === 1, STEP_MS, 'only the cancelled task listed');
  await page.locator('#filter-status').selectOption('all');
  await page.locator('#filter-text').fill('sleeper');
  await poll(async () => (await page.locator('#task-rows tr').count()) === 1, STEP_MS, 'only the sleeper matches "sleeper"');
  await page.locator('#filter-text').fill('');
  ok('status and text filters narrow the list');

  await see(page.locator('#stat-running').filter({ hasText: /^0 \/ \d+$/ }), 'running 0 / max in the header');
  const marker = await page.evaluate(() => window.__dashboardCheck);
  expect(marker === 'same page' && loads === 1, `the page reloaded (marker ${marker}, ${loads} loads)`);
  ok('no full reload: every update came by delta');
  expect(consoleErrors.length === 0, 'the page logged console errors', consoleErrors);
  ok('no console errors');

  mkdirSync(artifacts, { recursive: true });
  await page.screenshot({ path: join(artifacts, 'dashboard.png'), fullPage: true });
  await page.emulateMedia({ colorScheme: 'dark' });
  await page.screenshot({ path: join(artifacts, 'dashboard-dark.png'), fullPage: true });
  ok(`screenshots in ${artifacts}`);

  // Without the token the page says how to get in.
  const stranger = await browser.newContext();
  const lost = await stranger.newPage();
  await lost.goto(`${base}/`);
  try {
    await lost.locator('#banner').filter({ hasText: 'access token' }).waitFor({ state: 'visible', timeout: STEP_MS });
  } catch {
    throw new CheckFailure('without the token the page did not ask for it');
  }
  ok('without the token the page asks for the address with #token=');
  await stranger.close();

  await mcp.close();
  mcp = null;
  await browser.close();
  browser = null;
  const exit = await stopServer();
  expect(exit.code === 0, `the server did not exit 0 after SIGTERM: ${JSON.stringify(exit)}`);
  ok('server stopped by SIGTERM, exit 0');
}

const watchdog = setTimeout(() => {
  console.error(`dashboard check: FAILED: not finished within ${TOTAL_LIMIT_MS / 1000} s`);
  server.kill('SIGKILL');
  process.exit(1);
}, TOTAL_LIMIT_MS);

let failed = false;
try {
  await run();
  console.log('dashboard check: all passed');
} catch (e) {
  failed = true;
  console.error(`dashboard check: FAILED: ${e instanceof CheckFailure ? e.message : e?.stack ?? e}`);
  if (page) {
    try {
      mkdirSync(artifacts, { recursive: true });
      await page.screenshot({ path: join(artifacts, 'dashboard-failure.png'), fullPage: true });
      console.error(`  screenshot: ${join(artifacts, 'dashboard-failure.png')}`);
    } catch { /* the browser is gone */ }
  }
  if (stderrTail.length) console.error(`--- server stderr (last lines):\n${stderrTail.map(l => `    ${l}`).join('\n')}`);
} finally {
  try { await mcp?.close(); } catch { /* closing anyway */ }
  try { await browser?.close(); } catch { /* closing anyway */ }
  if (!serverExit) {
    server.kill('SIGKILL');
    await serverExited;
  }
  clearTimeout(watchdog);
  rmSync(stateDir, { recursive: true, force: true });
}
process.exit(failed ? 1 : 0);
