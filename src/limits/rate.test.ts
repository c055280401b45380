import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../errors/index.js';
import type { LimitsBackend } from './backend.js';
import { MemoryDistinctWindow } from './distinct-window.js';
import { createLimits, defaultLimitsConfig, type LimitsConfig } from './index.js';
import { appBucket, msUntilTokens } from './rate.js';
import { MemoryThrottles } from './throttles.js';

const start = Date.UTC(2025, 0, 6, 10, 0, 0);
const roomy = { burst: 1000, ratePerSecond: 1000 };

function setup(overrides: Partial<LimitsConfig> = {}, backend?: LimitsBackend) {
  const clock = { t: start };
  const config: LimitsConfig = {
    ...defaultLimitsConfig,
    perApp: roomy,
    perUser: roomy,
    global: roomy,
    dailyQuotaPerApp: 100_000,
    ...overrides,
  };
  const limits = createLimits(config, { now: () => clock.t, ...(backend ? { backend } : {}) });
  return { clock, limits };
}

async function times(n: number, fn: () => Promise<{ allowed: boolean }>) {
  const out: boolean[] = [];
  for (let i = 0; i < n; i += 1) out.push((await fn()).allowed);
  return out;
}

const alice = { appId: 'a', userId: 'alice' };

describe('token-bucket rate limits', () => {
  it('allows a burst, refuses the next with the exact wait, and admits it once one token is back', async () => {
    const { clock, limits } = setup({ perApp: { burst: 3, ratePerSecond: 0.5 } });
    expect(await times(3, () => limits.consume({ appId: 'a', userId: 'u' }))).toEqual([true, true, true]);
    const refused = await limits.consume({ appId: 'a', userId: 'someone-else' });
    expect(refused).toMatchObject({ allowed: false, scope: 'app', retryAfterMs: 2000 });
    expect((await limits.consume({ appId: 'b', userId: 'u' })).allowed).toBe(true);

    clock.t += 1999;
    expect(await limits.consume(alice)).toMatchObject({ allowed: false, retryAfterMs: 1 });
    clock.t += 1;
    expect(await limits.consume(alice)).toMatchObject({ allowed: true });
    // Only one token came back: the next request must wait another full interval.
    expect(await limits.consume(alice)).toMatchObject({ allowed: false, retryAfterMs: 2000 });
  });

  it('refills continuously, so a steady client at the rate is never refused', async () => {
    const { clock, limits } = setup({ perUser: { burst: 2, ratePerSecond: 4 } });
    const results: boolean[] = [];
    for (let i = 0; i < 40; i += 1) {
      results.push((await limits.consume(alice)).allowed);
      clock.t += 250;
    }
    expect(results.every(Boolean)).toBe(true);
  });

  it('limits a user across every app they use, and not other users', async () => {
    const { limits } = setup({ perUser: { burst: 2, ratePerSecond: 0.2 } });
    expect((await limits.consume({ appId: 'a', userId: 'alice' })).allowed).toBe(true);
    expect((await limits.consume({ appId: 'b', userId: 'alice' })).allowed).toBe(true);
    const refused = await limits.consume({ appId: 'c', userId: 'alice' });
    expect(refused).toMatchObject({ allowed: false, scope: 'user', retryAfterMs: 5000 });
    expect((await limits.consume({ appId: 'a', userId: 'bob' })).allowed).toBe(true);
  });

  it('applies the global limit to everyone together', async () => {
    const { limits } = setup({ global: { burst: 4, ratePerSecond: 4 } });
    let n = 0;
    const results = await times(5, () => {
      n += 1;
      return limits.consume({ appId: `app-${n}`, userId: `user-${n}` });
    });
    expect(results).toEqual([true, true, true, true, false]);
    expect(await limits.consume({ appId: 'x', userId: 'y' })).toMatchObject({
      scope: 'global',
      retryAfterMs: 250,
    });
  });

  it('keeps the daily quota for the rest of the UTC day and resets it at midnight', async () => {
    const { clock, limits } = setup({ dailyQuotaPerApp: 3 });
    expect(await times(3, () => limits.consume(alice))).toEqual([true, true, true]);
    clock.t = Date.UTC(2025, 0, 6, 23, 59, 0);
    const refused = await limits.consume(alice);
    expect(refused).toMatchObject({ allowed: false, scope: 'quota', retryAfterMs: 60_000 });
    expect((await limits.consume({ appId: 'b', userId: 'alice' })).allowed).toBe(true);
    clock.t = Date.UTC(2025, 0, 7, 0, 0, 0);
    expect((await limits.consume(alice)).allowed).toBe(true);
  });

  it('takes nothing from any limit when one refuses, so a refusal elsewhere spends no user or quota', async () => {
    const { clock, limits } = setup({
      global: { burst: 2, ratePerSecond: 2 },
      perUser: { burst: 3, ratePerSecond: 0.001 },
      dailyQuotaPerApp: 3,
    });
    expect(await times(2, () => limits.consume(alice))).toEqual([true, true]);
    expect(await times(5, () => limits.consume(alice))).toEqual([false, false, false, false, false]);
    clock.t += 500;
    // Had the refusals taken tokens, the user bucket (3) and the quota (3) would both be spent.
    const third = await limits.consume(alice);
    expect(third.allowed).toBe(true);
    expect(third.limits.find((l) => l.scope === 'user')?.remaining).toBe(0);
    expect(await limits.consume(alice)).toMatchObject({ allowed: false, scope: 'user' });
  });

  it('takes a cost of several tokens at once', async () => {
    const { limits } = setup({ perApp: { burst: 10, ratePerSecond: 1 } });
    const first = await limits.consume(alice, 6);
    expect(first.limits.find((l) => l.scope === 'app')?.remaining).toBe(4);
    expect(await limits.consume(alice, 6)).toMatchObject({
      allowed: false,
      scope: 'app',
      retryAfterMs: 2000,
    });
    expect((await limits.consume(alice, 4)).allowed).toBe(true);
  });

  it('reports each limit that applies, and the global one only when it refused', async () => {
    const { limits } = setup({
      perUser: { burst: 5, ratePerSecond: 0.5 },
      perApp: { burst: 50, ratePerSecond: 5 },
      dailyQuotaPerApp: 1000,
    });
    await limits.consume(alice);
    const decision = await limits.consume(alice);
    expect(decision).toEqual({
      allowed: true,
      limits: [
        { scope: 'user', quota: 5, windowSeconds: 10, remaining: 3, resetSeconds: 4 },
        { scope: 'app', quota: 50, windowSeconds: 10, remaining: 48, resetSeconds: 1 },
        { scope: 'quota', quota: 1000, windowSeconds: 86_400, remaining: 998, resetSeconds: 50_400 },
      ],
    });
  });

  it('does not let an id containing the key separator reach another key', async () => {
    const { limits } = setup({ perApp: { burst: 1, ratePerSecond: 0.001 } });
    expect((await limits.consume({ appId: 'a:1', userId: 'u' })).allowed).toBe(true);
    expect((await limits.consume({ appId: 'a', userId: 'u' })).allowed).toBe(true);
    expect((await limits.consume({ appId: 'a%3A1', userId: 'u' })).allowed).toBe(true);
  });

  it('rejects a bad cost or key as a programming error', async () => {
    const { limits } = setup({ perApp: { burst: 5, ratePerSecond: 1 } });
    await expect(limits.consume(alice, 0)).rejects.toBeInstanceOf(TypeError);
    await expect(limits.consume(alice, 1.5)).rejects.toBeInstanceOf(TypeError);
    await expect(limits.consume(alice, 6)).rejects.toBeInstanceOf(TypeError);
    await expect(limits.consume({ appId: 'a' } as never)).rejects.toBeInstanceOf(TypeError);
  });
});

