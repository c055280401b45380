import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { loadConfig } from '../src/config/index.js';
import { mintDevIdToken, signInAtDevIdp } from '../src/devidp/index.js';
import { defaultPolicyDir } from '../src/policy-library/index.js';
import { consoleRedirectUri } from './support/broker.js';
import { serverSecrets } from './support/demo.js';
import { gatehouse, gatehouseAsync } from './support/cli.js';
import { onPostgres, testDatabase } from './support/database.js';
import { startTcpProxy, type TcpProxy } from './support/proxy.js';
import { testRedisUrl, uniquePrefix, withoutRedisNote } from './support/redis.js';

/**
 * Three `gatehouse serve` processes on loopback, one PostgreSQL database, one Redis, one shared data
 * dir (its secrets: the signing keys). They must behave as one Gatehouse (CONTRACT.md, Scale-out).
 * Needs the built CLI (npm test builds first), GATEHOUSE_TEST_DATABASE_URL and GATEHOUSE_TEST_REDIS_URL.
 */

const ready = onPostgres && testRedisUrl !== undefined;
if (!ready) {
  console.warn(
    `test/cluster.e2e.test.ts: ${withoutRedisNote}, and GATEHOUSE_TEST_DATABASE_URL to a PostgreSQL server`,
  );
}

const bin = fileURLToPath(new URL('../bin/gatehouse.js', import.meta.url));
const perUserBurst = 100;

interface Node {
  url: string;
  process: ChildProcess;
  stderr: string;
}

