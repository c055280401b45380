import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { BucketSpec, TokenBucketStore } from '../../src/limits/index.js';

/**
 * The TokenBucketStore contract (src/limits/backend.ts), run against every store: the memory one in src/limits/
 * buckets.test.ts, the Redis one beside it. `make` gives a fresh, empty store each time. Keys are
 * unique per test, so a shared Redis needs no flushing between them.
 */
export function describeTokenBucketStore(
  name: string,
  make: () => TokenBucketStore | Promise<TokenBucketStore>,
): void {
  let unique = 0;
  const spec = (overrides: Partial<BucketSpec> = {}): BucketSpec => ({
    key: `contract:${name}:${process.pid}:${Date.now()}:${(unique += 1)}`,
    capacity: 3,
    refillPerSecond: 1,
    ttlMs: 60_000,
    ...overrides,
  });
  const t0 = 1_700_000_000_000;

  describe(`TokenBucketStore contract: ${name}`, () => {
    it('starts a bucket it does not hold full, and takes the cost', async () => {
      const store = await make();
      expect(await store.take([spec()], 1, t0)).toEqual({ allowed: true, tokens: [2] });
    });

    it('refuses once empty, takes nothing when refusing, and refills at the rate', async () => {
      const store = await make();
      const b = spec();
      for (const left of [2, 1, 0])
        expect(await store.take([b], 1, t0)).toEqual({ allowed: true, tokens: [left] });
      expect(await store.take([b], 1, t0)).toEqual({ allowed: false, tokens: [0] });
      expect(await store.take([b], 1, t0 + 500)).toEqual({ allowed: false, tokens: [0.5] });
      expect(await store.take([b], 1, t0 + 1000)).toEqual({ allowed: true, tokens: [0] });
    });

    it('never refills past capacity', async () => {
      const store = await make();
      const b = spec();
      await store.take([b], 3, t0);
      expect(await store.take([b], 1, t0 + 3_600_000)).toEqual({ allowed: true, tokens: [2] });
    });

    it('takes from every bucket or from none', async () => {
      const store = await make();
      const wide = spec({ capacity: 10 });
      const narrow = spec({ capacity: 1 });
      expect(await store.take([wide, narrow], 1, t0)).toEqual({ allowed: true, tokens: [9, 0] });
      expect(await store.take([wide, narrow], 1, t0)).toEqual({ allowed: false, tokens: [9, 0] });
      expect(await store.take([wide], 1, t0)).toEqual({ allowed: true, tokens: [8] });
    });

    it('refills nothing when the clock steps back, and keeps the later time', async () => {
      const store = await make();
      const b = spec();
      await store.take([b], 3, t0);
      expect(await store.take([b], 1, t0 - 5000)).toEqual({ allowed: false, tokens: [0] });
      expect(await store.take([b], 1, t0 + 999)).toEqual({ allowed: false, tokens: [0.999] });
    });

    it('never refills a bucket whose rate is zero', async () => {
      const store = await make();
      const quota = spec({ capacity: 2, refillPerSecond: 0 });
      await store.take([quota], 2, t0);
      expect(await store.take([quota], 1, t0 + 50_000)).toEqual({ allowed: false, tokens: [0] });
    });

    it('forgets a bucket after its ttl, which then starts full', async () => {
      const store = await make();
      const b = spec({ refillPerSecond: 0, ttlMs: 1000 });
      await store.take([b], 3, t0);
      expect(await store.take([b], 1, t0 + 1500)).toEqual({ allowed: true, tokens: [2] });
    });

    it('agrees with the refill formula for any sequence of calls', async () => {
      const store = await make();
      await fc.assert(
        fc.asyncProperty(
          fc.integer({ min: 1, max: 50 }),
          fc.double({ min: 0.01, max: 1000, noNaN: true }),
          fc.array(
            fc.record({ dt: fc.integer({ min: -1000, max: 5000 }), cost: fc.integer({ min: 1, max: 5 }) }),
            {
              maxLength: 20,
            },
          ),
          async (capacity, refillPerSecond, calls) => {
            const b = spec({ capacity, refillPerSecond, ttlMs: 3_600_000 });
            let tokens = capacity;
            let now = t0;
            let last: number | undefined;
            for (const { dt, cost } of calls) {
              now += dt;
              // A bucket the store does not hold yet starts full at the first call's time.
              last ??= now;
              tokens = Math.min(capacity, tokens + (refillPerSecond * Math.max(0, now - last)) / 1000);
              last = Math.max(last, now);
              const allowed = tokens >= cost;
              if (allowed) tokens -= cost;
              const got = await store.take([b], cost, now);
              expect(got.allowed).toBe(allowed);
              expect(got.tokens[0]).toBeCloseTo(tokens, 9);
            }
          },
        ),
        { numRuns: 50 },
      );
    });
  });
}
