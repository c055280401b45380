import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config/index.js';
import { mintDevIdToken } from '../src/devidp/index.js';
import { gatehouse } from './support/cli.js';
import { onPostgres, testDatabase, withTestDatabase } from './support/database.js';
import { serverSecrets, startDemo } from './support/demo.js';

/**
 * The audit log on PostgreSQL: many `gatehouse serve` processes append to one log through one
 * sequencer (DESIGN.md, Audit trail). Real processes on loopback, one database, one shared data dir
 * (its secrets hold the checkpoint signing key every node signs with). Runs on the PostgreSQL pass
 * of `npm test` (GATEHOUSE_TEST_DATABASE_URL); on the embedded pass there is no sequencer to test.
 */

if (!onPostgres) {
  console.warn(
    'test/postgres-audit.e2e.test.ts: skipped: set GATEHOUSE_TEST_DATABASE_URL to a PostgreSQL server (eval "$(.ci/services.sh start)") to run it',
  );
}

const bin = fileURLToPath(new URL('../bin/gatehouse.js', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-pg-audit-'));

interface Node {
  url: string;
  process: ChildProcess;
  output: string;
}

/** Every node a test started: all stopped at the end, even when a start failed half way. */
const started: Node[] = [];
afterAll(async () => {
  await Promise.all(started.map((node) => stopNode(node)));
  rmSync(scratch, { recursive: true, force: true });
});

/** A cluster of `count` nodes on a fresh data dir and database, started together. */
async function startCluster(name: string, count: number) {
  const dataDir = join(scratch, name);
  const ports = await Promise.all(Array.from({ length: count }, () => freePort()));
  // Tokens name one issuer, the address clients use (a load balancer's in production); here the first node's.
  const publicUrl = `http://127.0.0.1:${ports[0]}`;
  // The load is the point: detection (whose playbook would revoke its tokens for reading in bulk)
  // is off, and the rate limits are out of its way.
  const unlimited = { burst: 1_000_000, ratePerSecond: 1_000_000 };
  const configFile = join(scratch, `${name}.yaml`);
  writeFileSync(
    configFile,
    stringify({
      detect: { enabled: false },
      limits: { perApp: unlimited, perUser: unlimited, global: unlimited, dailyQuotaPerApp: 100_000_000 },
    }),
  );
  const env = {
    PATH: process.env.PATH ?? '',
    GATEHOUSE_CONFIG: configFile,
    GATEHOUSE_DATABASE_URL: (await testDatabase(dataDir))['database.url'] as string,
    GATEHOUSE_PUBLIC_URL: publicUrl,
    GATEHOUSE_DATA_DIR: dataDir,
    GATEHOUSE_LOG_LEVEL: 'info',
  };
  const nodes = ports.map((port) => startNode(port, env));
  await Promise.all(nodes.map((node) => waitUntilReady(node)));
  const config = loadConfig({
    env: {},
    overrides: { dataDir, demo: true, ...(await testDatabase(dataDir)) },
  });
  const accessToken = async (node: Node, user: string) => {
    // Issued to the call-notes app's own IdP client: the exchange is bound to the app asking.
    const { secrets, close } = await serverSecrets(config);
    const subjectToken = await mintDevIdToken({
      config,
      secrets,
      user,
      issuer: `${publicUrl}/idp`,
      audience: 'call-notes',
    }).finally(close);
    const response = await fetch(`${node.url}/oauth/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: subjectToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
        client_id: 'call-notes',
        scope: 'read:account.basic',
      }),
    });
    const body = (await response.json()) as { access_token?: string };
    if (!body.access_token) throw new Error(`token exchange failed: ${JSON.stringify(body)}`);
    return body.access_token;
  };
  return { dataDir, nodes, env, accessToken };
}

/** The process id of the node that holds the sequencer lock now (from its session's application_name). */
async function sequencerPid(dataDir: string): Promise<number | undefined> {
  const rows = await withTestDatabase(dataDir, async (client) => {
    const result = await client.query<{ application_name: string }>(
      `select a.application_name from pg_locks l join pg_stat_activity a on a.pid = l.pid
       where l.locktype = 'advisory' and l.granted and a.application_name like 'gatehouse-audit %'
         and l.database = (select oid from pg_database where datname = current_database())`,
    );
    return result.rows;
  });
  expect(rows.length).toBeLessThanOrEqual(1);
  const match = rows[0]?.application_name.match(/pid=(\d+)$/);
  return match ? Number(match[1]) : undefined;
}

/**
 * Reads one account at a time on `node` until `stop()`, `workers` in parallel; answers the request ids
 * of the 200s (acknowledged: their events were in the log before the answer) with when they came.
 */
async function load(
  node: Node,
  token: string,
  stop: () => boolean,
  workers = 4,
): Promise<{ acknowledged: Array<{ id: string; at: number }>; failures: number[] }> {
  const acknowledged: Array<{ id: string; at: number }> = [];
  const failures: number[] = [];
  await Promise.all(
    Array.from({ length: workers }, async () => {
      while (!stop()) {
        let response: Response;
        try {
          response = await fetch(`${node.url}/crm/v1/accounts?limit=1`, {
            headers: { authorization: `Bearer ${token}` },
          });
        } catch {
          return; // the node is gone: what it never answered was never acknowledged
        }
        if (response.status === 200) {
          await response.body?.cancel();
          acknowledged.push({ id: response.headers.get('x-request-id') as string, at: Date.now() });
        } else {
          await response.body?.cancel();
          failures.push(response.status);
        }
      }
    }),
  );
  return { acknowledged, failures };
}

/** The stored log's shape: size, whether its indexes are 0..size-1, and the request ids in it. */
async function storedLog(dataDir: string) {
  return withTestDatabase(dataDir, async (client) => {
    const { rows } = await client.query<{ idx: string; request_id: string }>(
      'select idx, request_id from audit_events order by idx',
    );
    const counts = new Map<string, number>();
    for (const row of rows) counts.set(row.request_id, (counts.get(row.request_id) ?? 0) + 1);
    return {
      size: rows.length,
      contiguous: rows.every((row, i) => Number(row.idx) === i),
      /** How many events carry this request id. */
      count: (requestId: string) => counts.get(requestId) ?? 0,
    };
  });
}

function verify(env: Record<string, string>) {
  const result = gatehouse(['audit', 'verify', '--json'], env);
  return { code: result.code, report: JSON.parse(result.stdout || '{}') as Record<string, unknown> };
}

describe.runIf(onPostgres)('one audit log, many nodes, one sequencer', () => {
  // One cluster for the whole block, in order: the last test kills its sequencer.
  let cluster: Awaited<ReturnType<typeof startCluster>>;
  beforeAll(async () => {
    cluster = await startCluster('cluster', 2);
  }, 120_000);

  it('two nodes started together migrate and seed once, and exactly one of them sequences', async () => {
    const { dataDir, nodes } = cluster;
    const pid = await sequencerPid(dataDir);
    expect(nodes.map((node) => node.process.pid)).toContain(pid);
    const accounts = await withTestDatabase(dataDir, async (client) => {
      const { rows } = await client.query<{ n: string }>('select count(*) as n from crm_accounts');
      return Number(rows[0]?.n);
    });
    expect(accounts).toBe(300); // seeded once, not twice
    const leader = nodes.find((node) => node.process.pid === pid) as Node;
    expect(leader.output).toContain('audit sequencer: this node now integrates the log');
    for (const node of nodes) {
      expect(await (await fetch(`${node.url}/readyz`)).json()).toMatchObject({
        checks: { database: { ok: true, detail: 'postgres' } },
      });
    }
  });

  it('appends from both nodes at once land in one log, each once, at consecutive indexes, and it verifies', async () => {
    const { dataDir, nodes, env, accessToken } = cluster;
    const [a, b] = nodes as [Node, Node];
    const tokens = [await accessToken(a, 'alice'), await accessToken(b, 'bob')];
    let sent = 0;
    const stop = () => ++sent > 160;
    const [fromA, fromB] = await Promise.all([
      load(a, tokens[0] as string, stop),
      load(b, tokens[1] as string, stop),
    ]);
    expect([...fromA.failures, ...fromB.failures]).toEqual([]);
    expect(fromA.acknowledged.length).toBeGreaterThan(20);
    expect(fromB.acknowledged.length).toBeGreaterThan(20);

    const log = await storedLog(dataDir);
    expect(log.contiguous).toBe(true);
    const acknowledged = [...fromA.acknowledged, ...fromB.acknowledged].map(({ id }) => id);
    expect(acknowledged.filter((id) => log.count(id) !== 1)).toEqual([]);

    const { code, report } = verify(env);
    expect(code).toBe(0);
    expect(report).toMatchObject({ ok: true });
    expect(report.size).toBeGreaterThanOrEqual(log.size);
  });

  it('a queued row that is not an event the nodes wrote is dropped by the sequencer, never hashed into the log', async () => {
    const { dataDir, nodes, env, accessToken } = cluster;
    const node = nodes[0] as Node;
    await withTestDatabase(dataDir, (client) =>
      client.query(
        `insert into audit_queue (id, event, queued_at) values ('forged:1', '{"action":"crm.read"}', '2025-01-01T00:00:00.000Z')`,
      ),
    );
    const token = await accessToken(node, 'erin');
    const response = await fetch(`${node.url}/crm/v1/accounts?limit=1`, {
      headers: { authorization: `Bearer ${token}` },
    });
    expect(response.status).toBe(200);
    const forgedRows = () =>
      withTestDatabase(dataDir, async (client) => {
        return (await client.query("select 1 from audit_queue where id = 'forged:1'")).rowCount;
      });
    await vi.waitFor(async () => expect(await forgedRows()).toBe(0), { timeout: 5000 });
    expect((await storedLog(dataDir)).count(response.headers.get('x-request-id') as string)).toBe(1);
    expect(verify(env)).toMatchObject({ code: 0, report: { ok: true } });
  });

  it('kill -9 of the sequencer mid-load: another node takes over, no acknowledged event is lost, and the log verifies', async () => {
    const { dataDir, nodes, env, accessToken } = cluster;
    const leaderPid = await sequencerPid(dataDir);
    const leader = nodes.find((node) => node.process.pid === leaderPid) as Node;
    const survivor = nodes.find((node) => node !== leader) as Node;
    const tokens = [await accessToken(leader, 'alice'), await accessToken(survivor, 'bob')];

    let stopAt = Number.POSITIVE_INFINITY;
    const loads = Promise.all([
      load(leader, tokens[0] as string, () => Date.now() > stopAt),
      load(survivor, tokens[1] as string, () => Date.now() > stopAt),
    ]);
    // Mid-load: both nodes have answered requests, and more are in flight on both.
    await new Promise((resolve) => setTimeout(resolve, 1500));
    leader.process.kill('SIGKILL');
    const killedAt = Date.now();
    stopAt = killedAt + 3000;
    const [fromLeader, fromSurvivor] = await loads;

    expect(await sequencerPid(dataDir)).toBe(survivor.process.pid);
    expect(survivor.output).toContain('audit sequencer: this node now integrates the log');
    expect(fromLeader.acknowledged.length).toBeGreaterThan(0);
    // The survivor never refused: its appends waited for the takeover, then went in.
    expect(fromSurvivor.failures).toEqual([]);
    expect(fromSurvivor.acknowledged.filter(({ at }) => at > killedAt).length).toBeGreaterThan(0);

    const log = await storedLog(dataDir);
    expect(log.contiguous).toBe(true);
    const acknowledged = [...fromLeader.acknowledged, ...fromSurvivor.acknowledged].map(({ id }) => id);
    // Each exactly once: nothing lost, nothing integrated twice across the takeover.
    expect(acknowledged.filter((id) => log.count(id) !== 1)).toEqual([]);

    const { code, report } = verify(env);
    expect(code).toBe(0);
    expect(report).toMatchObject({ ok: true });
    console.info(
      `kill -9 of the sequencer: ${fromLeader.acknowledged.length} + ${fromSurvivor.acknowledged.length} acknowledged events, each once in a log of ${log.size} that verifies`,
    );
  });
});

describe.runIf(onPostgres)('audit verify on PostgreSQL', () => {
  it('passes on the intact log and names the first bad index after a row is rewritten in the database', async () => {
    const demo = await startDemo({ keepDataDir: true });
    try {
      const token = await demo.accessToken('alice', 'call-notes', 'read:contact.basic');
      for (let i = 0; i < 6; i++) await demo.get('/crm/v1/contacts?limit=2', token);
      await demo.gatehouse.close();
      const dataDir = demo.dataDir;
      const intact = gatehouse(['audit', 'verify', '--json', '--data-dir', dataDir]);
      expect(intact.code).toBe(0);
      expect(JSON.parse(intact.stdout)).toMatchObject({ ok: true });

      await withTestDatabase(dataDir, (client) =>
        client.query(`update audit_events set event = replace(event, '"allow"', '"deny"') where idx = 3`),
      );
      const tampered = gatehouse(['audit', 'verify', '--json', '--data-dir', dataDir]);
      expect(tampered.code).not.toBe(0);
      expect(JSON.parse(tampered.stdout)).toMatchObject({ ok: false, firstBadIndex: 3 });

      // A deleted tail shows as well: signed checkpoints cover events that are gone.
      await withTestDatabase(dataDir, (client) => client.query('delete from audit_events where idx >= 5'));
      const truncated = gatehouse(['audit', 'verify', '--json', '--data-dir', dataDir]);
      expect(truncated.code).not.toBe(0);
      expect(JSON.parse(truncated.stdout)).toMatchObject({ ok: false });
    } finally {
      await demo.stop().catch(() => undefined);
      rmSync(demo.dataDir, { recursive: true, force: true });
    }
  }, 120_000);
});

function startNode(port: number, env: Record<string, string>): Node {
  const child = spawn(process.execPath, [bin, 'serve', '--demo', '--port', String(port)], {
    env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const node: Node = { url: `http://127.0.0.1:${port}`, process: child, output: '' };
  started.push(node);
  const collect = (chunk: unknown) => {
    node.output += String(chunk);
  };
  child.stdout?.on('data', collect);
  child.stderr?.on('data', collect);
  return node;
}

async function waitUntilReady(node: Node): Promise<void> {
  const deadline = Date.now() + 90_000;
  while (Date.now() < deadline) {
    if (node.process.exitCode !== null || node.process.signalCode !== null) {
      throw new Error(`node ${node.url} exited: ${node.output}`);
    }
    const status = await fetch(`${node.url}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  throw new Error(`node ${node.url} not ready: ${node.output}`);
}

async function stopNode(node: Node): Promise<void> {
  if (node.process.exitCode !== null || node.process.signalCode !== null) return;
  const exited = new Promise((resolve) => node.process.once('exit', resolve));
  node.process.kill('SIGTERM');
  await exited;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
