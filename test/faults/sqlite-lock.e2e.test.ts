import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onPostgres } from '../support/database.js';
import { startDemo, type Demo } from '../support/demo.js';

/**
 * Another process holding the SQLite write lock (issue 25 item 4), provoked for real: a second process
 * opens the data dir's file and holds BEGIN IMMEDIATE. Requests that need to write wait for it off the
 * event loop, so /healthz keeps answering meanwhile (it answers before the waiting request does); a lock
 * held past the bound turns into 503 with Retry-After, and the server serves again once it is released.
 * Reads are not queued behind a waiting write (WAL readers never wait for a writer), so the revocation
 * view stays current through the episode and the first read after it is served.
 */

// One server across both lock episodes: what a lock episode leaves behind must not decide the next one.
let demo: Demo;
beforeAll(async () => {
  if (!onPostgres) demo = await startDemo();
});
afterAll(() => demo?.stop());

const worktree = fileURLToPath(new URL('../..', import.meta.url));

/** A second process holding the write lock on `file` for `holdMs`; resolves once it holds it. */
async function holdWriteLock(file: string, holdMs: number): Promise<ChildProcess> {
  const script = `
    const db = require('better-sqlite3')(${JSON.stringify(file)});
    db.pragma('busy_timeout = 10000');
    db.exec('BEGIN IMMEDIATE');
    process.stdout.write('locked\\n');
    setTimeout(() => { db.exec('COMMIT'); db.close(); process.exit(0); }, ${holdMs});
  `;
  const child = spawn(process.execPath, ['-e', script], {
    cwd: worktree,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  await new Promise<void>((resolve, reject) => {
    child.stdout?.on('data', (chunk) => String(chunk).includes('locked') && resolve());
    child.once('exit', (code) => reject(new Error(`lock holder exited early (${code})`)));
  });
  return child;
}

const exited = (child: ChildProcess) => new Promise((resolve) => child.once('exit', resolve));

describe.skipIf(onPostgres)('the SQLite write lock held by another process', () => {
  it('a request waiting for the lock does not stop /healthz: it answers while the lock is still held', async () => {
    const token = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const holder = await holdWriteLock(join(demo.dataDir, 'audit.db'), 4000);
    const order: string[] = [];
    const released = exited(holder).then(() => order.push('released'));
    // A read records an audit event: it needs the audit file's write lock.
    const waiting = demo.get('/crm/v1/accounts?limit=1', token);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const health = await demo.get('/healthz');
    order.push('healthz');
    expect(health.status).toBe(200);
    await released;
    expect(order).toEqual(['healthz', 'released']);
    // The waiting read is answered once the lock is released, and the next one is served normally.
    const answered = await waiting;
    expect(answered.status, await answered.clone().text()).toBe(200);
    const after = await demo.get('/crm/v1/accounts?limit=1', token);
    expect(after.status, await after.clone().text()).toBe(200);
  });

  it('a lock held past the bound is 503 with Retry-After, and the server serves again after', async () => {
    const token = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const holder = await holdWriteLock(join(demo.dataDir, 'audit.db'), 6500);
    const refused = await demo.get('/crm/v1/accounts?limit=1', token);
    expect(refused.status).toBe(503);
    expect(refused.headers.get('retry-after')).toBeTruthy();
    expect(['DATABASE_BUSY', 'AUDIT_UNAVAILABLE']).toContain(
      ((await refused.json()) as { code: string }).code,
    );
    expect((await demo.get('/healthz')).status).toBe(200);
    await exited(holder);
    const again = await demo.get('/crm/v1/accounts?limit=1', token);
    expect(again.status, await again.clone().text()).toBe(200);
  });
});