describe('the bucket maths (properties)', () => {
  const rate = fc.double({ min: 0.001, max: 10_000, noNaN: true });
  const burst = fc.integer({ min: 1, max: 1000 });

  it('never admits more than burst + rate × elapsed over any span', async () => {
    await fc.assert(
      fc.asyncProperty(
        burst,
        rate,
        fc.array(fc.integer({ min: 0, max: 2000 }), { maxLength: 200 }),
        async (b, r, gaps) => {
          const { clock, limits } = setup({ perApp: { burst: b, ratePerSecond: r } });
          let admitted = 0;
          for (const gap of gaps) {
            clock.t += gap;
            if ((await limits.consume(alice)).allowed) admitted += 1;
          }
          const elapsedSeconds = (clock.t - start) / 1000;
          expect(admitted).toBeLessThanOrEqual(b + r * elapsedSeconds + 1e-9);
        },
      ),
    );
  });

  it('admits a refused request after exactly Retry-After (in ms), not a millisecond before', async () => {
    await fc.assert(
      fc.asyncProperty(burst, rate, fc.integer({ min: 0, max: 5000 }), async (b, r, spent) => {
        const { clock, limits } = setup({ perApp: { burst: b, ratePerSecond: r } });
        for (let i = 0; i < b; i += 1) await limits.consume(alice);
        clock.t += spent % Math.max(1, Math.floor(1000 / r));
        const refused = await limits.consume(alice);
        if (refused.allowed) return;
        const wait = refused.retryAfterMs!;
        expect(wait).toBeGreaterThan(0);
        clock.t += wait - 1;
        expect((await limits.consume(alice)).allowed).toBe(false);
        clock.t += 1;
        expect((await limits.consume(alice)).allowed).toBe(true);
      }),
    );
  });

  it('msUntilTokens is the least whole number of ms after which the refill formula reaches the target', () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 100, noNaN: true }),
        fc.integer({ min: 1, max: 100 }),
        rate,
        (held, want, r) => {
          const ms = msUntilTokens(held, want, r);
          expect(held + (r * ms) / 1000 >= want || held >= want).toBe(true);
          if (ms > 0) expect(held + (r * (ms - 1)) / 1000).toBeLessThan(want);
        },
      ),
    );
  });

  it('a full bucket reports burst − cost remaining and a reset of cost / rate, rounded up', async () => {
    await fc.assert(
      fc.asyncProperty(burst, rate, async (b, r) => {
        const { limits } = setup({ perApp: { burst: b, ratePerSecond: r } });
        const app = (await limits.consume(alice)).limits.find((l) => l.scope === 'app')!;
        expect(app).toEqual({
          scope: 'app',
          quota: b,
          windowSeconds: Math.ceil(b / r),
          remaining: b - 1,
          resetSeconds: Math.ceil(msUntilTokens(b - 1, b, r) / 1000),
        });
      }),
    );
  });
});

