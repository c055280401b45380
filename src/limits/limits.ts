import { memoryBackend, type LimitsBackend } from './backend.js';
import { Breaker, type CircuitBreaker } from './breaker.js';
import { BulkGuard, type BulkReadDecision } from './bulk-guard.js';
import { validateLimitsConfig, type LimitsConfig } from './config.js';
import { RateMeter, rateLimitHeaders, type RateDecision } from './rate.js';

export interface Limits {
  /**
   * Checks the user, app and global rate limits and the app's daily quota, and takes `cost` points
   * from each when all allow. A limit reached is an answer (`allowed: false` with `retryAfterSeconds`
   * and `scope`), not an error; a store that cannot answer throws LimitsUnavailable (503).
   */
  consume(key: { appId: string; userId: string }, cost?: number): Promise<RateDecision>;
  /** RateLimit-Limit, RateLimit-Remaining, RateLimit-Reset, and Retry-After when refused. */
  rateLimitHeaders(decision: RateDecision): Record<string, string>;
  /**
   * Counts `recordIds` (the records a read returned) against the app's bulk-export threshold for the
   * object. Refused: answer 403 naming the guard and record `event`. Throws LimitsUnavailable (503)
   * when the store cannot answer.
   */
  guardBulkRead(
    key: { appId: string; object: string },
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
  return {
    consume: (key, cost) => meter.consume(key, cost),
    rateLimitHeaders,
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
