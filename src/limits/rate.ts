import type { BucketSpec, LimitsBackend, TokenBucketStore } from './backend.js';
import type { LimitsConfig, TokenBucket } from './config.js';
import { LimitsUnavailable } from './errors.js';
import type { Throttle } from './throttles.js';

/** Which limit: the end user's, the app's, everyone's, the app's daily quota, or a containment throttle. */
export type RateScope = 'user' | 'app' | 'global' | 'quota' | 'throttle';

/** One limit as it stands after a request; the RateLimit and RateLimit-Policy fields report these. */
export interface RateLimitState {
  readonly scope: RateScope;
  /** Requests the limit allows back to back (a bucket's burst, the daily quota). */
  readonly quota: number;
  /** Seconds in which the limit restores its whole quota. */
  readonly windowSeconds: number;
  /** Whole requests left now. */
  readonly remaining: number;
  /** Seconds until the whole quota is back. */
  readonly resetSeconds: number;
}

export interface RateDecision {
  readonly allowed: boolean;
  /** The limits that apply to the caller and are reported to it (the global one only when it refused). */
  readonly limits: readonly RateLimitState[];
  /** Set when refused: the limit that refused (the most specific one, if several did). */
  readonly scope?: RateScope;
  /** Set when refused: milliseconds until every limit holds enough for the same request again. */
  readonly retryAfterMs?: number;
  /** Set when a containment throttle refused: the incident that put it in force. */
  readonly incident?: string;
}

const dayMs = 86_400_000;
/** Kept a little past the time a bucket takes to refill, so that clock skew between nodes is harmless. */
const ttlMarginMs = 1000;

export interface Planned {
  readonly scope: RateScope;
  readonly spec: BucketSpec;
  /** When the quota restarts (the next UTC day) for the daily quota; refill otherwise. */
  readonly periodEndMs?: number;
  /** A throttle's incident. */
  readonly incident?: string;
}

/**
 * Token buckets per user, per app and for everyone, and a per-app daily quota that restarts at UTC
 * midnight (a bucket that never refills, keyed by the day). One request takes one token from every
 * bucket that applies, all or none, in one atomic call to the store: a request refused by one limit
 * uses up nothing of the others, so one noisy user does not use up the app's or everyone's budget.
 */
export class RateMeter {
  readonly #config: LimitsConfig;
  readonly #store: TokenBucketStore;
  readonly #now: () => number;

  constructor(config: LimitsConfig, backend: LimitsBackend, now: () => number) {
    this.#config = config;
    this.#store = backend.buckets;
    this.#now = now;
  }

  /** `throttles`: those in force on the app and on the user in the app. */
  async consume(key: ConsumeKey, cost = 1, throttles: readonly Throttle[] = []): Promise<RateDecision> {
    if (typeof key?.appId !== 'string' || typeof key.userId !== 'string') {
      throw new TypeError('consume needs string appId and userId');
    }
    if (!Number.isSafeInteger(cost) || cost < 1) throw new TypeError('cost must be a positive integer');
    const now = this.#now();
    const plan = this.#plan(key, now, throttles);
    for (const { scope, spec } of plan) {
      if (cost > spec.capacity) throw new TypeError(`cost ${cost} exceeds the ${scope} limit's burst`);
    }
    let result: { allowed: boolean; tokens: number[] };
    try {
      result = await this.#store.take(
        plan.map((p) => p.spec),
        cost,
        now,
      );
    } catch (error) {
      throw new LimitsUnavailable({ cause: error });
    }
    if (!Array.isArray(result?.tokens) || result.tokens.length !== plan.length) {
      throw new LimitsUnavailable({ cause: new Error('the bucket store answered a malformed result') });
    }
    return decide(plan, result.allowed, result.tokens, cost, now);
  }

  #plan(key: ConsumeKey, now: number, throttles: readonly Throttle[]): Planned[] {
    const c = this.#config;
    const own = key.appPlan;
    const app = encodeURIComponent(key.appId);
    const day = Math.floor(now / dayMs);
    const plan: Planned[] = [
      { scope: 'user', spec: bucketSpec(`user:${encodeURIComponent(key.userId)}`, c.perUser) },
      { scope: 'app', spec: bucketSpec(`app:${app}`, appBucket(c.perApp, own)) },
      { scope: 'global', spec: bucketSpec('global', c.global) },
      {
        scope: 'quota',
        spec: {
          key: `quota:${app}:${day}`,
          capacity: Math.min(c.dailyQuotaPerApp, own?.dailyQuota ?? Infinity),
          refillPerSecond: 0,
          ttlMs: (day + 1) * dayMs - now + ttlMarginMs,
        },
        periodEndMs: (day + 1) * dayMs,
      },
    ];
    for (const throttle of throttles) {
      if (now >= throttle.untilMs) continue;
      plan.push({
        scope: 'throttle',
        spec: bucketSpec(`throttle:${app}:${throttle.generation}`, throttle.bucket),
        ...(throttle.incident !== undefined && { incident: throttle.incident }),
      });
    }
    return plan;
  }
}