describe('throttling an app (containment)', () => {
  it('holds one app to a stricter rate until the throttle ends, leaving others alone', async () => {
    const { clock, limits } = setup({ perApp: { burst: 100, ratePerSecond: 10 } });
    await limits.throttleApp('a', { ratePerSecond: 1, untilMs: start + 10_000 });
    expect(await limits.consume(alice)).toMatchObject({ allowed: true });
    expect(await limits.consume(alice)).toMatchObject({
      allowed: false,
      scope: 'throttle',
      retryAfterMs: 1000,
    });
    expect((await limits.consume({ appId: 'b', userId: 'alice' })).allowed).toBe(true);
    clock.t = start + 10_000;
    expect(await times(5, () => limits.consume(alice))).toEqual([true, true, true, true, true]);
  });

  it('scales the app limit by a factor, and unthrottleApp lifts it at once', async () => {
    const { limits } = setup({ perApp: { burst: 10, ratePerSecond: 10 } });
    await limits.throttleApp('a', { factor: 0.2, untilMs: start + 60_000 });
    expect(await times(3, () => limits.consume(alice))).toEqual([true, true, false]);
    const refused = await limits.consume(alice);
    expect(refused).toMatchObject({ scope: 'throttle', retryAfterMs: 500 });
    expect(refused.limits.find((l) => l.scope === 'throttle')).toMatchObject({ quota: 2, remaining: 0 });
    await limits.unthrottleApp('a');
    expect(await times(3, () => limits.consume(alice))).toEqual([true, true, true]);
  });

  it('a new throttle starts from a full bucket rather than inheriting the last one', async () => {
    const { limits } = setup();
    await limits.throttleApp('a', { ratePerSecond: 1, untilMs: start + 60_000 });
    await limits.consume(alice);
    await limits.throttleApp('a', { ratePerSecond: 2, untilMs: start + 60_000 });
    expect(await times(3, () => limits.consume(alice))).toEqual([true, true, false]);
  });

  it('holds at once in embedded mode, before the returned promise settles', async () => {
    const { limits } = setup();
    const setting = limits.throttleApp('a', { ratePerSecond: 1, untilMs: start + 60_000 });
    const [first, second] = [limits.consume(alice), limits.consume(alice)];
    await setting;
    expect([(await first).allowed, (await second).allowed]).toEqual([true, false]);
  });

  it('rejects a throttle that would loosen the limit or never end as a programming error', async () => {
    const { limits } = setup();
    await expect(limits.throttleApp('a', { factor: 1, untilMs: start })).rejects.toThrow(TypeError);
    await expect(limits.throttleApp('a', { factor: 0, untilMs: start })).rejects.toThrow(TypeError);
    await expect(limits.throttleApp('a', { ratePerSecond: 0, untilMs: start })).rejects.toThrow(TypeError);
    await expect(limits.throttleApp('a', { ratePerSecond: 1, untilMs: Infinity })).rejects.toThrow(TypeError);
    await expect(limits.throttleApp('', { ratePerSecond: 1, untilMs: start })).rejects.toThrow(TypeError);
    await expect(limits.unthrottleApp('')).rejects.toThrow(TypeError);
  });
});

