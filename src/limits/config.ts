/** Limits configuration: one shape, defaults in one place, validated once and frozen. */

/** A token bucket: a client may send `burst` requests at once, then `ratePerSecond` on average. */
export interface TokenBucket {
  /** The bucket's capacity: requests allowed back to back from a full bucket. */
  readonly burst: number;
  /** Tokens (requests) added back per second, continuously, up to `burst`. */
  readonly ratePerSecond: number;
}

export interface BulkExportConfig {
  /** Length of the sliding window in which distinct records are counted. */
  readonly windowSeconds: number;
  /**
   * Share of a table an app without a plan may read per window from an object that holds sensitive
   * classes. Apps with a plan get the plan's budget; the 1% share is the admission rule (policy).
   */
  readonly fraction: number;
  /** Share of a table an app may read per window from other objects. */
  readonly nonSensitiveFraction: number;
  /** Floor of the threshold, so that small tables stay usable. */
  readonly minimum: number;
  /**
   * Distinct records of a sensitive object one user may read per window through all apps together
   * (a rep's territory over a day fits; splitting an export over tokens or apps does not help).
   */
  readonly perUserRecords: number;
  /** How far above its plan's declared volume (expected users × expected reads) an app may read. */
  readonly planHeadroom: number;
  /**
   * Ceiling of the threshold, which bounds the ids kept per (app, object). A huge table is guarded
   * at this many records rather than tracked without bound: the guard fails closed, not open.
   */
  readonly maxTracked: number;
}

export interface BreakerConfig {
  /** Consecutive failures that open the circuit. */
  readonly failureThreshold: number;
  /** How long an open circuit refuses before it lets one trial call through. */
  readonly openSeconds: number;
}

export interface LimitsConfig {
  readonly perApp: TokenBucket;
  /** Per end user, across every app they use. */
  readonly perUser: TokenBucket;
  readonly global: TokenBucket;
  /** Requests per app per UTC day. */
  readonly dailyQuotaPerApp: number;
  readonly bulkExport: BulkExportConfig;
  readonly breaker: BreakerConfig;
}

export const defaultLimitsConfig: LimitsConfig = deepFreeze({
  // The averages of 600, 120 and 6000 a minute, with a minute's worth as the burst.
  perApp: { burst: 600, ratePerSecond: 10 },
  perUser: { burst: 120, ratePerSecond: 2 },
  global: { burst: 6000, ratePerSecond: 100 },
  dailyQuotaPerApp: 100_000,
  bulkExport: {
    windowSeconds: 3600,
    fraction: 0.01,
    nonSensitiveFraction: 0.25,
    minimum: 50,
    perUserRecords: 200,
    planHeadroom: 3,
    maxTracked: 100_000,
  },
  breaker: { failureThreshold: 5, openSeconds: 30 },
});

/**
 * A validated, frozen copy of `config`. A bad value is a programming or configuration mistake, so it
 * throws a TypeError naming the setting (the config module reports user-facing errors before this).
 */
export function validateLimitsConfig(config: LimitsConfig): LimitsConfig {
  if (typeof config !== 'object' || config === null) throw new TypeError('limits config must be an object');
  const bucket = (name: string, value: TokenBucket): TokenBucket => {
    if (typeof value !== 'object' || value === null) throw new TypeError(`limits.${name} must be an object`);
    return {
      burst: positiveInteger(`limits.${name}.burst`, value.burst),
      ratePerSecond: positiveRate(`limits.${name}.ratePerSecond`, value.ratePerSecond),
    };
  };
  const bulk = config.bulkExport;
  if (typeof bulk !== 'object' || bulk === null) throw new TypeError('limits.bulkExport must be an object');
  const breaker = config.breaker;
  if (typeof breaker !== 'object' || breaker === null)
    throw new TypeError('limits.breaker must be an object');
  const out: LimitsConfig = {
    perApp: bucket('perApp', config.perApp),
    perUser: bucket('perUser', config.perUser),
    global: bucket('global', config.global),
    dailyQuotaPerApp: positiveInteger('limits.dailyQuotaPerApp', config.dailyQuotaPerApp),
    bulkExport: {
      windowSeconds: positiveInteger('limits.bulkExport.windowSeconds', bulk.windowSeconds),
      fraction: fraction('limits.bulkExport.fraction', bulk.fraction),
      nonSensitiveFraction: fraction('limits.bulkExport.nonSensitiveFraction', bulk.nonSensitiveFraction),
      minimum: nonNegativeInteger('limits.bulkExport.minimum', bulk.minimum),
      perUserRecords: positiveInteger('limits.bulkExport.perUserRecords', bulk.perUserRecords),
      planHeadroom: headroom('limits.bulkExport.planHeadroom', bulk.planHeadroom),
      maxTracked: positiveInteger('limits.bulkExport.maxTracked', bulk.maxTracked),
    },
    breaker: {
      failureThreshold: positiveInteger('limits.breaker.failureThreshold', breaker.failureThreshold),
      openSeconds: positiveInteger('limits.breaker.openSeconds', breaker.openSeconds),
    },
  };
  if (out.bulkExport.minimum > out.bulkExport.maxTracked) {
    throw new TypeError('limits.bulkExport.minimum must not exceed limits.bulkExport.maxTracked');
  }
  return deepFreeze(out);
}

function positiveInteger(name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 1)
    throw new TypeError(`${name} must be a positive integer`);
  return value as number;
}

/** At most a million a second: beyond that a limit means nothing and the bucket maths loses precision. */
export function positiveRate(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0 && value <= 1_000_000)) {
    throw new TypeError(`${name} must be a number of requests per second in (0, 1000000]`);
  }
  return value;
}

function nonNegativeInteger(name: string, value: unknown): number {
  if (!Number.isSafeInteger(value) || (value as number) < 0) {
    throw new TypeError(`${name} must be a non-negative integer`);
  }
  return value as number;
}

function headroom(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value >= 1 && value <= 100))
    throw new TypeError(`${name} must be in [1, 100]`);
  return value;
}

function fraction(name: string, value: unknown): number {
  if (typeof value !== 'number' || !(value > 0 && value <= 1))
    throw new TypeError(`${name} must be in (0, 1]`);
  return value;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const member of Object.values(value)) deepFreeze(member);
    Object.freeze(value);
  }
  return value;
}
