import { RateLimiterRes } from 'rate-limiter-flexible';
import { describe, expect, it } from 'vitest';
import { GatehouseError } from '../errors/index.js';
import type { LimitsBackend } from './backend.js';
import { createLimits, defaultLimitsConfig, type LimitsConfig } from './index.js';

const start = Date.UTC(2025, 0, 6, 10, 0, 0); // a minute boundary

function setup(overrides: Partial<LimitsConfig> = {}, backend?: LimitsBackend) {
  const clock = { t: start };
  const config: LimitsConfig = {
    ...defaultLimitsConfig,
    perApp: { points: 1000, durationSeconds: 60 },
    perUser: { points: 1000, durationSeconds: 60 },
    global: { points: 1000, durationSeconds: 60 },
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

describe('rate limits', () => {
  it('refuses an app past its limit with Retry-After while another app is unaffected', async () => {
    const { clock, limits } = setup({ perApp: { points: 3, durationSeconds: 60 } });
    expect(await times(3, () => limits.consume({ appId: 'a', userId: 'u' }))).toEqual([true, true, true]);
    const refused = await limits.consume({ appId: 'a', userId: 'someone-else' });
    expect(refused).toEqual({
      allowed: false,
      limit: 3,
      remaining: 0,
      resetSeconds: 60,
      retryAfterSeconds: 60,
      scope: 'app',
    });
    expect((await limits.consume({ appId: 'b', userId: 'u' })).allowed).toBe(true);

    clock.t += 45_500;
    expect((await limits.consume({ appId: 'a', userId: 'u' })).retryAfterSeconds).toBe(15);
    clock.t = start + 60_000;
    expect((await limits.consume({ appId: 'a', userId: 'u' })).allowed).toBe(true);
  });

  it('limits a user across every app they use, and not other users', async () => {
    const { limits } = setup({ perUser: { points: 2, durationSeconds: 10 } });
    expect((await limits.consume({ appId: 'a', userId: 'alice' })).allowed).toBe(true);
    expect((await limits.consume({ appId: 'b', userId: 'alice' })).allowed).toBe(true);
    const refused = await limits.consume({ appId: 'c', userId: 'alice' });
    expect(refused).toMatchObject({ allowed: false, scope: 'user', limit: 2, retryAfterSeconds: 10 });
    expect((await limits.consume({ appId: 'a', userId: 'bob' })).allowed).toBe(true);
  });

  it('applies the global limit to everyone together', async () => {
    const { limits } = setup({ global: { points: 4, durationSeconds: 1 } });
    let n = 0;
    const results = await times(5, () => {
      n += 1;
      return limits.consume({ appId: `app-${n}`, userId: `user-${n}` });
    });
    expect(results).toEqual([true, true, true, true, false]);
    expect(await limits.consume({ appId: 'x', userId: 'y' })).toMatchObject({
      scope: 'global',
      retryAfterSeconds: 1,
    });
  });

  it('keeps the daily quota for the rest of the UTC day and resets it at midnight', async () => {
    const { clock, limits } = setup({ dailyQuotaPerApp: 3 });
    expect(await times(3, () => limits.consume({ appId: 'a', userId: 'u' }))).toEqual([true, true, true]);
    clock.t = Date.UTC(2025, 0, 6, 23, 59, 0);
    const refused = await limits.consume({ appId: 'a', userId: 'u' });
    expect(refused).toMatchObject({ allowed: false, scope: 'quota', limit: 3, retryAfterSeconds: 60 });
    expect((await limits.consume({ appId: 'b', userId: 'u' })).allowed).toBe(true);
    clock.t = Date.UTC(2025, 0, 7, 0, 0, 0);
    expect((await limits.consume({ appId: 'a', userId: 'u' })).allowed).toBe(true);
  });

  it('gives back what a refused request took, so a refusal elsewhere does not use up a user or quota', async () => {
    const { clock, limits } = setup({
      global: { points: 2, durationSeconds: 1 },
      perUser: { points: 3, durationSeconds: 60 },
      dailyQuotaPerApp: 3,
    });
    expect(await times(2, () => limits.consume({ appId: 'a', userId: 'u' }))).toEqual([true, true]);
    expect(await times(5, () => limits.consume({ appId: 'a', userId: 'u' }))).toEqual([
      false,
      false,
      false,
      false,
      false,
    ]);
    clock.t += 1000;
    // Without the refunds the user limit (3 a minute) and the quota (3 a day) would both be spent.
    const third = await limits.consume({ appId: 'a', userId: 'u' });
    expect(third).toMatchObject({ allowed: true, remaining: 0 });
    expect(await limits.consume({ appId: 'a', userId: 'u' })).toMatchObject({
      allowed: false,
      scope: 'user',
    });
  });

  it('takes a cost of several points at once', async () => {
    const { limits } = setup({ perApp: { points: 10, durationSeconds: 60 } });
    expect(await limits.consume({ appId: 'a', userId: 'u' }, 6)).toMatchObject({
      allowed: true,
      remaining: 4,
    });
    expect(await limits.consume({ appId: 'a', userId: 'u' }, 6)).toMatchObject({
      allowed: false,
      scope: 'app',
    });
    expect(await limits.consume({ appId: 'a', userId: 'u' }, 4)).toMatchObject({
      allowed: true,
      remaining: 0,
    });
  });

  it('reports the limit with the fewest points left when allowed', async () => {
    const { limits } = setup({
      perUser: { points: 5, durationSeconds: 30 },
      perApp: { points: 50, durationSeconds: 60 },
    });
    await limits.consume({ appId: 'a', userId: 'u' });
    const decision = await limits.consume({ appId: 'a', userId: 'u' });
    expect(decision).toEqual({ allowed: true, limit: 5, remaining: 3, resetSeconds: 30 });
  });

  it('does not let an id containing the key separator reach another key', async () => {
    const { limits } = setup({ perApp: { points: 1, durationSeconds: 60 } });
    expect((await limits.consume({ appId: 'a:1', userId: 'u' })).allowed).toBe(true);
    expect((await limits.consume({ appId: 'a', userId: 'u' })).allowed).toBe(true);
    expect((await limits.consume({ appId: 'a%3A1', userId: 'u' })).allowed).toBe(true);
  });

  it('rejects a bad cost or key as a programming error', async () => {
    const { limits } = setup();
    await expect(limits.consume({ appId: 'a', userId: 'u' }, 0)).rejects.toBeInstanceOf(TypeError);
    await expect(limits.consume({ appId: 'a', userId: 'u' }, 1.5)).rejects.toBeInstanceOf(TypeError);
    await expect(limits.consume({ appId: 'a' } as never)).rejects.toBeInstanceOf(TypeError);
  });
});

describe('rate limit headers', () => {
  it('sends the RateLimit fields when allowed, without Retry-After', async () => {
    const { limits } = setup({ perApp: { points: 3, durationSeconds: 60 } });
    const decision = await limits.consume({ appId: 'a', userId: 'u' });
    expect(limits.rateLimitHeaders(decision)).toEqual({
      'RateLimit-Limit': '3',
      'RateLimit-Remaining': '2',
      'RateLimit-Reset': '60',
    });
  });

  it('adds Retry-After when refused', () => {
    const { limits } = setup();
    const headers = limits.rateLimitHeaders({
      allowed: false,
      limit: 3,
      remaining: 0,
      resetSeconds: 42,
      retryAfterSeconds: 42,
      scope: 'app',
    });
    expect(headers).toEqual({
      'RateLimit-Limit': '3',
      'RateLimit-Remaining': '0',
      'RateLimit-Reset': '42',
      'Retry-After': '42',
    });
  });
});

describe('failing closed', () => {
  const broken = (): LimitsBackend => ({
    counter: () => ({
      consume: () => Promise.reject(new Error('ECONNREFUSED')),
      reward: () => Promise.reject(new Error('ECONNREFUSED')),
    }),
    distinct: { admit: () => Promise.reject(new Error('ECONNREFUSED')) },
  });

  it('refuses with a coded 503 when the counter store cannot answer', async () => {
    const { limits } = setup({}, broken());
    const error = await limits.consume({ appId: 'a', userId: 'u' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(GatehouseError);
    expect(error).toMatchObject({
      code: 'LIMITS_UNAVAILABLE',
      status: 503,
    });
    expect((error as GatehouseError).extensions).toEqual({});
  });

  it('treats a store error shaped like a limit answer as a failure, never as a limit reached', async () => {
    const lookalike = Object.assign(new Error('READONLY'), { consumedPoints: 99, msBeforeNext: 1000 });
    const backend: LimitsBackend = {
      counter: () => ({ consume: () => Promise.reject(lookalike), reward: () => Promise.reject(lookalike) }),
      distinct: { admit: () => Promise.reject(lookalike) },
    };
    const { limits } = setup({}, backend);
    await expect(limits.consume({ appId: 'a', userId: 'u' })).rejects.toMatchObject({
      status: 503,
      cause: lookalike,
    });
  });

  it('refuses with a coded 503 when a refund cannot be written', async () => {
    let n = 0;
    const backend: LimitsBackend = {
      counter: ({ keyPrefix }) => ({
        consume: async () => {
          n += 1;
          if (keyPrefix.endsWith('app')) throw new RateLimiterRes(0, 1000, 2, false);
          return new RateLimiterRes(1, 1000, 1, true);
        },
        reward: () => Promise.reject(new Error('ECONNRESET')),
      }),
      distinct: { admit: () => Promise.reject(new Error('unused')) },
    };
    const { limits } = setup({}, backend);
    await expect(limits.consume({ appId: 'a', userId: 'u' })).rejects.toMatchObject({
      code: 'LIMITS_UNAVAILABLE',
    });
    expect(n).toBe(2);
  });

  it('refuses a bulk read with a coded 503 when the distinct store cannot answer', async () => {
    const { limits } = setup({}, broken());
    await expect(
      limits.guardBulkRead({ appId: 'a', object: 'contact' }, ['c1'], 100, true),
    ).rejects.toMatchObject({
      code: 'LIMITS_UNAVAILABLE',
      status: 503,
    });
  });
});

describe('configuration', () => {
  it('rejects an invalid configuration as a programming error', () => {
    const bad = (patch: object) => () => createLimits({ ...defaultLimitsConfig, ...patch } as LimitsConfig);
    expect(bad({ perApp: { points: 0, durationSeconds: 60 } })).toThrow(TypeError);
    expect(bad({ perUser: { points: 10, durationSeconds: 0.5 } })).toThrow(TypeError);
    expect(bad({ global: undefined })).toThrow(TypeError);
    expect(bad({ dailyQuotaPerApp: Infinity })).toThrow(TypeError);
    expect(bad({ bulkExport: { ...defaultLimitsConfig.bulkExport, fraction: 0 } })).toThrow(TypeError);
    expect(bad({ bulkExport: { ...defaultLimitsConfig.bulkExport, fraction: 1.5 } })).toThrow(TypeError);
    expect(bad({ bulkExport: { ...defaultLimitsConfig.bulkExport, minimum: -1 } })).toThrow(TypeError);
    expect(bad({ breaker: { failureThreshold: 0, openSeconds: 30 } })).toThrow(TypeError);
  });

  it('exports frozen defaults', () => {
    expect(Object.isFrozen(defaultLimitsConfig)).toBe(true);
    expect(Object.isFrozen(defaultLimitsConfig.bulkExport)).toBe(true);
    expect(defaultLimitsConfig.bulkExport).toMatchObject({ fraction: 0.01, minimum: 50 });
  });
});