describe('rate limit headers', () => {
  it('sends RateLimit-Policy and RateLimit for each limit when allowed, without Retry-After', async () => {
    const { limits } = setup({
      perUser: { burst: 3, ratePerSecond: 0.05 },
      perApp: { burst: 100, ratePerSecond: 10 },
      dailyQuotaPerApp: 5000,
    });
    const decision = await limits.consume(alice);
    expect(limits.rateLimitHeaders(decision)).toEqual({
      'RateLimit-Policy': '"user";q=3;w=60, "app";q=100;w=10, "quota";q=5000;w=86400',
      RateLimit: '"user";r=2;t=20, "app";r=99;t=1, "quota";r=4999;t=50400',
    });
  });

  it('adds Retry-After, rounded up to whole seconds, when refused', async () => {
    const { limits } = setup({ perApp: { burst: 1, ratePerSecond: 0.4 } });
    await limits.consume(alice);
    const refused = await limits.consume(alice);
    expect(refused.retryAfterMs).toBe(2500);
    expect(limits.rateLimitHeaders(refused)).toMatchObject({ 'Retry-After': '3' });
  });

  it('names the global limit only when it is the one that refused', async () => {
    const { limits } = setup({ global: { burst: 1, ratePerSecond: 1 } });
    expect(limits.rateLimitHeaders(await limits.consume(alice)).RateLimit).not.toContain('global');
    const refused = limits.rateLimitHeaders(await limits.consume(alice));
    expect(refused.RateLimit).toContain('"global";r=0;t=1');
    expect(refused['Retry-After']).toBe('1');
  });
});

