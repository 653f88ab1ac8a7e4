// Native tasks (MCP 2025-11-25, MCP-NOTES §9a) driven by the official MCP
// TypeScript SDK v1 client's experimental tasks API, shared by the stdio and
// Streamable HTTP runs: client.experimental.tasks.callToolStream (task-augmented
// tools/call, then tasks/get polling honouring pollInterval, then tasks/result),
// getTask, getTaskResult, listTasks and cancelTask. The SDK validates each
// result with its own schemas (CreateTaskResult, GetTaskResult, the tool's
// outputSchema for the final CallToolResult), so a wrong wire shape fails here.
// Also checks that a native task is the engine task the plain tools see.

import { CallToolResultSchema, McpError, ErrorCode } from '@modelcontextprotocol/sdk/types.js';
import { REQUEST, expect, fail, ok, waitFor } from './sdk_checks.mjs';

const TERMINAL = new Set(['completed', 'failed', 'cancelled']);
const RELATED_TASK = 'io.modelcontextprotocol/related-task';

// Runs one callToolStream to its end; returns the messages it yielded.
async function stream(client, name, args, task) {
  const messages = [];
  const s = client.experimental.tasks.callToolStream({ name, arguments: args }, undefined, { ...REQUEST, task });
  for await (const message of s) messages.push(message);
  return messages;
}

async function rpcError(promise, what) {
  try {
    await promise;
  } catch (e) {
    expect(e instanceof McpError, `${what}: expected an McpError, got ${e?.constructor?.name}: ${e?.message ?? e}`);
    return e;
  }
  fail(`${what}: expected a JSON-RPC error, got a result`);
}

