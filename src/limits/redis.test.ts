import fc from 'fast-check';
import type { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectTestRedis,
  startRedisProxy,
  testRedisUrl,
  uniquePrefix,
  withoutRedisNote,
} from '../../test/support/redis.js';
import { describeTokenBucketStore } from '../../test/support/token-bucket-contract.js';
import { defaultLimitsConfig, type LimitsConfig } from './config.js';
import { MemoryBuckets } from './buckets.js';
import { MemoryDistinctWindow } from './distinct-window.js';
import { createLimits } from './limits.js';
import {
  RedisBuckets,
  RedisDistinctWindow,
  redisBackend,
  type RedisLimitsBackend,
  type RedisLimitsOptions,
} from './redis.js';

if (!testRedisUrl) console.warn(`src/limits/redis.test.ts: ${withoutRedisNote}`);

const t0 = 1_700_000_000_000;

describe.skipIf(!testRedisUrl)('the Redis limits backend', () => {
  let redis: Redis;
  /** Every backend a test opens, closed at the end (each reads the throttles on a timer). */
  const opened: RedisLimitsBackend[] = [];
  const open = (options: RedisLimitsOptions) => {
    const backend = redisBackend(options);
    opened.push(backend);
    return backend;
  };
  beforeAll(async () => {
    redis = await connectTestRedis();
  });
  afterAll(async () => {
    opened.forEach((backend) => backend.close());
    await redis?.quit();
  });

  describeTokenBucketStore('redis', () => new RedisBuckets(redis, uniquePrefix('buckets')));

  it('takes asked for together (one script call) answer exactly as the same takes one after another', async () => {
    const take = fc.record({
      keys: fc.subarray(['global', 'app', 'user:a', 'user:b'], { minLength: 1 }),
      cost: fc.integer({ min: 1, max: 3 }),
      advance: fc.integer({ min: -500, max: 2000 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(take, { maxLength: 80 }), { maxLength: 4 }), async (rounds) => {
        const shared = new RedisBuckets(redis, uniquePrefix('batched'));
        const memory = new MemoryBuckets();
        const specs = (keys: string[]) =>
          keys.map((key) => ({
            key,
            capacity: key === 'global' ? 20 : 6,
            refillPerSecond: 3,
            ttlMs: 60_000,
          }));
        let now = t0;
        for (const takes of rounds) {
          const at = takes.map((t) => (now += t.advance));
          const together = await Promise.all(
            takes.map((t, i) => shared.take(specs(t.keys), t.cost, at[i] as number)),
          );
          for (const [i, t] of takes.entries()) {
            expect(together[i]).toEqual(await memory.take(specs(t.keys), t.cost, at[i] as number));
          }
        }
      }),
      { numRuns: 30 },
    );
  });

  it('counts distinct ids exactly as the memory window does, for any sequence of reads', async () => {
    const step = fc.record({
      key: fc.constantFrom('a', 'b'),
      ids: fc.array(fc.integer({ min: 0, max: 40 }).map(String), { maxLength: 12 }),
      advance: fc.integer({ min: 0, max: 30_000 }),
      cap: fc.integer({ min: 0, max: 30 }),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 25 }), async (steps) => {
        const shared = new RedisDistinctWindow(redis, uniquePrefix('distinct'));
        const memory = new MemoryDistinctWindow();
        let now = t0;
        for (const { key, ids, advance, cap } of steps) {
          now += advance;
          expect(await shared.admit(key, ids, now, 60_000, cap)).toEqual(
            await memory.admit(key, ids, now, 60_000, cap),
          );
        }
      }),
      { numRuns: 40 },
    );
  });

  it('admissions asked for together (one script call) answer exactly as the same ones one after another', async () => {
    const step = fc.record({
      users: fc.subarray(['user:a', 'user:b'], { minLength: 1 }),
      ids: fc.array(fc.integer({ min: 0, max: 40 }).map(String), { maxLength: 6 }),
      advance: fc.integer({ min: 0, max: 30_000 }),
      caps: fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 12 })),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(fc.array(step, { maxLength: 70 }), { maxLength: 3 }), async (rounds) => {
        const shared = new RedisDistinctWindow(redis, uniquePrefix('distinct-together'));
        const memory = new MemoryDistinctWindow();
        let now = t0;
        for (const steps of rounds) {
          const asks = steps.map(({ users, ids, advance, caps }) => ({
            windows: [{ key: 'app', cap: caps[0] }, ...users.map((key) => ({ key, cap: caps[1] }))],
            ids,
            at: (now += advance),
          }));
          const together = await Promise.all(
            asks.map((a) => shared.admitEach(a.windows, a.ids, a.at, 60_000)),
          );
          for (const [i, a] of asks.entries()) {
            expect(together[i]).toEqual(await memory.admitEach(a.windows, a.ids, a.at, 60_000));
          }
        }
      }),
      { numRuns: 30 },
    );
  });

  it('admits several windows in one call exactly as the memory window does, stopping at the first refusal', async () => {
    const step = fc.record({
      ids: fc.array(fc.integer({ min: 0, max: 40 }).map(String), { maxLength: 12 }),
      advance: fc.integer({ min: 0, max: 30_000 }),
      caps: fc.tuple(fc.integer({ min: 0, max: 30 }), fc.integer({ min: 0, max: 30 })),
    });
    await fc.assert(
      fc.asyncProperty(fc.array(step, { maxLength: 25 }), async (steps) => {
        const shared = new RedisDistinctWindow(redis, uniquePrefix('distinct-each'));
        const memory = new MemoryDistinctWindow();
        let now = t0;
        for (const { ids, advance, caps } of steps) {
          now += advance;
          const windows = [
            { key: 'app', cap: caps[0] },
            { key: 'user', cap: caps[1] },
          ];
          expect(await shared.admitEach(windows, ids, now, 60_000)).toEqual(
            await memory.admitEach(windows, ids, now, 60_000),
          );
        }
      }),
      { numRuns: 40 },
    );
  });

  it("checks a read against the app's and the user's export budgets in one Redis round trip", async () => {
    let scripts = 0;
    // The real client, with its script calls counted.
    const counted = new Proxy(redis, {
      get(target, property, receiver) {
        const value: unknown = Reflect.get(target, property, receiver);
        if ((property === 'evalsha' || property === 'eval') && typeof value === 'function') {
          return (...args: unknown[]) => {
            scripts += 1;
            return (value as (...a: unknown[]) => unknown).apply(target, args);
          };
        }
        return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
      },
    });
    const limits = createLimits(
      { ...defaultLimitsConfig, bulkExport: { ...defaultLimitsConfig.bulkExport, minimum: 50 } },
      { now: () => t0, backend: open({ redis: counted, keyPrefix: uniquePrefix('guard-trips'), nodes: 1 }) },
    );
    const key = { appId: 'call-notes', userId: 'alice', object: 'contact' };
    await limits.guardBulkRead(key, ['c1'], 1000, true); // loads the script (EVALSHA, then EVAL once)
    scripts = 0;
    const decision = await limits.guardBulkRead(key, ['c2', 'c3'], 1000, true);
    expect(decision).toMatchObject({ allowed: true, distinct: 3 });
    expect(scripts).toBe(1);
  });

  it('keeps a clock that steps back from expiring ids early', async () => {
    const shared = new RedisDistinctWindow(redis, uniquePrefix('distinct-skew'));
    await shared.admit('k', ['a'], t0 + 50_000, 60_000, 10);
    // A node whose clock is 20 s behind must not see `a` expire before the window has passed.
    expect(await shared.admit('k', ['b'], t0 + 30_000, 60_000, 10)).toEqual({
      admitted: true,
      distinct: 2,
      attempted: 2,
    });
    expect(await shared.admit('k', [], t0 + 110_001, 60_000, 10)).toMatchObject({ distinct: 0 });
  });

  describe('shared by several nodes', () => {
    const config: LimitsConfig = {
      ...defaultLimitsConfig,
      perUser: { burst: 5, ratePerSecond: 0.001 },
      bulkExport: { ...defaultLimitsConfig.bulkExport, minimum: 50 },
    };
    const nodes = (prefix: string) =>
      [0, 1, 2].map(() =>
        createLimits(config, {
          now: () => t0,
          backend: open({ redis, keyPrefix: prefix, nodes: 3 }),
        }),
      );

    it('holds one rate limit across nodes: a user cannot multiply it by spreading requests', async () => {
      const [a, b, c] = nodes(uniquePrefix('rate'));
      const user = { appId: 'call-notes', userId: 'alice' };
      const answers = [];
      for (const node of [a, b, c, a, b, c, a]) answers.push((await node.consume(user)).allowed);
      expect(answers).toEqual([true, true, true, true, true, false, false]);
      const refused = await b.consume(user);
      expect(refused).toMatchObject({ allowed: false, scope: 'user' });
      expect(refused.retryAfterMs).toBeGreaterThan(0);
      // Another user is not affected.
      expect((await c.consume({ appId: 'call-notes', userId: 'bob' })).allowed).toBe(true);
    });

    it('holds one bulk-export threshold across nodes', async () => {
      const [a, b] = nodes(uniquePrefix('bulk'));
      const ids = (from: number, n: number) => Array.from({ length: n }, (_, i) => `c${from + i}`);
      const key = { appId: 'call-notes', userId: 'alice', object: 'contact' };
      expect(await a.guardBulkRead(key, ids(0, 30), 2000, true)).toMatchObject({
        allowed: true,
        distinct: 30,
      });
      // Re-reading what node a counted costs nothing on node b.
      expect(await b.guardBulkRead(key, ids(10, 20), 2000, true)).toMatchObject({
        allowed: true,
        distinct: 30,
      });
      const refused = await b.guardBulkRead(key, ids(30, 21), 2000, true);
      expect(refused).toMatchObject({ allowed: false, distinct: 30, threshold: 50 });
      expect(refused.event).toMatchObject({ attempted: 51, guard: 'bulk_export_guard' });
    });
  });

  describe('containment throttles, without notices', () => {
    const node = (keyPrefix: string, clock: { t: number }) => {
      const backend = open({ redis, keyPrefix, nodes: 2 });
      return { backend, limits: createLimits(defaultLimitsConfig, { now: () => clock.t, backend }) };
    };
    const alice = { appId: 'call-notes', userId: 'alice' };

    it('a node learns of a throttle and of its lift at its next read, within a second, and shares its budget', async () => {
      const prefix = uniquePrefix('throttle-read');
      const clock = { t: t0 };
      const [a, b] = [node(prefix, clock), node(prefix, clock)];
      await a.limits.throttleApp('call-notes', { ratePerSecond: 2, untilMs: t0 + 60_000 });
      expect(
        await msUntil(() => b.backend.throttles.current('call-notes', clock.t) !== undefined),
      ).toBeLessThan(1000);
      // A burst of 2 for both nodes together.
      const answers = [];
      for (const { limits } of [a, b, a, b]) answers.push((await limits.consume(alice)).allowed);
      expect(answers).toEqual([true, true, false, false]);
      expect(await b.limits.consume(alice)).toMatchObject({ allowed: false, scope: 'throttle' });

      await b.limits.unthrottleApp('call-notes');
      expect(
        await msUntil(() => a.backend.throttles.current('call-notes', clock.t) === undefined),
      ).toBeLessThan(1000);
      expect((await a.limits.consume(alice)).allowed).toBe(true);
    });

    it('forgets ended throttles in Redis at the next write, so the hash holds only those in force', async () => {
      const prefix = uniquePrefix('throttle-prune');
      const clock = { t: t0 };
      const { limits } = node(prefix, clock);
      await limits.throttleApp('old', { ratePerSecond: 1, untilMs: t0 + 1000 });
      await limits.throttleApp('lifted', { ratePerSecond: 1, untilMs: t0 + 60_000 });
      await limits.unthrottleApp('lifted');
      clock.t = t0 + 1000;
      await limits.throttleApp('new', { ratePerSecond: 1, untilMs: t0 + 60_000 });
      expect(await redis.hkeys(`${prefix}limits:throttles`)).toEqual(['new']);
    });
  });

  describe('when Redis cannot answer', () => {
    it("falls back to this node's share of each limit, says so once, and goes back to Redis", async () => {
      const proxy = await startRedisProxy();
      const client = await connectTestRedis(proxy.url);
      const switches: boolean[] = [];
      const backend = open({
        redis: client,
        keyPrefix: uniquePrefix('fallback'),
        nodes: 3,
        retryAfterMs: 50,
        onFallback: (active) => switches.push(active),
      });
      const bucket = { key: 'user:alice', capacity: 9, refillPerSecond: 0.001, ttlMs: 60_000 };
      try {
        expect(await backend.buckets.take([bucket], 1, t0)).toEqual({ allowed: true, tokens: [8] });
        expect(backend.fallbackActive).toBe(false);

        proxy.cut();
        // A third of the burst (9 / 3 nodes), counted here, starting afresh.
        const local = [];
        for (let i = 0; i < 4; i++) local.push(await backend.buckets.take([bucket], 1, t0));
        expect(local.map((r) => r.allowed)).toEqual([true, true, true, false]);
        expect(backend.fallbackActive).toBe(true);
        // The bulk-export threshold too: 50 / 3 nodes = 16.
        const ids = Array.from({ length: 17 }, (_, i) => `c${i}`);
        expect(await backend.distinct.admit('k', ids.slice(0, 16), t0, 60_000, 50)).toMatchObject({
          admitted: true,
        });
        expect(await backend.distinct.admit('k', ids, t0, 60_000, 50)).toMatchObject({ admitted: false });

        proxy.restore();
        await waitFor(() => client.status === 'ready');
        await new Promise((resolve) => setTimeout(resolve, 60));
        // Redis still holds what it counted before the break.
        expect(await backend.buckets.take([bucket], 1, t0)).toEqual({ allowed: true, tokens: [7] });
        expect(backend.fallbackActive).toBe(false);
        expect(switches).toEqual([true, false]);
      } finally {
        client.disconnect();
        await proxy.close();
      }
    });
  });
});

/** Milliseconds until `condition` holds (polled every 5 ms); throws after 5 s. */
async function msUntil(condition: () => boolean): Promise<number> {
  const start = performance.now();
  await waitFor(condition);
  return performance.now() - start;
}

async function waitFor(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('timed out waiting');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}
