import type { BucketSpec, TokenBucketStore } from './backend.js';

interface Held {
  tokens: number;
  lastMs: number;
  expiresMs: number;
}

/** How often, at most, buckets past their ttl are swept. */
const sweepEveryMs = 60_000;

/**
 * Token buckets in this process. A call runs to completion without awaiting, so it is atomic here;
 * buckets past their ttl are swept at most once a minute, so memory stays bounded by the keys touched
 * within the longest ttl.
 */
export class MemoryBuckets implements TokenBucketStore {
  readonly #held = new Map<string, Held>();
  #lastSweep = -Infinity;

  take(
    buckets: readonly BucketSpec[],
    cost: number,
    nowMs: number,
  ): Promise<{ allowed: boolean; tokens: number[] }> {
    this.#sweep(nowMs);
    const refilled = buckets.map((spec) => {
      const held = this.#held.get(spec.key);
      const fresh = held === undefined || held.expiresMs <= nowMs;
      return {
        spec,
        lastMs: fresh ? nowMs : Math.max(held.lastMs, nowMs),
        tokens: fresh ? spec.capacity : refill(held.tokens, held.lastMs, nowMs, spec),
      };
    });
    const allowed = refilled.every((bucket) => bucket.tokens >= cost);
    const tokens = refilled.map((bucket) => {
      const left = allowed ? bucket.tokens - cost : bucket.tokens;
      this.#held.set(bucket.spec.key, {
        tokens: left,
        lastMs: bucket.lastMs,
        expiresMs: nowMs + bucket.spec.ttlMs,
      });
      return left;
    });
    return Promise.resolve({ allowed, tokens });
  }

  /** Buckets held; for tests. */
  get size(): number {
    return this.#held.size;
  }

  #sweep(nowMs: number): void {
    if (nowMs - this.#lastSweep < sweepEveryMs) return;
    this.#lastSweep = nowMs;
    for (const [key, held] of this.#held) if (held.expiresMs <= nowMs) this.#held.delete(key);
  }
}

/** The bucket's tokens at `nowMs`; time running backwards adds nothing. */
export function refill(tokens: number, lastMs: number, nowMs: number, spec: BucketSpec): number {
  const elapsedMs = Math.max(0, nowMs - lastMs);
  return Math.min(spec.capacity, tokens + (spec.refillPerSecond * elapsedMs) / 1000);
}
