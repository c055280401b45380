import Database from 'better-sqlite3';
import { request } from 'node:http';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseAsync, spawnGatehouse } from './support/cli.js';
import { onPostgres } from './support/database.js';
import { startDemo } from './support/demo.js';

/**
 * `gatehouse serve --workers 2` over real HTTP: two processes share the listener (the kernel hands new
 * connections out in turn), so each request below goes on a connection of its own and the requests
 * alternate between the workers. SQLite without Redis: the embedded default the workers must keep
 * correct by themselves (limits in the primary, one audit log through SQLite's lock).
 */
const read = 'read:account.basic';

/** A GET on a fresh connection (no keep-alive), so that consecutive requests reach both workers. */
function getFresh(url: string, token: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { agent: false, headers: { authorization: `Bearer ${token}` } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    });
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(onPostgres)('serve --workers 2', () => {
  let dataDir: string;
  let base: string;
  let server: ReturnType<typeof spawnGatehouse>;
  let exited: Promise<number | null>;
  const tokens: Record<string, string> = {};

  beforeAll(async () => {
    // Seeded and tokens minted by an in-process server, then the same data dir served by the workers.
    const first = await startDemo({ keepDataDir: true });
    dataDir = first.dataDir;
    base = first.url;
    tokens.alice = await first.accessToken('alice', 'call-notes', read);
    tokens.bob = await first.accessToken('bob', 'call-notes', read);
    tokens.erin = await first.accessToken('erin', 'pipeline-dashboard', read);
    await first.stop();
    const config = join(dataDir, 'workers.json');
    // call-notes may make 6 requests; nothing refills them during the test.
    writeFileSync(
      config,
      JSON.stringify({ limits: { perApp: { burst: 6, ratePerSecond: 0.001 } }, detect: { enabled: false } }),
    );
    server = spawnGatehouse(
      [
        'serve',
        '--demo',
        '--workers',
        '2',
        '--port',
        new URL(base).port,
        '--data-dir',
        dataDir,
        '--config',
        config,
      ],
      { GATEHOUSE_LOG_LEVEL: 'warn' },
    );
    exited = new Promise((resolve) => server.once('exit', (code) => resolve(code)));
    await new Promise<void>((resolve, reject) => {
      let stderr = '';
      server.stderr.on('data', (chunk: Buffer) => {
        stderr += chunk.toString('utf8');
        if (stderr.includes('workers:    2 processes')) resolve();
      });
      server.once('exit', () => reject(new Error(`server exited early: ${stderr}`)));
    });
  }, 180_000);

  afterAll(async () => {
    if (server?.exitCode === null) server.kill('SIGKILL');
    rmSync(dataDir, { recursive: true, force: true });
  });

  it('a per-app limit of 6 allows 6 requests across both workers, not 12', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++)
      statuses.push(await getFresh(`${base}/crm/v1/accounts?limit=1`, tokens[i % 2 ? 'bob' : 'alice']));
    expect(statuses.filter((s) => s === 200)).toHaveLength(6);
    expect(statuses.slice(6)).toEqual(Array(6).fill(429));
  });

  it('a token revoked through one worker is refused by every worker on the very next requests', async () => {
    const token = tokens.erin;
    // Verified, and so cached, by both workers first.
    for (let i = 0; i < 4; i++) expect(await getFresh(`${base}/crm/v1/accounts?limit=1`, token)).toBe(200);
    const revoke = await fetch(`${base}/oauth/revoke`, {
      method: 'POST',
      body: new URLSearchParams({ token, client_id: 'pipeline-dashboard' }),
    });
    expect(revoke.status).toBe(200);
    const after: number[] = [];
    for (let i = 0; i < 6; i++) after.push(await getFresh(`${base}/crm/v1/accounts?limit=1`, token));
    expect(after).toEqual(Array(6).fill(401));
  });

  it('SIGTERM drains both workers; the one log verifies, and its final checkpoint is signed once, over every event', async () => {
    server.kill('SIGTERM');
    expect(await exited).toBe(0);
    const verified = await gatehouseAsync(['audit', 'verify', '--data-dir', dataDir, '--json']);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true });
    const db = new Database(join(dataDir, 'audit.db'), { readonly: true });
    try {
      const size = (db.prepare('select count(*) as n from audit_events').get() as { n: number }).n;
      const sizes = (
        db.prepare('select size from audit_checkpoints order by size').all() as Array<{ size: number }>
      ).map((row) => row.size);
      expect(sizes[sizes.length - 1]).toBe(size);
      expect(sizes.filter((s) => s === size)).toHaveLength(1);
      // Both workers' events are in it: the 16 reads above, 6 of them refused by the limit.
      const reads = db
        .prepare(`select count(*) as n from audit_events where event like '%"resource_type":"account"%'`)
        .get() as { n: number };
      expect(reads.n).toBeGreaterThanOrEqual(10);
    } finally {
      db.close();
    }
  }, 60_000);
});
