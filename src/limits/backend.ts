import { MemoryBuckets } from './buckets.js';
import { MemoryDistinctWindow } from './distinct-window.js';
import { MemoryThrottles, type ThrottleStore } from './throttles.js';

/**
 * Where limit state lives. Everything is async so that a Redis backend (one Lua script per call) can
 * replace the memory one without changing a caller. Both stores take the caller's clock (`nowMs`), so
 * that nodes agree on time without trusting the store's, and tests can freeze it.
 */
export interface LimitsBackend {
  /** Token buckets: the per-user, per-app and global rate limits, the daily quota and throttles. */
  readonly buckets: TokenBucketStore;
  /** The distinct ids each (app, object) read in a sliding window. */
  readonly distinct: DistinctWindowStore;
  /** Containment throttles: in this process, or shared by every node (Redis) and cached by each. */
  readonly throttles: ThrottleStore;
}

/** One bucket to take from. */
export interface BucketSpec {
  /** Names the bucket. A store may prefix it (a Redis hash tag, say) but must not otherwise alter it. */
  readonly key: string;
  /** Most tokens the bucket holds: the burst. A bucket the store does not hold starts full. */
  readonly capacity: number;
  /**
   * Tokens added per second, continuously, up to `capacity`. Zero means never: a quota whose key names
   * its period (the UTC day) and so starts afresh under a new key.
   */
  readonly refillPerSecond: number;
  /**
   * How long after this call the store must keep the bucket, in milliseconds; it may forget it after.
   * The caller makes it at least the time the bucket takes to refill from empty, so forgetting a bucket
   * (which then starts full) never grants more than refilling would have.
   */
  readonly ttlMs: number;
}

export interface TokenBucketStore {
  /**
   * Atomically, across every bucket in `buckets` (keys are distinct):
   * 1. refills each: `tokens = min(capacity, tokens + refillPerSecond * max(0, nowMs - lastMs) / 1000)`,
   *    where `tokens`/`lastMs` are what the store holds for the key (absent: `capacity`/`nowMs`); a
   *    `nowMs` earlier than `lastMs` refills nothing, so a skewed clock never mints tokens;
   * 2. if every bucket then holds at least `cost` tokens, takes `cost` from each and answers
   *    `allowed: true`; otherwise takes from none and answers `allowed: false`;
   * 3. stores each bucket's tokens with `lastMs = max(lastMs, nowMs)`, kept for its `ttlMs`.
   *
   * `tokens` are each bucket's tokens after the call, in the order of `buckets`, not rounded: the
   * caller derives RateLimit and Retry-After from them. `cost` is a positive integer, `capacity` a
   * positive integer, `refillPerSecond` finite and non-negative, `ttlMs` a positive integer. The memory
   * store and the Redis store run the same contract tests (test/support/token-bucket-contract.ts).
   */
  take(
    buckets: readonly BucketSpec[],
    cost: number,
    nowMs: number,
  ): Promise<{ allowed: boolean; tokens: number[] }>;
}

export interface DistinctWindowStore {
  /**
   * Atomically, for one key: forgets ids last read at or before `nowMs - windowMs`; then, if the ids
   * already counted together with `ids` number at most `cap`, records every one of `ids` as read at
   * `nowMs` and answers admitted; otherwise changes nothing. `distinct` is the count after the call,
   * `attempted` the count the read would have reached.
   */
  admit(
    key: string,
    ids: readonly string[],
    nowMs: number,
    windowMs: number,
    cap: number,
  ): Promise<{ admitted: boolean; distinct: number; attempted: number }>;
  /**
   * `admit` for each window in order (the same ids, time and window length), stopping at the first
   * that refuses: answers one result per window tried, the last one the refusal if any. One call, so
   * a shared store answers every window of a read in one round trip.
   */
  admitEach(
    windows: ReadonlyArray<{ readonly key: string; readonly cap: number }>,
    ids: readonly string[],
    nowMs: number,
    windowMs: number,
  ): Promise<Admission[]>;
}

/** What `admit` answers for one window. */
export interface Admission {
  readonly admitted: boolean;
  readonly distinct: number;
  readonly attempted: number;
}

/** The embedded backend: state in this process, bounded, gone on restart. */
export function memoryBackend(): LimitsBackend {
  return {
    buckets: new MemoryBuckets(),
    distinct: new MemoryDistinctWindow(),
    throttles: new MemoryThrottles(),
  };
}
