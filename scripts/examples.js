#!/usr/bin/env node
/**
 * `npm run examples`: the demo on 127.0.0.1:8080 and both example apps on Vite (localhost:5173 and
 * :5174). Before the apps start, each one's security plan goes through the CLI as a maker's would:
 * checked by policy, submitted with its scanned bundle, and approved by a reviewer when it needs one.
 * Ctrl-C stops everything.
 */
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const gatehouse = 'http://127.0.0.1:8080';
const vite = join(root, 'node_modules', 'vite', 'bin', 'vite.js');
const examples = [
  { id: 'call-notes', owner: 'alice@example.com', port: 5173 },
  { id: 'pipeline-dashboard', owner: 'bob@example.com', port: 5174 },
];
const children = [];

function start(command, args, env = {}) {
  const child = spawn(command, args, { cwd: root, stdio: 'inherit', env: { ...process.env, ...env } });
  children.push(child);
  child.on('exit', (code) => {
    if (code !== 0 && code !== null) stop(`${args.join(' ')} exited with ${code}`);
  });
  return child;
}

function cli(...args) {
  const result = spawnSync(process.execPath, ['bin/gatehouse.js', ...args], { cwd: root, stdio: 'inherit' });
  return result.status;
}

function stop(reason) {
  if (reason) console.error(`examples: ${reason}`);
  for (const child of children) child.kill('SIGTERM');
  process.exitCode = reason ? 1 : 0;
}
process.on('SIGINT', () => stop());
process.on('SIGTERM', () => stop());

async function ready() {
  for (let attempt = 0; attempt < 120; attempt++) {
    const ok = await fetch(`${gatehouse}/readyz`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return;
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  throw new Error(`Gatehouse did not become ready at ${gatehouse}`);
}

start(process.execPath, ['bin/gatehouse.js', 'serve', '--demo']);
await ready();
for (const app of examples) {
  const manifest = `examples/${app.id}/manifest.json`;
  cli('policy', 'check', manifest);
  // exit 0: applied; 3: waits for a reviewer (rita, who is neither owner nor submitter).
  const submitted = cli(
    'app',
    'update',
    app.id,
    manifest,
    '--bundle',
    `examples/${app.id}`,
    '--as',
    app.owner,
  );
  if (submitted === 3) {
    cli(
      'app',
      'approve',
      app.id,
      '--reason',
      'example app: plan and scan reviewed',
      '--as',
      'rita@example.com',
    );
  } else if (submitted !== 0) {
    stop(`the plan of ${app.id} was refused`);
  }
}
for (const app of examples) {
  start(process.execPath, [vite, `examples/${app.id}`, '--config', `examples/${app.id}/vite.config.ts`], {
    GATEHOUSE_URL: gatehouse,
  });
}
console.log(
  `\nOpen http://localhost:5173 (call-notes; sign in as alice) and http://localhost:5174 (pipeline-dashboard; sign in as bob).\n`,
);