describe('failing closed', () => {
  const broken = (): LimitsBackend => ({
    buckets: { take: () => Promise.reject(new Error('ECONNREFUSED')) },
    distinct: {
      admit: () => Promise.reject(new Error('ECONNREFUSED')),
      admitEach: () => Promise.reject(new Error('ECONNREFUSED')),
    },
    throttles: new MemoryThrottles(),
  });

  it('refuses with a coded 503 when the bucket store cannot answer', async () => {
    const { limits } = setup({}, broken());
    const error = await limits.consume(alice).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatehouseError);
    expect(error).toMatchObject({ code: 'LIMITS_UNAVAILABLE', status: 503 });
    expect((error as GatehouseError).extensions).toEqual({});
  });

  it('treats a malformed store answer as a failure, never as allowed', async () => {
    const backend: LimitsBackend = {
      buckets: { take: () => Promise.resolve({ allowed: true, tokens: [] }) },
      distinct: new MemoryDistinctWindow(),
      throttles: new MemoryThrottles(),
    };
    const { limits } = setup({}, backend);
    await expect(limits.consume(alice)).rejects.toMatchObject({ code: 'LIMITS_UNAVAILABLE' });
  });

  it('refuses a bulk read with a coded 503 when the distinct store cannot answer', async () => {
    const { limits } = setup({}, broken());
    await expect(
      limits.guardBulkRead({ appId: 'a', userId: 'u', object: 'contact' }, ['c1'], 100, true),
    ).rejects.toMatchObject({
      code: 'LIMITS_UNAVAILABLE',
      status: 503,
    });
  });
});

describe('configuration', () => {
  it('rejects an invalid configuration as a programming error', () => {
    const bad = (patch: object) => () => createLimits({ ...defaultLimitsConfig, ...patch } as LimitsConfig);
    expect(bad({ perApp: { burst: 0, ratePerSecond: 1 } })).toThrow(TypeError);
    expect(bad({ perUser: { burst: 10, ratePerSecond: 0 } })).toThrow(TypeError);
    expect(bad({ perUser: { burst: 10, ratePerSecond: Infinity } })).toThrow(TypeError);
    expect(bad({ perUser: { burst: 1.5, ratePerSecond: 1 } })).toThrow(TypeError);
    expect(bad({ global: undefined })).toThrow(TypeError);
    expect(bad({ dailyQuotaPerApp: Infinity })).toThrow(TypeError);
    expect(bad({ bulkExport: { ...defaultLimitsConfig.bulkExport, fraction: 0 } })).toThrow(TypeError);
    expect(bad({ bulkExport: { ...defaultLimitsConfig.bulkExport, fraction: 1.5 } })).toThrow(TypeError);
    expect(bad({ bulkExport: { ...defaultLimitsConfig.bulkExport, minimum: -1 } })).toThrow(TypeError);
    expect(bad({ breaker: { failureThreshold: 0, openSeconds: 30 } })).toThrow(TypeError);
  });

  it('exports frozen defaults', () => {
    expect(Object.isFrozen(defaultLimitsConfig)).toBe(true);
    expect(Object.isFrozen(defaultLimitsConfig.perApp)).toBe(true);
    expect(defaultLimitsConfig.bulkExport).toMatchObject({ fraction: 0.01, minimum: 50 });
  });
});

describe('appBucket: an app plan only narrows the configured bucket', () => {
  const configured = { burst: 600, ratePerSecond: 10 };
  it('takes the plan rate per minute as burst and refill when it is lower', () => {
    expect(appBucket(configured, { requestsPerMinute: 240 })).toEqual({ burst: 240, ratePerSecond: 4 });
  });
  it('never widens past the configured bucket', () => {
    expect(appBucket(configured, { requestsPerMinute: 100_000 })).toEqual(configured);
  });
  it('keeps the configured bucket without a plan or with a plan that names no rate', () => {
    expect(appBucket(configured, undefined)).toBe(configured);
    expect(appBucket(configured, { dailyQuota: 5 })).toBe(configured);
    expect(appBucket(configured, { requestsPerMinute: 0 })).toBe(configured);
  });
});
