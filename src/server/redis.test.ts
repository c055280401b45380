import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testDatabase } from '../../test/support/database.js';
import { dpopKey, dpopProof } from '../../test/support/broker.js';
import {
  startRedisProxy,
  testRedisUrl,
  uniquePrefix,
  withoutRedisNote,
  type RedisProxy,
} from '../../test/support/redis.js';
import type { AccessTokenClaims } from '../broker/access-token.js';
import { DpopProofError, DpopVerifier } from '../broker/dpop.js';
import { recordRevocation, RevocationList } from '../broker/revocation.js';
import { brokerDb } from '../broker/tables.js';
import { loadConfig, type Config } from '../config/index.js';
import { createLimits, defaultLimitsConfig, throttleTarget } from '../limits/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import { createLogger } from './log.js';
import { checkReadiness, dependencyChecks } from './readiness.js';
import { connectRedis, type RedisServices } from './redis.js';

if (!testRedisUrl) console.warn(`src/server/redis.test.ts: ${withoutRedisNote}`);

const logger = createLogger('silent');
const nowSeconds = () => Math.floor(Date.now() / 1000);
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

function redisConfig(url: string, keyPrefix: string, dataDir = '/nonexistent'): Config {
  return loadConfig({ env: {}, overrides: { dataDir, 'redis.url': url, 'redis.keyPrefix': keyPrefix } });
}

const claims = (overrides: Partial<AccessTokenClaims> = {}): AccessTokenClaims => ({
  iss: 'http://gatehouse',
  aud: 'gatehouse-gateway',
  sub: 'alice',
  email: 'alice@example.com',
  client_id: 'call-notes',
  app_id: 'call-notes',
  scope: 'read:account.basic',
  role: 'sales_rep',
  jti: `j-${Math.random()}`,
  iat: nowSeconds() - 10,
  exp: nowSeconds() + 300,
  ...overrides,
});

describe('connectRedis', () => {
  it('refuses to start on an unreachable Redis with one line naming host and port, never the password', async () => {
    const config = redisConfig('redis://gatehouse:s3cret-pass@127.0.0.1:1', 'gatehouse:');
    const failure = await connectRedis(config, logger).catch((error: unknown) => error);
    expect(failure).toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    const { message } = failure as Error;
    expect(message).toContain('redis.url: cannot connect to Redis at 127.0.0.1:1 (ECONNREFUSED)');
    expect(message).not.toContain('s3cret-pass');
  });
});

