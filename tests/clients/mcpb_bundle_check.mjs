#!/usr/bin/env node
// The MCPB manifest against the real server, and the unpacked bundle started
// as Claude Desktop starts it.
//
//   node mcpb_bundle_check.mjs <manifest.json> <binary> <unpacked-bundle-dir> <state-dir>
//
// 1. manifest.tools must list exactly the tools of the binary's tools/list, in
//    its order, each with the first sentence of the real description; and
//    manifest.version must be the binary's --version.
// 2. server.mcp_config with ${__dirname} = the unpacked dir and
//    ${user_config.KEY} = each user_config default (state_dir pointed at a
//    throwaway dir, max_concurrent 3) starts the bundled binary; the TS SDK client initializes
//    and getStatus reports the configured maxConcurrent.

import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

const [manifestPath, binary, unpacked, stateDir] = process.argv.slice(2);
if (!stateDir) {
  console.error('usage: node mcpb_bundle_check.mjs <manifest.json> <binary> <unpacked-dir> <state-dir>');
  process.exit(2);
}
const manifest = JSON.parse(fs.readFileSync(manifestPath, 'utf8'));

function fail(what, evidence) {
  console.error(`FAIL ${what}`);
  if (evidence !== undefined) console.error(typeof evidence === 'string' ? evidence : JSON.stringify(evidence, null, 2));
  process.exit(1);
}
const firstSentence = text => (text.match(/^.*?\.(?=\s|$)/s)?.[0] ?? text).trim();

async function withClient(params, body) {
  const client = new Client({ name: 'mcpb-check', version: '1.0.0' }, { capabilities: {} });
  await client.connect(new StdioClientTransport({ ...params, stderr: 'ignore' }));
  try { return await body(client); } finally { await client.close(); }
}

async function main() {
  const timer = setTimeout(() => fail('mcpb bundle checks did not finish within 60 s'), 60000);
  const version = execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim().split(' ')[1];
  if (manifest.version !== version) fail(`manifest.json version ${manifest.version}, the binary says ${version}`);

  const tools = await withClient({ command: binary, args: ['--state-dir', path.join(stateDir, 'list')] },
                                 async c => (await c.listTools()).tools);
  const want = tools.map(t => ({ name: t.name, description: firstSentence(t.description) }));
  if (JSON.stringify(manifest.tools) !== JSON.stringify(want)) {
    fail('manifest.json "tools" differ from tools/list; this is what they should be:', JSON.stringify(want, null, 2));
  }
  console.log(`ok   manifest: version ${version}, ${want.length} tools match tools/list (${want.map(t => t.name).join(', ')})`);

  // Claude Desktop's substitution of the manifest's variables.
  const values = { __dirname: unpacked, HOME: process.env.HOME ?? '/tmp' };
  const userConfig = {};
  for (const [key, spec] of Object.entries(manifest.user_config ?? {})) userConfig[key] = String(spec.default);
  // As a user would set them in Claude Desktop: a throwaway state dir, and a
  // concurrency other than the server's own default, so that it shows.
  userConfig.state_dir = path.join(stateDir, 'bundle');
  userConfig.max_concurrent = '3';
  const fill = s => s.replace(/\$\{user_config\.([A-Za-z_]+)\}/g, (_, k) => userConfig[k])
                     .replace(/\$\{([A-Za-z_]+)\}/g, (_, k) => values[k]);
  const cfg = manifest.server.mcp_config;
  const command = fill(cfg.command);
  if (command !== path.join(unpacked, manifest.server.entry_point)) fail('mcp_config.command is not the entry_point', cfg);
  const args = (cfg.args ?? []).map(fill);
  const result = await withClient({ command, args, env: cfg.env ?? {} }, async c => {
    const info = c.getServerVersion();
    const status = await c.callTool({ name: 'getStatus', arguments: {} });
    return { info, status };
  });
  if (result.info?.name !== 'mcp-orchestrator') fail('the bundled binary did not initialize as mcp-orchestrator', result.info);
  const max = result.status.structuredContent?.orchestrator?.maxConcurrent;
  if (String(max) !== userConfig.max_concurrent) fail(`getStatus maxConcurrent ${max}, user_config says ${userConfig.max_concurrent}`, result.status);
  if (!fs.existsSync(path.join(userConfig.state_dir, 'tasks.db'))) fail('the bundled server did not use user_config.state_dir');
  console.log(`ok   bundle: ${path.relative(unpacked, command)} ${args.join(' ')} initialized (${result.info.name} ${result.info.version}), ` +
              `maxConcurrent ${max}, state in user_config.state_dir`);
  clearTimeout(timer);
}

main().catch(e => fail(`unexpected error: ${e?.stack ?? e}`));
