import { RateLimiterRes } from 'rate-limiter-flexible';
import type { LimitsBackend, PointsCounter } from './backend.js';
import type { LimitsConfig } from './config.js';
import { LimitsUnavailable } from './errors.js';

export type RateScope = 'app' | 'user' | 'global' | 'quota';

export interface RateDecision {
  allowed: boolean;
  /** Points of the limit that decided: the one refused, or the one with the fewest points left. */
  limit: number;
  remaining: number;
  /** Seconds until that limit's window ends. */
  resetSeconds: number;
  /** Set when refused: seconds until the refusing limit's window ends. */
  retryAfterSeconds?: number;
  /** Set when refused: which limit refused. */
  scope?: RateScope;
}

const dayMs = 86_400_000;

interface Meter {
  readonly scope: RateScope;
  readonly counter: PointsCounter;
  readonly points: number;
  readonly windowMs: number;
}

interface Taken {
  readonly meter: Meter;
  readonly key: string;
  readonly ttl: number;
  readonly ok: boolean;
  readonly remaining: number;
  readonly resetSeconds: number;
}

/**
 * Fixed windows aligned to the injected clock: a counter key names its window, so every node (and the
 * memory store in tests) agrees on when a window ends without trusting the store's own clock, and the
 * daily quota resets at UTC midnight. Limits are checked most specific first and stop at the first
 * refusal; the points a refused request took are given back (rate-limiter-flexible counts a refused
 * request too), so counters hold admitted requests only: one noisy user does not use up the app's or
 * everyone's budget, and a refused large request does not block a smaller one that fits.
 */
export class RateMeter {
  readonly #meters: readonly Meter[];
  readonly #now: () => number;

  constructor(config: LimitsConfig, backend: LimitsBackend, now: () => number) {
    this.#now = now;
    const meter = (scope: RateScope, points: number, windowMs: number): Meter => ({
      scope,
      points,
      windowMs,
      counter: backend.counter({ keyPrefix: `gh:rate:${scope}`, points, durationSeconds: windowMs / 1000 }),
    });
    this.#meters = [
      meter('user', config.perUser.points, config.perUser.durationSeconds * 1000),
      meter('app', config.perApp.points, config.perApp.durationSeconds * 1000),
      meter('global', config.global.points, config.global.durationSeconds * 1000),
      meter('quota', config.dailyQuotaPerApp, dayMs),
    ];
  }

  async consume(key: { appId: string; userId: string }, cost = 1): Promise<RateDecision> {
    if (typeof key?.appId !== 'string' || typeof key.userId !== 'string') {
      throw new TypeError('consume needs string appId and userId');
    }
    if (!Number.isSafeInteger(cost) || cost < 1) throw new TypeError('cost must be a positive integer');
    const now = this.#now();
    const taken: Taken[] = [];
    for (const meter of this.#meters) {
      const subject = meter.scope === 'user' ? key.userId : meter.scope === 'global' ? '' : key.appId;
      const step = await take(meter, subject, cost, now);
      if (!step.ok) {
        await refund([...taken, step], cost);
        return {
          allowed: false,
          limit: meter.points,
          remaining: 0,
          resetSeconds: step.resetSeconds,
          retryAfterSeconds: step.resetSeconds,
          scope: meter.scope,
        };
      }
      taken.push(step);
    }
    let tightest = taken[0]!;
    for (const step of taken) if (step.remaining < tightest.remaining) tightest = step;
    return {
      allowed: true,
      limit: tightest.meter.points,
      remaining: tightest.remaining,
      resetSeconds: tightest.resetSeconds,
    };
  }
}

async function take(meter: Meter, subject: string, cost: number, now: number): Promise<Taken> {
  const index = Math.floor(now / meter.windowMs);
  const resetMs = (index + 1) * meter.windowMs - now;
  const resetSeconds = Math.ceil(resetMs / 1000);
  // The key outlives its window by a second so that clock skew between nodes cannot revive it early.
  const ttl = resetSeconds + 1;
  const key = `${encodeURIComponent(subject)}:${index}`;
  let ok: boolean;
  let res: RateLimiterRes;
  try {
    res = await meter.counter.consume(key, cost, { customDuration: ttl });
    ok = true;
  } catch (error) {
    if (!(error instanceof RateLimiterRes)) throw new LimitsUnavailable({ cause: error });
    res = error;
    ok = false;
  }
  const remaining = ok ? Math.max(0, meter.points - res.consumedPoints) : 0;
  return { meter, key, ttl, ok, remaining, resetSeconds };
}

async function refund(taken: readonly Taken[], cost: number): Promise<void> {
  try {
    await Promise.all(
      taken.map((step) => step.meter.counter.reward(step.key, cost, { customDuration: step.ttl })),
    );
  } catch (error) {
    throw new LimitsUnavailable({ cause: error });
  }
}

/**
 * The RateLimit header fields of draft-ietf-httpapi-ratelimit-headers (the -07 field names), and
 * Retry-After (RFC 9110) when the request was refused. Values are delta-seconds.
 */
export function rateLimitHeaders(decision: RateDecision): Record<string, string> {
  const headers: Record<string, string> = {
    'RateLimit-Limit': String(decision.limit),
    'RateLimit-Remaining': String(decision.remaining),
    'RateLimit-Reset': String(decision.resetSeconds),
  };
  if (!decision.allowed) headers['Retry-After'] = String(decision.retryAfterSeconds ?? decision.resetSeconds);
  return headers;
}
