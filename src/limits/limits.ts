import { memoryBackend, type LimitsBackend } from './backend.js';
import { Breaker, type CircuitBreaker } from './breaker.js';
import { BulkGuard, type BulkReadDecision, type BulkReadKey } from './bulk-guard.js';
import { positiveRate, validateLimitsConfig, type LimitsConfig, type TokenBucket } from './config.js';
import { RateMeter, rateLimitHeaders, type ConsumeKey, type RateDecision } from './rate.js';
import { throttleTarget, type Throttle } from './throttles.js';

/** Where a throttle applies, and the incident it names in the 429. */
export interface ThrottleAim {
  /** Only this user in the app; the whole app when absent. */
  readonly userId?: string;
  readonly incident?: string;
}

export interface Limits {
  /**
   * Checks the user, app and global token buckets, the app's daily quota and any throttle on the app or
   * on the user in the app, and takes `cost` tokens from each when all allow (from none otherwise). A limit reached is an
   * answer (`allowed: false` with `retryAfterMs` and `scope`), not an error; a store that cannot
   * answer throws LimitsUnavailable (503).
   */
  consume(key: ConsumeKey, cost?: number): Promise<RateDecision>;
  /** RateLimit-Policy and RateLimit, and Retry-After when refused. */
  rateLimitHeaders(decision: RateDecision): Record<string, string>;
  /**
   * Containment: until `untilMs` (or unthrottleApp), the app (or, with `userId`, that user in the app)
   * also passes a stricter bucket, either the app's own limit scaled by `factor` (in (0, 1)) or
   * `ratePerSecond` outright; a refusal names `incident`. Replaces any earlier throttle of the same
   * target, and starts afresh. Resolves once the throttle is in force here and, with the Redis
   * backend, stored for every node (each enforces it within a second, on one shared budget); rejects
   * (DEPENDENCY_UNAVAILABLE) when Redis cannot confirm it.
   */
  throttleApp(
    appId: string,
    throttle: ({ factor: number; untilMs: number } | { ratePerSecond: number; untilMs: number }) &
      ThrottleAim,
  ): Promise<void>;
  /**
   * Lifts the throttle of the app (or, with `userId`, of that user in the app), if any, on every node. Rejects (DEPENDENCY_UNAVAILABLE) when Redis
   * cannot confirm it: a throttle is never lifted for want of Redis.
   */
  unthrottleApp(appId: string, userId?: string): Promise<void>;
  /**
   * Counts `recordIds` (the records a read returned) against the user's export budget for the object
   * (across every app) and the app's (from its plan). Refused: answer 403 naming the guard and the
   * budget, and record `event`. Throws LimitsUnavailable (503) when the store cannot answer.
   */
  guardBulkRead(
    key: BulkReadKey,
    recordIds: readonly string[],
    tableSize: number,
    sensitive: boolean,
  ): Promise<BulkReadDecision>;
  /** The circuit breaker of one connector, the same object on every call. */
  breaker(connector: string): CircuitBreaker;
}

export interface LimitsOptions {
  /** Milliseconds since the epoch; tests freeze it. */
  now?: () => number;
  /** Where counters live; in memory unless given (a Redis backend at scale). */
  backend?: LimitsBackend;
  /** Which connector errors count as failures; by default all but coded errors below 500. */
  isConnectorFailure?: (error: unknown) => boolean;
}

export function createLimits(config: LimitsConfig, opts: LimitsOptions = {}): Limits {
  const valid = validateLimitsConfig(config);
  const now = opts.now ?? Date.now;
  if (typeof now !== 'function') throw new TypeError('now must be a function');
  const backend = opts.backend ?? memoryBackend();
  const meter = new RateMeter(valid, backend, now);
  const bulk = new BulkGuard(valid.bulkExport, backend.distinct, now);
  const breakers = new Map<string, Breaker>();
  const { throttles } = backend;
  return {
    consume(key, cost) {
      const at = now();
      const user = key?.actor ?? key?.userId;
      const held = [
        throttles.current(key?.appId, at),
        typeof user === 'string' ? throttles.current(throttleTarget(key.appId, user), at) : undefined,
      ].filter((throttle): throttle is Throttle => throttle !== undefined);
      return meter.consume(key, cost, held);
    },
    rateLimitHeaders,
    async throttleApp(appId, throttle) {
      if (typeof appId !== 'string' || appId === '') throw new TypeError('appId must be a non-empty string');
      if (!Number.isSafeInteger(throttle?.untilMs))
        throw new TypeError('untilMs must be a time in milliseconds');
      const bucket = throttledBucket(valid.perApp, throttle);
      const { userId, incident } = throttle;
      await throttles.put(
        throttleTarget(appId, userId),
        { bucket, untilMs: throttle.untilMs, ...(incident !== undefined && { incident }) },
        now(),
      );
    },
    async unthrottleApp(appId, userId) {
      if (typeof appId !== 'string' || appId === '') throw new TypeError('appId must be a non-empty string');
      await throttles.lift(throttleTarget(appId, userId), now());
    },
    guardBulkRead: (key, recordIds, tableSize, sensitive) => bulk.guard(key, recordIds, tableSize, sensitive),
    breaker(connector) {
      if (typeof connector !== 'string' || connector === '') throw new TypeError('connector must be a name');
      let breaker = breakers.get(connector);
      if (!breaker) {
        breaker = new Breaker(connector, valid.breaker, now, opts.isConnectorFailure);
        breakers.set(connector, breaker);
      }
      return breaker;
    },
  };
}

/** The throttle's bucket: the app's scaled down, or the given rate with a burst of about a second's worth. */
function throttledBucket(
  perApp: TokenBucket,
  throttle: { factor: number } | { ratePerSecond: number },
): TokenBucket {
  if ('factor' in throttle) {
    const { factor } = throttle;
    if (typeof factor !== 'number' || !(factor > 0 && factor < 1))
      throw new TypeError('factor must be in (0, 1)');
    return {
      burst: Math.max(1, Math.floor(perApp.burst * factor)),
      ratePerSecond: perApp.ratePerSecond * factor,
    };
  }
  const rate = positiveRate('ratePerSecond', throttle?.ratePerSecond);
  return { burst: Math.max(1, Math.min(perApp.burst, Math.floor(rate))), ratePerSecond: rate };
}