describe.skipIf(!ready)('three nodes on one PostgreSQL and one Redis', () => {
  const dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-cluster-'));
  const nodes: Node[] = [];
  let publicUrl = '';
  let env: Record<string, string> = {};

  beforeAll(async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    // Tokens name one issuer, the address clients use (a load balancer's, in production); here node 1's.
    publicUrl = `http://127.0.0.1:${ports[0]}`;
    const configFile = join(dataDir, 'gatehouse.yaml');
    writeFileSync(
      configFile,
      stringify({
        redis: { keyPrefix: uniquePrefix('cluster') },
        // Every export budget capped at 50 records: the app's (checked first) refuses the export below.
        limits: {
          perUser: { burst: perUserBurst, ratePerSecond: 0.01 },
          bulkExport: { maxTracked: 50, minimum: 50 },
        },
        // These tests read in bulk whenever CI runs: off working hours that would be a detection of its own.
        detect: { rules: { off_hours_bulk: { enabled: false } } },
      }),
    );
    env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      GATEHOUSE_DATABASE_URL: (await testDatabase(dataDir))['database.url'] as string,
      GATEHOUSE_REDIS_URL: testRedisUrl as string,
      GATEHOUSE_PUBLIC_URL: publicUrl,
      GATEHOUSE_CONFIG: configFile,
      GATEHOUSE_DATA_DIR: dataDir,
      GATEHOUSE_LOG_LEVEL: 'warn',
    };
    // Started together: the first migrates and seeds, the others wait for it.
    nodes.push(...ports.map((port) => startNode(port, env)));
    await Promise.all(nodes.map((node) => waitUntilReady(node)));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(nodes.map((node) => stopNode(node)));
    rmSync(dataDir, { recursive: true, force: true });
  });

  const config = () =>
    loadConfig({ env: {}, overrides: { dataDir, 'database.url': env.GATEHOUSE_DATABASE_URL } });
  async function accessToken(node: Node, user: string, clientId: string, scope: string): Promise<string> {
    // Platform scopes come only from the console's sign-in, which runs at the public URL (node 1).
    if (clientId === 'console') {
      const signedIn = await signInAtDevIdp({
        base: publicUrl,
        clientId,
        redirectUri: consoleRedirectUri,
        scope,
        user,
      });
      return signedIn.access_token as string;
    }
    const { secrets, close } = await serverSecrets(config());
    const subjectToken = await mintDevIdToken({
      config: config(),
      secrets,
      user,
      issuer: `${publicUrl}/idp`,
      audience: clientId,
    }).finally(close);
    const response = await fetch(`${node.url}/oauth/token`, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: subjectToken,
        subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
        client_id: clientId,
        scope,
      }),
    });
    const body = (await response.json()) as { access_token?: string };
    if (!body.access_token) throw new Error(`token exchange failed: ${JSON.stringify(body)}`);
    return body.access_token;
  }
  const read = (node: Node, token: string, path = '/crm/v1/accounts?limit=1') =>
    fetch(`${node.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  const node = (i: number) => nodes[i] as Node;

  /** Milliseconds from now until `token` is refused as revoked on `target` (polled every 5 ms). */
  async function msUntilRefused(target: Node, token: string, since: number): Promise<number> {
    for (;;) {
      const response = await read(target, token);
      if (response.status === 401) {
        expect(((await response.json()) as { code: string }).code).toBe('TOKEN_REVOKED');
        return performance.now() - since;
      }
      expect(response.status).toBe(200);
      if (performance.now() - since > 3000) throw new Error('still accepted after 3 s');
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  }

  it('every node is ready, on PostgreSQL and Redis', async () => {
    for (const n of nodes) {
      const response = await fetch(`${n.url}/readyz`);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({
        ready: true,
        checks: { database: { ok: true, detail: 'postgres' }, redis: { ok: true } },
      });
    }
  });

  it('serves load spread over the three with tokens minted by any of them, into one audit log', async () => {
    const tokens = [
      await accessToken(node(1), 'alice', 'call-notes', 'read:account.basic'),
      await accessToken(node(2), 'bob', 'call-notes', 'read:account.basic'),
    ];
    const requests = Array.from({ length: 80 }, (_, i) => ({
      node: node(i % 3),
      token: tokens[i % 2] as string,
    }));
    const statuses: number[] = [];
    const ids: string[] = [];
    for (let i = 0; i < requests.length; i += 12) {
      await Promise.all(
        requests.slice(i, i + 12).map(async ({ node: n, token }) => {
          const response = await read(n, token);
          statuses.push(response.status);
          ids.push(response.headers.get('x-request-id') as string);
          await response.body?.cancel();
        }),
      );
    }
    expect(statuses.filter((s) => s !== 200)).toEqual([]);

    const auditor = await accessToken(node(0), 'carol', 'console', 'audit:read');
    for (const id of ids.slice(0, 6)) {
      await waitFor(async () => {
        const page = (await (await read(node(2), auditor, `/audit/v1/events?request_id=${id}`)).json()) as {
          records: unknown[];
        };
        return page.records.length === 1;
      });
    }
    const verified = gatehouse(['audit', 'verify', '--json'], env);
    expect(verified.code).toBe(0);
    expect(JSON.parse(verified.stdout)).toMatchObject({ ok: true });
    expect((JSON.parse(verified.stdout) as { size: number }).size).toBeGreaterThanOrEqual(80);
  });

  it('a token revoked on one node is refused on the other two within a second', async () => {
    const token = await accessToken(node(0), 'bob', 'call-notes', 'read:account.basic');
    // Verified, and so cached, on every node first.
    for (const n of nodes) expect((await read(n, token)).status).toBe(200);
    const revoke = await fetch(`${node(0).url}/oauth/revoke`, {
      method: 'POST',
      body: new URLSearchParams({ token, client_id: 'call-notes' }),
    });
    expect(revoke.status).toBe(200);
    const since = performance.now();
    const [second, third] = await Promise.all([
      msUntilRefused(node(1), token, since),
      msUntilRefused(node(2), token, since),
    ]);
    console.info(
      `revocation through /oauth/revoke refused on node 2 after ${second.toFixed(0)} ms, node 3 after ${third.toFixed(0)} ms`,
    );
    expect(Math.max(second, third)).toBeLessThan(1000);
    expect((await read(node(0), token)).status).toBe(401);
  });

  it('a revocation by the CLI (no server involved) is refused on all three within a second', async () => {
    const token = await accessToken(node(2), 'bob', 'call-notes', 'read:account.basic');
    for (const n of nodes) expect((await read(n, token)).status).toBe(200);
    const revoked = gatehouse(
      ['token', 'revoke', '--user', 'bob@example.com', '--reason', 'cluster test'],
      env,
    );
    expect(revoked.code).toBe(0);
    const since = performance.now();
    const waits = await Promise.all(nodes.map((n) => msUntilRefused(n, token, since)));
    console.info(
      `revocation by the CLI refused after ${waits.map((ms) => `${ms.toFixed(0)} ms`).join(', ')}`,
    );
    expect(Math.max(...waits)).toBeLessThan(1000);
  });

  it('holds one rate limit across the nodes: spreading requests does not multiply it', async () => {
    const token = await accessToken(node(0), 'erin', 'call-notes', 'read:account.basic');
    const statuses: number[] = [];
    for (let i = 0; i < perUserBurst; i++) statuses.push((await read(node(i % 3), token)).status);
    expect(statuses.every((s) => s === 200)).toBe(true);
    for (const n of nodes) {
      const refused = await read(n, token);
      expect(refused.status).toBe(429);
      expect(Number(refused.headers.get('retry-after'))).toBeGreaterThan(0);
      expect(((await refused.json()) as { code: string }).code).toBe('RATE_LIMITED');
    }
  });

  let exporter = '';
  it('holds one bulk-export threshold across the nodes', async () => {
    const token = await accessToken(node(1), 'alice', 'call-notes', 'read:contact.basic');
    exporter = token;
    const first = await read(node(0), token, '/crm/v1/contacts?limit=40&fields=first_name');
    expect(first.status).toBe(200);
    const { next_cursor: cursor } = (await first.json()) as { next_cursor: string };
    // 40 distinct contacts on node 1; 40 more on node 2 would pass the threshold of 50.
    const second = await read(node(1), token, `/crm/v1/contacts?limit=40&fields=first_name&cursor=${cursor}`);
    expect(second.status).toBe(403);
    expect(await second.json()).toMatchObject({ code: 'BULK_EXPORT_BLOCKED', threshold: 50 });
  });

  it('detects once for the cluster: that refusal opens one incident, and its containment holds on every node', async () => {
    const admin = await accessToken(node(2), 'dave', 'console', 'admin');
    const deadline = performance.now() + 5000;
    let found: Array<{ actor: string; app_id: string }> = [];
    while (found.length === 0 && performance.now() < deadline) {
      const response = await read(node(0), admin, '/admin/v1/incidents?rule=mass_export');
      found = ((await response.json()) as { records: typeof found }).records;
      if (found.length === 0) await new Promise((resolve) => setTimeout(resolve, 50));
    }
    expect(found).toHaveLength(1);
    expect(found[0]).toMatchObject({ actor: 'alice@example.com', app_id: 'call-notes' });
    // The playbook revokes the app's tokens: refused on every node, not only the detecting one.
    for (const n of nodes) expect(await msUntilRefused(n, exporter, performance.now())).toBeLessThan(1000);
    // One detector watched the whole log: the sequencer's, and it says so.
    const metrics = await Promise.all(
      nodes.map(async (n) => {
        const text = await (
          await fetch(`${n.url}/metrics`, { headers: { authorization: `Bearer ${admin}` } })
        ).text();
        const value = (name: string) => Number(new RegExp(`^${name} (\\S+)$`, 'm').exec(text)?.[1]);
        return { events: value('gatehouse_detect_events'), watching: value('gatehouse_detect_watching') };
      }),
    );
    expect(metrics.filter((m) => m.events > 0)).toHaveLength(1);
    expect(metrics.map((m) => m.watching).sort()).toEqual([0, 0, 1]);
    expect(metrics.find((m) => m.watching === 1)?.events).toBeGreaterThan(0);
  });

  it('a denial burst spread over the nodes throttles the prober in the app on every node', async () => {
    const token = await accessToken(node(0), 'bob', 'pipeline-dashboard', 'read:opportunity.aggregate');
    const aggregate = '/crm/v1/opportunities/aggregate?group_by=stage&metric=sum(amount)';
    expect((await read(node(2), token, aggregate)).status).toBe(200);
    // Probing outside its scopes, a third on each node: only the cluster-wide detector sees 20 in a minute.
    for (let i = 0; i < 20; i++) {
      expect((await read(node(i % 3), token, '/crm/v1/accounts?limit=1')).status).toBe(403);
    }
    for (const n of nodes) {
      const deadline = performance.now() + 2000;
      let status = 0;
      while (status !== 429 && performance.now() < deadline) {
        status = (await read(n, token, aggregate)).status;
        if (status !== 429) await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(status, `${n.url} did not throttle bob in the app`).toBe(429);
    }
  });
});

describe.skipIf(!ready)('stateless nodes: separate, empty data dirs on one PostgreSQL and one Redis', () => {
  // Nothing is shared but the database, Redis and the master key (an orchestrator's secret).
  const home = mkdtempSync(join(tmpdir(), 'gatehouse-stateless-'));
  const dirs = ['a', 'b', 'c', 'cli'].map((name) => join(home, name));
  const nodes: Node[] = [];
  let env: Record<string, string> = {};
  let proxy: TcpProxy | undefined;
  const envOf = (i: number) => ({ ...env, GATEHOUSE_DATA_DIR: dirs[i] as string });
  // Never a synchronous CLI run here: the test process carries the third node's database proxy.
  const token = async (user: string, app: string, scope: string) => {
    const result = await gatehouseAsync(
      ['dev', 'token', '--user', user, '--app', app, '--scope', scope],
      envOf(3),
    );
    expect(result.stderr).toBe('');
    return result.stdout.trim();
  };
  const tokens: Record<'alice' | 'bob' | 'dave' | 'erin', string> = {
    alice: '',
    bob: '',
    dave: '',
    erin: '',
  };
  const get = (n: Node, path: string, bearer: string) =>
    fetch(`${n.url}${path}`, { headers: { authorization: `Bearer ${bearer}` } });

  beforeAll(async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    const databaseUrl = (await testDatabase(home))['database.url'] as string;
    const configFile = join(home, 'gatehouse.yaml');
    writeFileSync(
      configFile,
      stringify({
        redis: { keyPrefix: uniquePrefix('stateless') },
        control: { maxStalenessMs: 3000 },
        detect: { enabled: false },
      }),
    );
    env = {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      GATEHOUSE_DATABASE_URL: databaseUrl,
      GATEHOUSE_REDIS_URL: testRedisUrl as string,
      GATEHOUSE_PUBLIC_URL: `http://127.0.0.1:${ports[0]}`,
      GATEHOUSE_CONFIG: configFile,
      GATEHOUSE_MASTER_KEY: randomBytes(32).toString('base64'),
      GATEHOUSE_LOG_LEVEL: 'warn',
    };
    nodes.push(startNode(ports[0] as number, envOf(0)), startNode(ports[1] as number, envOf(1)));
    await Promise.all(nodes.map((n) => waitUntilReady(n)));
    [tokens.alice, tokens.bob, tokens.dave, tokens.erin] = await Promise.all([
      token('alice', 'call-notes', 'read:account.basic'),
      token('bob', 'pipeline-dashboard', 'read:account.basic'),
      token('dave', 'console', 'admin'),
      token('erin', 'call-notes', 'read:account.basic'),
    ]);
    // The third node reaches PostgreSQL through a proxy the test can cut.
    const target = new URL(databaseUrl);
    proxy = await startTcpProxy({ host: target.hostname, port: Number(target.port || 5432) });
    target.host = `127.0.0.1:${proxy.port}`;
    nodes.push(startNode(ports[2] as number, { ...envOf(2), GATEHOUSE_DATABASE_URL: target.toString() }));
  }, 180_000);

  afterAll(async () => {
    await Promise.all(nodes.map((n) => stopNode(n)));
    await proxy?.close();
    rmSync(home, { recursive: true, force: true });
  });

  const [a, b] = [() => nodes[0] as Node, () => nodes[1] as Node];

  it('form one Gatehouse: a token minted by one is accepted by the other', async () => {
    // No secret files anywhere: keys and secrets live in the database, sealed under the master key.
    for (const dir of dirs.slice(0, 2)) expect(existsSync(join(dir, 'secrets'))).toBe(false);
    for (const n of [a(), b()]) {
      expect((await get(n, '/crm/v1/accounts?limit=1', tokens.alice)).status).toBe(200);
    }
    const ready = (await (await fetch(`${b().url}/readyz`)).json()) as { checks: Record<string, unknown> };
    expect(ready.checks.control).toMatchObject({ ok: true });
  });

  it('a policy published through one node is in force on the other within seconds', async () => {
    const listBig = (n: Node) => get(n, '/crm/v1/accounts?limit=150&fields=name', tokens.bob);
    expect((await listBig(a())).status).toBe(200);
    const exportRules = readFileSync(join(defaultPolicyDir(), 'runtime', 'export.cedar'), 'utf8').replace(
      '> 1000',
      '> 100',
    );
    const published = await fetch(`${b().url}/admin/v1/policies/publish`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tokens.dave}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        files: { 'runtime/export.cedar': exportRules },
        reason: 'exports above 100 need an elevation',
        force: true,
      }),
    });
    expect(published.status).toBe(200);
    const { version } = (await published.json()) as { version: string };
    await waitFor(async () => (await listBig(a())).status === 403, 5000);
    const ready = (await (await fetch(`${a().url}/readyz`)).json()) as {
      checks: Record<string, { detail?: string }>;
    };
    expect(ready.checks.policy?.detail).toBe(version);
  });

  it('a signing key revoked on one node is honoured by the other, and the new key is accepted there', async () => {
    const { dave, erin } = tokens;
    expect((await get(b(), '/crm/v1/accounts?limit=1', erin)).status).toBe(200);
    const kid = (
      JSON.parse(Buffer.from(erin.split('.')[0] as string, 'base64url').toString()) as { kid: string }
    ).kid;
    const revoked = await fetch(`${a().url}/admin/v1/keys/${kid}/revoke`, {
      method: 'POST',
      headers: { authorization: `Bearer ${dave}`, 'content-type': 'application/json' },
      body: JSON.stringify({ reason: 'stateless cluster test' }),
    });
    expect(revoked.status).toBe(200);
    const { signing_kid: next } = (await revoked.json()) as { signing_kid: string };
    expect(next).not.toBe(kid);
    await waitFor(async () => (await get(b(), '/crm/v1/accounts?limit=1', erin)).status === 401, 5000);
    // Minted (through node 1) with the key that signs now: node 2 takes it.
    tokens.erin = await token('erin', 'call-notes', 'read:account.basic');
    expect((await get(b(), '/crm/v1/accounts?limit=1', tokens.erin)).status).toBe(200);
    const jwks = (await (await fetch(`${b().url}/.well-known/jwks.json`)).json()) as {
      keys: { kid: string }[];
    };
    expect(jwks.keys.map((k) => k.kid)).toContain(next);
    expect(jwks.keys.map((k) => k.kid)).not.toContain(kid);
  }, 60_000);

  it('a third node with an empty data dir joins and serves', async () => {
    const third = nodes[2] as Node;
    await waitUntilReady(third);
    expect((await get(third, '/crm/v1/accounts?limit=1', tokens.erin)).status).toBe(200);
  });

  it('a node that loses the store goes stale and refuses (fail closed), and serves again once it is back', async () => {
    const third = nodes[2] as Node;
    const alice = tokens.erin;
    proxy?.cut();
    const controlCheck = async () =>
      ((await (await fetch(`${third.url}/readyz`)).json()) as { checks: Record<string, { ok: boolean }> })
        .checks.control;
    await waitFor(async () => (await controlCheck())?.ok === false, 20_000);
    // Keys and policy may have changed elsewhere: even the key set is not served from a stale snapshot.
    const jwks = await fetch(`${third.url}/.well-known/jwks.json`);
    expect(jwks.status).toBe(503);
    const stale = (await jwks.json()) as { code: string; type: string };
    expect(stale).toMatchObject({ code: 'CONTROL_STALE' });
    // What the refusal means stays readable from the node that refuses (its documentation is static).
    const documented = await fetch(stale.type, { headers: { accept: 'application/json' } });
    expect(documented.status).toBe(200);
    expect(await documented.json()).toMatchObject({ code: 'CONTROL_STALE', status: 503 });
    expect((await get(third, '/crm/v1/accounts?limit=1', alice)).status).toBe(503);
    expect((await fetch(`${third.url}/readyz`)).status).toBe(503);
    // The other nodes never lost the store: they keep serving.
    expect((await get(a(), '/crm/v1/accounts?limit=1', alice)).status).toBe(200);
    proxy?.restore();
    await waitFor(async () => (await get(third, '/crm/v1/accounts?limit=1', alice)).status === 200, 20_000);
  });
});