export async function runNativeTaskChecks(client, fromServer) {
  const caps = client.getServerCapabilities();
  const tasks = caps?.tasks;
  expect(tasks && tasks.list && tasks.cancel && tasks.requests?.tools?.call,
         'initialize: capabilities.tasks should declare list, cancel and requests.tools.call', caps);
  ok('capabilities.tasks: list, cancel, requests.tools.call');

  const { tools } = await client.listTools({}, REQUEST);
  const support = Object.fromEntries(tools.map(t => [t.name, t.execution?.taskSupport ?? 'forbidden']));
  expect(support.runTask === 'required' && support.submitTask === 'optional',
         'tools/list: runTask should be taskSupport "required" and submitTask "optional"', support);
  for (const t of ['getStatus', 'getResult', 'cancelTask', 'listTasks']) {
    expect(support[t] === 'forbidden', `tools/list: ${t} should not run as a task`, support);
  }
  ok(`execution.taskSupport: ${Object.entries(support).map(([k, v]) => `${k}=${v}`).join(', ')}`);

  // runTask end to end through callToolStream.
  const started = Date.now();
  const run = await stream(client, 'runTask', { command: 'echo native; sleep 0.3; echo done >&2', name: 'sdk-native' },
                           { ttl: 60000 });
  const created = run.find(m => m.type === 'taskCreated');
  expect(created, 'callToolStream runTask: no taskCreated message', run);
  const task = created.task;
  expect(/^t[a-z2-7]{26}$/.test(task.taskId), 'taskCreated: taskId is not an engine task id', task);
  expect(task.status === 'working', `taskCreated: status should be working, got ${task.status}`, task);
  expect(task.ttl === 60000 && task.pollInterval > 0 && !Number.isNaN(Date.parse(task.createdAt)) &&
         !Number.isNaN(Date.parse(task.lastUpdatedAt)), 'taskCreated: ttl, pollInterval, createdAt, lastUpdatedAt', task);
  const last = run[run.length - 1];
  if (last.type !== 'result') fail('callToolStream runTask: the stream did not end with a result', run);
  const result = last.result;
  expect(result._meta?.[RELATED_TASK]?.taskId === task.taskId,
         `tasks/result: _meta["${RELATED_TASK}"] should name the task`, result._meta);
  const sc = result.structuredContent;
  expect(sc?.status === 'completed' && sc.exitCode === 0 && sc.stdout?.text === 'native\n' &&
         sc.stderr?.text === 'done\n', 'tasks/result: the outcome of the command', sc);
  expect(result.isError !== true, 'tasks/result: a completed task is not an error', result);
  const polled = run.filter(m => m.type === 'taskStatus').map(m => m.task.status);
  expect(polled.length > 0 && polled[polled.length - 1] === 'completed', 'callToolStream: tasks/get polling', polled);
  ok(`callToolStream runTask: ${task.taskId} working → ${polled.join(' → ')} in ${Date.now() - started} ms, ` +
     'result with related-task _meta');

  // The same task through the plain tools and tasks/get, tasks/list.
  const status = await client.callTool({ name: 'getStatus', arguments: { taskId: task.taskId } }, undefined, REQUEST);
  expect(status.structuredContent?.task?.status === 'completed' && status.structuredContent.task.name === 'sdk-native',
         'getStatus: the native task is the engine task', status.structuredContent);
  const listed = await client.callTool({ name: 'listTasks', arguments: { name: 'sdk-native' } }, undefined, REQUEST);
  expect(listed.structuredContent?.tasks?.some(t => t.taskId === task.taskId), 'listTasks: the native task is listed',
         listed.structuredContent);
  const got = await client.experimental.tasks.getTask(task.taskId, REQUEST);
  expect(got.status === 'completed' && got.taskId === task.taskId, 'tasks/get after the end', got);
  const again = await client.experimental.tasks.getTaskResult(task.taskId, CallToolResultSchema, REQUEST);
  expect(again.structuredContent?.stdout?.text === 'native\n', 'tasks/result a second time: the same outcome', again);
  ok('the native task is the engine task: getStatus, listTasks, tasks/get and tasks/result agree');

  // The status notification for the end (optional in the spec, sent by us).
  const notified = await waitFor(() => fromServer.some(m => m.method === 'notifications/tasks/status' &&
      m.params?.taskId === task.taskId && m.params.status === 'completed'), 5000);
  expect(notified, 'notifications/tasks/status: none said the task completed',
         fromServer.filter(m => m.method === 'notifications/tasks/status'));
  ok('notifications/tasks/status: the completion was announced');

  // submitTask task-augmented (optional): a failing command is a failed task.
  const failing = await stream(client, 'submitTask', { command: 'echo broken >&2; exit 3' }, {});
  const failedTask = failing.find(m => m.type === 'taskCreated')?.task;
  expect(failedTask, 'callToolStream submitTask: no taskCreated', failing);
  const end = failing[failing.length - 1];
  expect(end.type === 'error' && /failed/.test(end.error?.message ?? ''), 'callToolStream submitTask: a failed task', failing);
  const failedResult = await client.experimental.tasks.getTaskResult(failedTask.taskId, CallToolResultSchema, REQUEST);
  expect(failedResult.isError === true && failedResult.structuredContent?.exitCode === 3 &&
         failedResult.structuredContent.stderr?.text === 'broken\n', 'tasks/result of the failed task', failedResult);
  ok(`submitTask as a task: ${failedTask.taskId} failed, tasks/result has isError and exit code 3`);

  // tasks/cancel on a long task: cancelled at once, and the engine stops it.
  const s = client.experimental.tasks.callToolStream({ name: 'runTask', arguments: { command: 'sleep 60' } }, undefined,
                                                     { ...REQUEST, task: {} });
  const first = await s.next();
  expect(first.value?.type === 'taskCreated', 'callToolStream runTask sleep: no taskCreated', first.value);
  const longId = first.value.task.taskId;
  const cancelled = await client.experimental.tasks.cancelTask(longId, REQUEST);
  expect(cancelled.status === 'cancelled' && cancelled.taskId === longId, 'tasks/cancel answers the cancelled task', cancelled);
  const rest = [];
  for await (const m of s) rest.push(m);
  expect(rest.length && rest[rest.length - 1].type === 'error' && /cancelled/.test(rest[rest.length - 1].error.message),
         'callToolStream after tasks/cancel: the stream ends with "was cancelled"', rest);
  const engineStopped = await waitFor(async () => {
    const r = await client.callTool({ name: 'getStatus', arguments: { taskId: longId } }, undefined, REQUEST);
    return r.structuredContent?.task?.status === 'cancelled';
  }, 15000);
  expect(engineStopped, `getStatus: the engine task ${longId} should end cancelled`);
  const twice = await rpcError(client.experimental.tasks.cancelTask(longId, REQUEST), 'tasks/cancel of a cancelled task');
  expect(twice.code === ErrorCode.InvalidParams, `tasks/cancel of an ended task: -32602, got ${twice.code}`, twice.message);
  ok(`tasks/cancel: ${longId} cancelled at once, its process stopped, a second cancel is -32602`);

  // tasks/list: this client's tasks, newest first.
  const page = await client.experimental.tasks.listTasks(undefined, REQUEST);
  const ids = page.tasks.map(t => t.taskId);
  for (const id of [task.taskId, failedTask.taskId, longId]) {
    expect(ids.includes(id), `tasks/list: ${id} missing`, ids);
  }
  expect(ids.indexOf(longId) < ids.indexOf(task.taskId), 'tasks/list: newest first', ids);
  expect(page.tasks.every(t => TERMINAL.has(t.status)), 'tasks/list: every task has ended', page.tasks);
  ok(`tasks/list: ${ids.length} tasks, newest first`);

  // Unknown ids are -32602.
  const unknown = await rpcError(client.experimental.tasks.getTask('tnotataskidatall0000000000', REQUEST),
                                 'tasks/get of an unknown id');
  expect(unknown.code === ErrorCode.InvalidParams, `tasks/get unknown id: -32602, got ${unknown.code}`, unknown.message);
  ok('tasks/get of an unknown id: -32602');
}
