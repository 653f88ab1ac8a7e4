// The tool checks both real-client runs share (stdio and Streamable HTTP): the
// official MCP TypeScript SDK v1 client, already connected, drives every tool
// the way an editor does. Every successful tool result is checked three ways:
//   1. the SDK itself: once listTools() has run, Client.callTool validates
//      structuredContent against the tool's outputSchema and throws McpError
//      on a mismatch or on a missing structuredContent;
//   2. explicitly here with ajv (JSON Schema 2020-12, MCP's default dialect,
//      or draft-07 when the schema says so), so a change in the SDK cannot let
//      the check pass silently;
//   3. the text content block must parse to the same JSON.
// One line per check; the first failure throws CheckFailure with the evidence.

import { isDeepStrictEqual } from 'node:util';
import { McpError, ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { Ajv } from 'ajv';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';

const addFormats = addFormatsModule.default ?? addFormatsModule;

const TOOL_NAMES = ['cancelTask', 'getResult', 'getStatus', 'listTasks', 'runTask', 'submitTask'];
const READ_ONLY = new Set(['getStatus', 'getResult', 'listTasks']);
export const REQUEST = { timeout: 30000 };

// ---------------------------------------------------------------- reporting

export class CheckFailure extends Error {}

export function ok(what) {
  console.log(`ok  ${what}`);
}

export function fail(what, evidence) {
  let message = what;
  if (evidence !== undefined) {
    message += '\n' + (typeof evidence === 'string' ? evidence : JSON.stringify(evidence, null, 2));
  }
  throw new CheckFailure(message);
}

export function expect(condition, what, evidence) {
  if (!condition) fail(what, evidence);
}

// ---------------------------------------------------------------- schemas

function makeAjv(Klass) {
  const ajv = new Klass({ strict: false, allErrors: true, validateSchema: true, validateFormats: true });
  addFormats(ajv);
  return ajv;
}
const ajv2020 = makeAjv(Ajv2020);
const ajv07 = makeAjv(Ajv);

function compileSchema(schema, label) {
  const dialect = typeof schema.$schema === 'string' ? schema.$schema : '';
  const ajv = /draft-0[4-7]/.test(dialect) ? ajv07 : ajv2020;
  try {
    return ajv.compile(schema);
  } catch (e) {
    fail(`${label} is not a valid JSON Schema (${dialect || '2020-12, MCP default'}): ${e.message}`, schema);
  }
}

function ajvErrors(validate) {
  return (validate.errors ?? []).map(e => `  ${e.instancePath || '/'} ${e.message} ${JSON.stringify(e.params)}`).join('\n');
}

// ---------------------------------------------------------------- the checks

export function processGone(pid) {
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return e.code === 'ESRCH';
  }
}

export async function waitFor(predicate, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await predicate()) return true;
    await new Promise(r => setTimeout(r, 100));
  }
  return predicate();
}