/** Who is asking, and the app's own plan (its approved constraints), which can only narrow the limits. */
export interface ConsumeKey {
  appId: string;
  userId: string;
  /** The user as the audit trail and incidents name them (their email): a user throttle aims at it. */
  actor?: string;
  appPlan?: AppPlan;
}

export interface AppPlan {
  /** Requests per UTC day, all users of the app together. */
  dailyQuota?: number;
  /** Requests per minute, all users of the app together. */
  requestsPerMinute?: number;
}

/** The app bucket: the configured one, narrowed to the plan's rate (a burst of at most a minute's worth). */
export function appBucket(configured: TokenBucket, plan: AppPlan | undefined): TokenBucket {
  const perMinute = plan?.requestsPerMinute;
  if (perMinute === undefined || !(perMinute > 0)) return configured;
  return {
    burst: Math.max(1, Math.min(configured.burst, Math.floor(perMinute))),
    ratePerSecond: Math.min(configured.ratePerSecond, perMinute / 60),
  };
}

export function bucketSpec(key: string, bucket: TokenBucket): BucketSpec {
  return {
    key,
    capacity: bucket.burst,
    refillPerSecond: bucket.ratePerSecond,
    ttlMs: Math.ceil((bucket.burst * 1000) / bucket.ratePerSecond) + ttlMarginMs,
  };
}

/** The decision from the buckets' tokens after the store's call; pure, so the maths is tested alone. */
export function decide(
  plan: readonly Planned[],
  allowed: boolean,
  tokens: readonly number[],
  cost: number,
  now: number,
): RateDecision {
  let refusedBy: RateScope | undefined;
  let incident: string | undefined;
  let retryAfterMs = 0;
  const limits: RateLimitState[] = [];
  plan.forEach(({ scope, spec, periodEndMs, incident: throttledBy }, i) => {
    const held = Math.max(0, Math.min(spec.capacity, tokens[i] ?? 0));
    const short = !allowed && held < cost;
    if (short) {
      refusedBy ??= scope;
      if (scope === refusedBy) incident ??= throttledBy;
      const wait =
        periodEndMs === undefined ? msUntilTokens(held, cost, spec.refillPerSecond) : periodEndMs - now;
      retryAfterMs = Math.max(retryAfterMs, wait);
    }
    if (scope === 'global' && !short) return;
    limits.push({
      scope,
      quota: spec.capacity,
      windowSeconds:
        periodEndMs === undefined ? Math.ceil(spec.capacity / spec.refillPerSecond) : dayMs / 1000,
      remaining: Math.floor(held),
      resetSeconds: Math.ceil(
        (periodEndMs === undefined
          ? msUntilTokens(held, spec.capacity, spec.refillPerSecond)
          : periodEndMs - now) / 1000,
      ),
    });
  });
  if (allowed) return { allowed: true, limits };
  // The store refused although no bucket looks short: trust the refusal and send the caller back soon.
  if (refusedBy === undefined) return { allowed: false, limits, scope: 'global', retryAfterMs: 1000 };
  return {
    allowed: false,
    limits,
    scope: refusedBy,
    retryAfterMs,
    ...(incident !== undefined && { incident }),
  };
}

/**
 * Whole milliseconds until a bucket holding `tokens` holds `wanted`, computed the way the store
 * refills (`tokens + rate * ms / 1000`), so that a retry after exactly this long is admitted even where
 * the division rounds.
 */
export function msUntilTokens(tokens: number, wanted: number, ratePerSecond: number): number {
  if (tokens >= wanted) return 0;
  let ms = Math.ceil(((wanted - tokens) * 1000) / ratePerSecond);
  while (tokens + (ratePerSecond * ms) / 1000 < wanted) ms += 1;
  return ms;
}

/**
 * The RateLimit-Policy and RateLimit fields of draft-ietf-httpapi-ratelimit-headers (-08 and later:
 * one list member per quota policy, `q`/`w` for the policy, `r`/`t` for its state), and Retry-After
 * (RFC 9110, delta-seconds rounded up, so never early) when the request was refused.
 */
export function rateLimitHeaders(decision: RateDecision): Record<string, string> {
  const headers: Record<string, string> = {
    'RateLimit-Policy': decision.limits
      .map((l) => `"${l.scope}";q=${l.quota};w=${l.windowSeconds}`)
      .join(', '),
    RateLimit: decision.limits.map((l) => `"${l.scope}";r=${l.remaining};t=${l.resetSeconds}`).join(', '),
  };
  if (!decision.allowed) headers['Retry-After'] = String(retryAfterSeconds(decision));
  return headers;
}

/** Whole seconds a refused caller should wait: rounded up, and at least one. */
export function retryAfterSeconds(decision: RateDecision): number {
  return Math.max(1, Math.ceil((decision.retryAfterMs ?? 1000) / 1000));
}