function startNode(port: number, env: Record<string, string>): Node {
  const child = spawn(process.execPath, [bin, 'serve', '--demo', '--port', String(port)], {
    env,
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const node: Node = { url: `http://127.0.0.1:${port}`, process: child, stderr: '' };
  child.stderr?.on('data', (chunk) => {
    node.stderr += String(chunk);
  });
  return node;
}

async function waitUntilReady(node: Node): Promise<void> {
  const deadline = Date.now() + 150_000;
  while (Date.now() < deadline) {
    if (node.process.exitCode !== null) throw new Error(`node ${node.url} exited: ${node.stderr}`);
    const status = await fetch(`${node.url}/readyz`).then(
      (r) => r.status,
      () => 0,
    );
    if (status === 200) return;
    await new Promise((resolve) => setTimeout(resolve, 250));
  }
  throw new Error(`node ${node.url} not ready: ${node.stderr}`);
}

async function stopNode(node: Node): Promise<void> {
  if (node.process.exitCode !== null) return;
  const exited = new Promise((resolve) => node.process.once('exit', resolve));
  node.process.kill('SIGTERM');
  await exited;
}

function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const probe = createServer().listen(0, '127.0.0.1', () => {
      const { port } = probe.address() as { port: number };
      probe.close(() => resolve(port));
    });
  });
}

async function waitFor(condition: () => Promise<boolean>, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}