// `fromServer` collects every server-to-client message, `protocolErrors` every
// error the client reported; both are filled by the caller's taps.
export async function runToolChecks(client, fromServer, protocolErrors) {
  const validators = new Map();   // tool name -> ajv validate for outputSchema
  const inputValidators = new Map();

  async function callTool(name, args, options = {}) {
    const inputOk = inputValidators.get(name);
    if (inputOk && !options.expectError && !inputOk(args)) {
      fail(`${name}: the arguments this check sends do not match the tool's own inputSchema`,
           `${JSON.stringify(args)}\n${ajvErrors(inputOk)}`);
    }
    let result;
    try {
      result = await client.callTool({ name, arguments: args }, undefined, { ...REQUEST, ...options.request });
    } catch (e) {
      fail(`${name} ${JSON.stringify(args)}: callTool threw ${e?.constructor?.name ?? 'error'}` +
           (e instanceof McpError ? ` code ${e.code}` : '') + `: ${e?.message ?? e}`);
    }
    if (options.expectError) return result;
    expect(result.isError !== true, `${name} ${JSON.stringify(args)}: unexpected isError result`, result);
    checkStructured(name, result);
    return result.structuredContent;
  }

  function checkStructured(name, result) {
    const sc = result.structuredContent;
    expect(sc && typeof sc === 'object' && !Array.isArray(sc), `${name}: no structuredContent object`, result);
    const validate = validators.get(name);
    expect(validate, `${name}: no outputSchema validator (listTools must run first)`);
    if (!validate(sc)) {
      fail(`${name}: structuredContent does not match the tool's outputSchema (ajv):\n${ajvErrors(validate)}`, sc);
    }
    const texts = (result.content ?? []).filter(c => c.type === 'text');
    expect(texts.length > 0, `${name}: no text content block next to structuredContent`, result);
    let parsed;
    try {
      parsed = JSON.parse(texts[0].text);
    } catch (e) {
      fail(`${name}: the text content is not JSON (${e.message})`, texts[0].text);
    }
    expect(isDeepStrictEqual(parsed, sc), `${name}: the text content's JSON differs from structuredContent`,
           { text: parsed, structuredContent: sc });
  }

  const initResult = fromServer.find(m => m.id !== undefined && m.result?.protocolVersion);
  const protocolVersion = initResult?.result?.protocolVersion;
  expect(protocolVersion === '2025-11-25',
         `initialize: the SDK asked for 2025-11-25 and the server answered ${protocolVersion}`, initResult);
  const serverInfo = client.getServerVersion();
  expect(serverInfo?.name && typeof serverInfo.name === 'string', 'initialize: serverInfo.name missing', serverInfo);
  expect(typeof serverInfo.version === 'string' && serverInfo.version.length > 0,
         'initialize: serverInfo.version missing', serverInfo);
  ok(`initialize: ${serverInfo.name} ${serverInfo.version}, protocol ${protocolVersion}`);

  const caps = client.getServerCapabilities();
  expect(caps && typeof caps.tools === 'object', 'initialize: capabilities.tools missing', caps);
  ok(`capabilities: ${Object.keys(caps).sort().join(', ')}`);

  const instructions = client.getInstructions();
  expect(typeof instructions === 'string' && instructions.trim().length > 20,
         'initialize: instructions missing or too short to help a model', instructions);
  ok(`instructions: ${instructions.length} chars`);

  // tools/list, following nextCursor if the server pages
  const tools = [];
  let cursor;
  do {
    const page = await client.listTools(cursor ? { cursor } : {}, REQUEST);
    tools.push(...page.tools);
    cursor = page.nextCursor;
  } while (cursor);
  const names = tools.map(t => t.name).sort();
  expect(isDeepStrictEqual(names, TOOL_NAMES), `listTools: expected exactly ${TOOL_NAMES.join(', ')}`, names);
  for (const tool of tools) {
    const t = tool.name;
    expect(typeof tool.title === 'string' && tool.title.length > 0, `listTools: ${t} has no title`, tool);
    expect(typeof tool.description === 'string' && tool.description.length > 20,
           `listTools: ${t} has no useful description`, tool);
    expect(tool.inputSchema?.type === 'object', `listTools: ${t} inputSchema.type is not "object"`, tool.inputSchema);
    expect(tool.outputSchema && tool.outputSchema.type === 'object',
           `listTools: ${t} has no outputSchema of type "object"`, tool.outputSchema);
    const a = tool.annotations;
    expect(a && typeof a === 'object', `listTools: ${t} has no annotations`, tool);
    for (const hint of ['readOnlyHint', 'destructiveHint', 'idempotentHint', 'openWorldHint']) {
      expect(a[hint] === undefined || typeof a[hint] === 'boolean', `listTools: ${t} annotations.${hint} is not boolean`, a);
    }
    expect(a.readOnlyHint === READ_ONLY.has(t),
           `listTools: ${t} annotations.readOnlyHint should be ${READ_ONLY.has(t)}`, a);
    inputValidators.set(t, compileSchema(tool.inputSchema, `${t}.inputSchema`));
    validators.set(t, compileSchema(tool.outputSchema, `${t}.outputSchema`));
  }
  ok(`listTools: ${tools.length} tools (${names.join(', ')}), each with title, description, ` +
     'inputSchema, outputSchema, annotations; all schemas compile');

  // submitTask
  const submitArgs = { command: 'echo hello; echo oops >&2', name: 'sdk-check', tags: ['sdk'] };
  const submitted = await callTool('submitTask', submitArgs);
  const taskId = submitted.taskId;
  expect(typeof taskId === 'string' && taskId.length > 0, 'submitTask: no taskId', submitted);
  expect(['queued', 'waiting', 'running', 'completed'].includes(submitted.status),
         `submitTask: unexpected status ${submitted.status}`, submitted);
  ok(`submitTask: taskId ${taskId}, status ${submitted.status}`);

  // getResult with a progress token (the SDK's onprogress sets _meta.progressToken)
  const firstProgress = [];
  const res = await callTool('getResult', { taskId, waitSec: 20 },
                             { request: { onprogress: p => firstProgress.push(p) } });
  expect(res.taskId === taskId, 'getResult: wrong taskId', res);
  expect(res.status === 'completed', `getResult: expected status completed, got ${res.status}`, res);
  expect(res.exitCode === 0, `getResult: expected exitCode 0, got ${res.exitCode}`, res);
  expect(res.stdout?.text === 'hello\n', `getResult: stdout.text should be "hello\\n"`, res.stdout);
  expect(res.stderr?.text === 'oops\n', `getResult: stderr.text should be "oops\\n"`, res.stderr);
  ok(`getResult: completed, exitCode 0, stdout "hello\\n", stderr "oops\\n" ` +
     `(${firstProgress.length} progress notifications)`);

  // getStatus {taskId}
  const st = await callTool('getStatus', { taskId });
  const task = st.task;
  expect(task && task.taskId === taskId, 'getStatus {taskId}: no task with that id', st);
  expect(task.status === 'completed' && task.name === 'sdk-check',
         'getStatus {taskId}: expected status completed and name sdk-check', task);
  ok(`getStatus {taskId}: completed, name ${task.name}` + (task.reason ? `, reason ${task.reason}` : ''));

  // getStatus {} : the orchestrator itself
  const orch = (await callTool('getStatus', {})).orchestrator;
  expect(orch && typeof orch === 'object', 'getStatus {}: no orchestrator object', orch);
  expect(orch.version === undefined || orch.version === serverInfo.version,
         `getStatus {}: version ${orch.version} differs from serverInfo.version ${serverInfo.version}`, orch);
  ok(`getStatus {}: orchestrator (${Object.keys(orch).sort().join(', ')})`);

  // listTasks {tag}
  const listed = await callTool('listTasks', { tag: 'sdk' });
  expect(Array.isArray(listed.tasks), 'listTasks: no tasks array', listed);
  const mine = listed.tasks.find(t => t.taskId === taskId);
  expect(mine, `listTasks {tag:"sdk"}: task ${taskId} not listed`, listed);
  for (const t of listed.tasks) {
    expect(t.tags === undefined || t.tags.includes('sdk'), 'listTasks {tag:"sdk"}: listed a task without the tag', t);
  }
  ok(`listTasks {tag:"sdk"}: ${listed.tasks.length} task(s), includes ${taskId}`);

  // cancelTask on a running sleep
  const sleeper = await callTool('submitTask', { command: 'sleep 30', name: 'sdk-cancel', tags: ['sdk'] });
  let pid;
  const started = await waitFor(async () => {
    const s = (await callTool('getStatus', { taskId: sleeper.taskId })).task;
    pid = s.pid;
    return s.status === 'running' && Number.isInteger(pid);
  }, 5000);
  expect(started, 'cancelTask: the sleep 30 task did not reach running with a pid within 5 s');
  const cancelled = await callTool('cancelTask', { taskId: sleeper.taskId });
  expect(Array.isArray(cancelled.cancelled) && cancelled.cancelled.includes(sleeper.taskId),
         'cancelTask: the task id is not in "cancelled"', cancelled);
  const after = await callTool('getResult', { taskId: sleeper.taskId, waitSec: 10 });
  expect(after.status === 'cancelled', `cancelTask: expected status cancelled, got ${after.status}`, after);
  expect(after.reason === undefined || after.reason === 'cancelled',
         `cancelTask: expected reason cancelled, got ${after.reason}`, after);
  expect(await waitFor(() => processGone(pid), 2000), `cancelTask: the task's process ${pid} is still alive`);
  ok(`cancelTask: running sleep 30 -> cancelled, process ${pid} gone`);

  // a bad argument: a tool result with isError and a message that helps
  const badArgs = { command: 'true', priority: 5.7 };
  const inputOk = inputValidators.get('submitTask');
  expect(!inputOk(badArgs), 'bad call: submitTask inputSchema accepts priority 5.7 (it should say integer)',
         inputOk.schema?.properties?.priority);
  const bad = await callTool('submitTask', badArgs, { expectError: true });
  expect(bad.isError === true, 'bad call: submitTask {priority: 5.7} did not return isError true', bad);
  const badText = (bad.content ?? []).filter(c => c.type === 'text').map(c => c.text).join('\n');
  expect(/priority/i.test(badText) && /integer|whole/i.test(badText),
         'bad call: the error message should name priority and say it must be an integer', badText);
  ok(`bad call: submitTask {priority: 5.7} -> isError: ${JSON.stringify(badText)}`);

  // an unknown tool: JSON-RPC -32602, which the SDK throws as McpError
  let unknownError;
  try {
    await client.callTool({ name: 'noSuchTool', arguments: {} }, undefined, REQUEST);
  } catch (e) {
    unknownError = e;
  }
  expect(unknownError instanceof McpError && unknownError.code === ErrorCode.InvalidParams,
         'unknown tool: expected McpError code -32602',
         unknownError ? `${unknownError.constructor.name} code ${unknownError.code}: ${unknownError.message}`
                      : 'callTool resolved');
  ok(`unknown tool: McpError ${unknownError.code}: ${unknownError.message}`);

  // progress while long-polling a task that reports ::progress
  const progTask = await callTool('submitTask', {
    command: 'for i in 1 2 3; do echo "::progress $i/3 step $i"; sleep 0.3; done',
    name: 'sdk-progress', tags: ['sdk'],
  });
  const seen = [];
  const progRes = await callTool('getResult', { taskId: progTask.taskId, waitSec: 20 },
                                 { request: { onprogress: p => seen.push(p) } });
  expect(progRes.status === 'completed', `progress: expected completed, got ${progRes.status}`, progRes);
  expect(seen.length >= 1, 'progress: no notifications/progress arrived during a ~1 s long-poll with a progressToken');
  for (let i = 1; i < seen.length; i++) {
    expect(seen[i].progress > seen[i - 1].progress, 'progress: values do not strictly increase', seen);
  }
  for (const p of seen) {
    expect(typeof p.progress === 'number', 'progress: progress is not a number', p);
    expect(p.total === undefined || p.progress <= p.total, 'progress: progress exceeds total', p);
  }
  if (progRes.progress) {
    expect(progRes.progress.current === 3 && progRes.progress.total === 3,
           'progress: the task\'s own progress should end at 3/3', progRes.progress);
  }
  ok(`progress: ${seen.length} notification(s), strictly increasing; last: ` +
     JSON.stringify(seen[seen.length - 1]));

  // the wire: every progress notification carried a token this client sent
  const stray = fromServer.filter(m => m.method === 'notifications/progress' &&
                                       !['string', 'number'].includes(typeof m.params?.progressToken));
  expect(stray.length === 0, 'wire: progress notification without a valid progressToken', stray);
  // SDK v1 hands notifications to a microtask but responses to the caller at
  // once, so a progress notification read in the same chunk as its response
  // can be processed after it and reported as "unknown token"
  // (typescript-sdk#2580). The wire order decides: only progress that really
  // came after its response is a server fault.
  const lateOnWire = [];
  let sdkRaces = 0;
  const errors = protocolErrors.filter(e => {
    const m = /^Received a progress notification for an unknown token: (.*)$/s.exec(e);
    if (!m) return true;
    let note;
    try { note = JSON.parse(m[1]); } catch { return true; }
    const token = note.params?.progressToken;
    const at = fromServer.findIndex(x => x.method === 'notifications/progress' &&
                                         isDeepStrictEqual(x.params, note.params));
    const answered = fromServer.findIndex(x => x.id === token && ('result' in x || 'error' in x));
    if (at >= 0 && answered >= 0 && at < answered) {
      sdkRaces++;
      return false;
    }
    lateOnWire.push(e);
    return true;
  });
  expect(lateOnWire.length === 0, 'wire: progress sent after its request was answered', lateOnWire.join('\n'));
  expect(errors.length === 0, 'protocol errors seen by the SDK client', errors.join('\n'));
  ok(`wire: ${fromServer.length} messages from the server, no protocol errors` +
     (sdkRaces ? ` (${sdkRaces} progress notification(s) sent before their response but processed after it by the SDK)` : ''));
}