describe.skipIf(!testRedisUrl)('Redis across nodes', () => {
  let dataDir: string;
  /** Two handles on one database: two nodes. */
  let stores: Store[];
  let proxy: RedisProxy;
  const services: RedisServices[] = [];

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-redis-'));
    const config = loadConfig({ env: {}, overrides: { dataDir, ...(await testDatabase(dataDir)) } });
    stores = [await openGatehouseStore(config), await openGatehouseStore(config)];
    proxy = await startRedisProxy();
  });
  afterAll(async () => {
    await Promise.all(services.map((s) => s.close()));
    await Promise.all(stores.map((s) => s.close()));
    await proxy?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  /** Node 0 reaches Redis directly, node 1 through the proxy (so a test can take Redis from it). */
  async function twoNodes(prefix: string): Promise<[RedisServices, RedisServices]> {
    const pair: [RedisServices, RedisServices] = [
      await connectRedis(redisConfig(testRedisUrl as string, prefix), logger),
      await connectRedis(redisConfig(proxy.url, prefix), logger),
    ];
    services.push(...pair);
    return pair;
  }

  /** A revocation list that never polls on its own within the test: only notices can bring news. */
  const list = (store: Store, redis: RedisServices) =>
    new RevocationList(brokerDb(store.db), {
      pollMs: 600_000,
      maxStalenessMs: 5000,
      fanout: redis.revocationFanout,
    });

  const revokeOnNodeA = (token: AccessTokenClaims) =>
    recordRevocation(brokerDb((stores[0] as Store).db), {
      kind: 'jti',
      value: token.jti,
      expiresAt: nowSeconds() + 60,
      reason: 'test',
      now: nowSeconds(),
    });

  it('a revocation written on one node is refused on the other within milliseconds, not at its next poll', async () => {
    const [a, b] = await twoNodes(uniquePrefix('fanout'));
    const onA = list(stores[0] as Store, a);
    const onB = list(stores[1] as Store, b);
    await Promise.all([onA.ready(), onB.ready()]);
    const token = claims();
    onB.check(token);
    await revokeOnNodeA(token);
    const written = performance.now();
    await onA.sync();
    let refusedAfterMs: number | undefined;
    while (performance.now() - written < 1000) {
      try {
        onB.check(token);
      } catch (error) {
        expect(error).toMatchObject({ code: 'TOKEN_REVOKED' });
        refusedAfterMs = performance.now() - written;
        break;
      }
      await sleep(2);
    }
    expect(refusedAfterMs).toBeDefined();
    onA.close();
    onB.close();
  });

  it('without notices (Redis down), a node refuses every token once its last read is a second old', async () => {
    const [a, b] = await twoNodes(uniquePrefix('unheard'));
    const onA = list(stores[0] as Store, a);
    const onB = list(stores[1] as Store, b);
    await Promise.all([onA.ready(), onB.ready()]);
    proxy.cut();
    try {
      await waitFor(() => !b.revocationFanout.listening);
      await sleep(1100);
      // Node a still hears notices: 1.1 s since its last read is within the 5 s staleness limit.
      onA.check(claims());
      expect(() => onB.check(claims())).toThrow(expect.objectContaining({ code: 'DEPENDENCY_UNAVAILABLE' }));
      expect(b.revocationFanout.listening).toBe(false);
    } finally {
      proxy.restore();
    }
    // Back: the resubscription prompts a read, after which tokens are checked again.
    await waitFor(() => b.revocationFanout.listening);
    await waitFor(() => {
      try {
        onB.check(claims());
        return true;
      } catch {
        return false;
      }
    });
    onA.close();
    onB.close();
  });

  it('a node told of a revocation it cannot read refuses every token until it can', async () => {
    const [a, b] = await twoNodes(uniquePrefix('unreadable'));
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-redis-doomed-'));
    const doomed = await openGatehouseStore(
      loadConfig({ env: {}, overrides: { dataDir: dir, ...(await testDatabase(dir)) } }),
    );
    const onB = new RevocationList(brokerDb(doomed.db), {
      pollMs: 600_000,
      maxStalenessMs: 5000,
      fanout: b.revocationFanout,
    });
    await onB.ready();
    onB.check(claims());
    await doomed.close();
    await a.revocationFanout.announce();
    await waitFor(() => {
      try {
        onB.check(claims());
        return false;
      } catch (error) {
        expect(error).toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
        return true;
      }
    });
    onB.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('a DPoP proof accepted by one node is refused as a replay by another; without Redis it is refused (503)', async () => {
    const [a, b] = await twoNodes(uniquePrefix('dpop'));
    const verifier = (redis: RedisServices) =>
      new DpopVerifier({ windowSeconds: 60, now: () => new Date(), replay: redis.dpopReplay });
    const [onA, onB] = [verifier(a), verifier(b)];
    const key = await dpopKey();
    const url = 'http://gatehouse.test/crm/v1/accounts';
    const proof = await dpopProof(key, 'GET', url);
    await onA.verify({ proof, method: 'GET', url });
    await expect(onB.verify({ proof, method: 'GET', url })).rejects.toEqual(new DpopProofError('replay'));
    await expect(onA.verify({ proof, method: 'GET', url })).rejects.toEqual(new DpopProofError('replay'));

    proxy.cut();
    try {
      await waitFor(() => !b.revocationFanout.listening);
      const fresh = await dpopProof(key, 'GET', url);
      await expect(onB.verify({ proof: fresh, method: 'GET', url })).rejects.toMatchObject({
        code: 'DEPENDENCY_UNAVAILABLE',
      });
      // Refused for want of Redis, the proof was not remembered: a retry once Redis is back is accepted.
      proxy.restore();
      await waitFor(() => b.revocationFanout.listening);
      await sleep(50);
      await onB.verify({ proof: fresh, method: 'GET', url });
    } finally {
      proxy.restore();
    }
  });

  describe('containment throttles', () => {
    const app = { appId: 'call-notes', userId: 'alice' };
    /** A node's limits on a frozen clock, so that the throttle's bucket never refills within a test. */
    const limitsOn = (node: RedisServices, clock: { t: number }) =>
      createLimits(defaultLimitsConfig, { backend: node.limits, now: () => clock.t });
    const knows = (node: RedisServices, clock: { t: number }, appId = 'call-notes') =>
      node.limits.throttles.current(appId, clock.t) !== undefined;

    it('a throttle set on one node binds every node within a second, on one budget, until any node lifts it', async () => {
      const prefix = uniquePrefix('throttle');
      const [a, b] = await twoNodes(prefix);
      const clock = { t: Date.now() };
      const [onA, onB] = [limitsOn(a, clock), limitsOn(b, clock)];
      await onA.throttleApp('call-notes', { ratePerSecond: 3, untilMs: clock.t + 60_000 });
      expect(await msUntil(() => knows(b, clock))).toBeLessThan(1000);
      // One bucket of 3 for the whole cluster, not 3 per node.
      const answers = [];
      for (const node of [onA, onB, onA, onB, onA]) answers.push((await node.consume(app)).allowed);
      expect(answers).toEqual([true, true, true, false, false]);
      expect(await onB.consume(app)).toMatchObject({ allowed: false, scope: 'throttle' });
      expect((await onB.consume({ appId: 'other', userId: 'alice' })).allowed).toBe(true);

      // A node started after the throttle enforces it from its first request.
      const c = await connectRedis(redisConfig(testRedisUrl as string, prefix), logger);
      services.push(c);
      expect(await limitsOn(c, clock).consume(app)).toMatchObject({ allowed: false, scope: 'throttle' });

      await onB.unthrottleApp('call-notes');
      expect(await msUntil(() => !knows(a, clock) && !knows(c, clock))).toBeLessThan(1000);
      for (const node of [onA, onB, onA, onB]) expect((await node.consume(app)).allowed).toBe(true);
    });

    it('a throttle aimed at one user in the app binds that user on every node, names its incident, and spares the others', async () => {
      const [a, b] = await twoNodes(uniquePrefix('throttle-user'));
      const clock = { t: Date.now() };
      const [onA, onB] = [limitsOn(a, clock), limitsOn(b, clock)];
      const target = throttleTarget('call-notes', 'alice@example.com');
      await onA.throttleApp('call-notes', {
        ratePerSecond: 1,
        untilMs: clock.t + 60_000,
        userId: 'alice@example.com',
        incident: 'inc-42',
      });
      await waitFor(() => knows(b, clock, target));
      const alice = { appId: 'call-notes', userId: 'u-alice', actor: 'alice@example.com' };
      expect((await onB.consume(alice)).allowed).toBe(true);
      expect(await onB.consume(alice)).toMatchObject({
        allowed: false,
        scope: 'throttle',
        incident: 'inc-42',
      });
      const erin = { appId: 'call-notes', userId: 'u-erin', actor: 'erin@example.com' };
      for (let i = 0; i < 5; i++) expect((await onA.consume(erin)).allowed).toBe(true);
      await onB.unthrottleApp('call-notes', 'alice@example.com');
      await waitFor(() => !knows(a, clock, target));
      expect((await onA.consume(alice)).allowed).toBe(true);
    });

    it('a throttle ends by itself at its end time on every node', async () => {
      const [a, b] = await twoNodes(uniquePrefix('throttle-end'));
      const clock = { t: Date.now() };
      const [onA, onB] = [limitsOn(a, clock), limitsOn(b, clock)];
      await onA.throttleApp('call-notes', { ratePerSecond: 1, untilMs: clock.t + 10_000 });
      await waitFor(() => knows(b, clock));
      expect((await onA.consume(app)).allowed).toBe(true);
      expect(await onB.consume(app)).toMatchObject({ allowed: false, scope: 'throttle' });
      clock.t += 10_000;
      for (const node of [onA, onB, onA, onB]) expect((await node.consume(app)).allowed).toBe(true);
      expect(knows(a, clock) || knows(b, clock)).toBe(false);
    });

    it('without Redis, setting or lifting a throttle fails (503, saying so) and nodes keep the throttles they knew', async () => {
      const [a, b] = await twoNodes(uniquePrefix('throttle-down'));
      const clock = { t: Date.now() };
      const [onA, onB] = [limitsOn(a, clock), limitsOn(b, clock)];
      await onA.throttleApp('call-notes', { ratePerSecond: 3, untilMs: clock.t + 60_000 });
      await waitFor(() => knows(b, clock));
      proxy.cut();
      try {
        await waitFor(() => !b.revocationFanout.listening);
        const failure = await onB
          .throttleApp('other', { ratePerSecond: 1, untilMs: clock.t + 60_000 })
          .catch((error: unknown) => error);
        expect(failure).toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE', status: 503 });
        expect((failure as Error).message).toMatch(
          /^cannot throttle app other: Redis did not confirm the throttle \(connection \w+\), so it is not in force here/,
        );
        await expect(onB.unthrottleApp('call-notes')).rejects.toMatchObject({
          code: 'DEPENDENCY_UNAVAILABLE',
          message: expect.stringContaining('so nodes keep enforcing the throttle until it ends'),
        });
        // Well past a read of the throttles, node b still enforces the one it knew: its share of the
        // bucket (3 over redis.expectedNodes = 3), counted in memory until Redis is back.
        await sleep(1100);
        const answers = [];
        for (let i = 0; i < 3; i++) answers.push((await onB.consume(app)).allowed);
        expect(answers).toEqual([true, false, false]);
        expect(await onB.consume(app)).toMatchObject({ scope: 'throttle' });
        expect(knows(b, clock, 'other') || knows(a, clock, 'other')).toBe(false);

        // Lifted meanwhile through node a, the throttle ends on node b once Redis is back.
        await onA.unthrottleApp('call-notes');
        expect(knows(b, clock)).toBe(true);
      } finally {
        proxy.restore();
      }
      await waitFor(() => !knows(b, clock));
    });
  });

  it('a connection lost again while it resubscribes neither crashes the node nor leaves it deaf', async () => {
    const [a, b] = await twoNodes(uniquePrefix('resubscribe'));
    const onA = list(stores[0] as Store, a);
    const onB = list(stores[1] as Store, b);
    await Promise.all([onA.ready(), onB.ready()]);
    // An unhandled rejection ends a Node process: this one would take the node down with it.
    const unhandled: unknown[] = [];
    const collect = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', collect);
    try {
      proxy.cut();
      await waitFor(() => !b.revocationFanout.listening);
      proxy.dropOnNext('subscribe');
      proxy.restore();
      await sleep(2500);
      await waitFor(() => b.revocationFanout.listening);
      const token = claims();
      onB.check(token);
      await revokeOnNodeA(token);
      await onA.sync();
      await waitFor(() => {
        try {
          onB.check(token);
          return false;
        } catch (error) {
          return (error as { code?: string }).code === 'TOKEN_REVOKED';
        }
      });
      expect(unhandled).toEqual([]);
    } finally {
      process.off('unhandledRejection', collect);
      proxy.restore();
      onA.close();
      onB.close();
    }
  });

  it('/readyz names Redis when it is down, and what that means', async () => {
    const [, b] = await twoNodes(uniquePrefix('ready'));
    const store = stores[1] as Store;
    const deps = dependencyChecks({ store, idpIssuer: 'http://127.0.0.1:1/idp', redis: b });
    expect((await checkReadiness(deps)).checks.redis).toEqual({ ok: true });
    proxy.cut();
    try {
      await waitFor(() => !b.revocationFanout.listening);
      const report = await checkReadiness(deps);
      expect(report.ready).toBe(false);
      expect(report.checks.database).toMatchObject({ ok: true });
      expect(report.checks.redis).toMatchObject({ ok: false });
      expect(report.checks.redis?.detail).toMatch(
        /unreachable at 127\.0\.0\.1:\d+ .*limits are this node's share/,
      );
    } finally {
      proxy.restore();
    }
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await sleep(5);
  }
}

/** Milliseconds until `condition` holds; throws after 5 s. */
async function msUntil(condition: () => boolean): Promise<number> {
  const start = performance.now();
  await waitFor(condition);
  return performance.now() - start;
}
