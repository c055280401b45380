import type { Admission, DistinctWindowStore } from './backend.js';
import type { BulkExportConfig } from './config.js';
import { LimitsUnavailable } from './errors.js';

/** Whose budget refused a read: the user's (across every app) or the app's (all its users together). */
export type BudgetScope = 'user' | 'app';

/** What the gateway records in the audit trail (action `bulk_export`) for detection; never record ids. */
export interface BulkExportEvent {
  readonly action: 'bulk_export';
  readonly guard: 'bulk_export_guard';
  readonly budget: BudgetScope;
  readonly appId: string;
  readonly object: string;
  readonly sensitive: boolean;
  readonly tableSize: number;
  readonly threshold: number;
  /** Distinct records the budget's holder (the user, or the app) has read in the window. */
  readonly distinct: number;
  /** Distinct records it would have held had this read been allowed. */
  readonly attempted: number;
  readonly windowSeconds: number;
}

export interface BulkReadDecision {
  allowed: boolean;
  /** The budget that decided: the refusing one, else the one with the least room left. */
  budget: BudgetScope;
  distinct: number;
  threshold: number;
  /** Present when refused: the event to record for detection. */
  event?: BulkExportEvent;
}

/** The app's approved plan as the guard reads it: who it expects and how much of this object they read. */
export interface ReadPlan {
  readonly expectedUsers: number;
  /** Records of the object one user is expected to read a day; absent when the plan declares none. */
  readonly expectedReads?: number;
}

export interface BulkReadKey {
  readonly appId: string;
  readonly userId: string;
  readonly object: string;
  /** Absent for an app without a plan (it then keeps the table-share threshold). */
  readonly plan?: ReadPlan;
}

const clamp = (config: BulkExportConfig, value: number) =>
  Math.min(config.maxTracked, Math.max(config.minimum, value));

/** toPrecision drops binary noise (0.01 × 700 is 7.000000000000001) that ceil would round up. */
const ceilExact = (value: number) => Math.ceil(Number(value.toPrecision(12)));

/** The table-share threshold: what an app with no plan may read per window, as before plans had budgets. */
export function bulkThreshold(config: BulkExportConfig, tableSize: number, sensitive: boolean): number {
  return clamp(config, ceilExact((sensitive ? config.fraction : config.nonSensitiveFraction) * tableSize));
}

/**
 * The most distinct records of an object one user may read per window through every app together: a
 * fixed budget for sensitive objects (a rep's territory over a day fits, a table does not), at least
 * the table share for the others.
 */
export function userBudget(config: BulkExportConfig, tableSize: number, sensitive: boolean): number {
  const own = config.perUserRecords;
  return clamp(config, sensitive ? own : Math.max(own, ceilExact(config.nonSensitiveFraction * tableSize)));
}

/**
 * The most distinct records of an object an app may read per window, all its users together: the plan's
 * declared volume (expected users × expected reads) with headroom; the sum of its users' budgets when
 * the plan declares no reads of the object; the table share when the app has no plan at all.
 */
export function appBudget(
  config: BulkExportConfig,
  tableSize: number,
  sensitive: boolean,
  plan: ReadPlan | undefined,
): number {
  if (plan === undefined) return bulkThreshold(config, tableSize, sensitive);
  const users = Math.max(1, plan.expectedUsers);
  if (plan.expectedReads === undefined)
    return clamp(config, users * userBudget(config, tableSize, sensitive));
  return clamp(config, ceilExact(users * plan.expectedReads * config.planHeadroom));
}

/**
 * Counts the distinct records each user and each app reads from each object in a sliding window,
 * however the reads are split (page size, cursor order, one id at a time, several tokens or apps of one
 * user): only the set of ids matters. Re-reading a record already counted costs nothing. A read that
 * would take either count past its budget is refused whole; the app's count is checked first, so a read
 * refused by the user's budget may still have counted towards the app's (stricter after an anomaly,
 * never looser).
 */
export class BulkGuard {
  readonly #config: BulkExportConfig;
  readonly #store: DistinctWindowStore;
  readonly #now: () => number;

  constructor(config: BulkExportConfig, store: DistinctWindowStore, now: () => number) {
    this.#config = config;
    this.#store = store;
    this.#now = now;
  }

  async guard(
    key: BulkReadKey,
    recordIds: readonly string[],
    tableSize: number,
    sensitive: boolean,
  ): Promise<BulkReadDecision> {
    if (typeof key?.appId !== 'string' || typeof key.userId !== 'string' || typeof key.object !== 'string') {
      throw new TypeError('guardBulkRead needs string appId, userId and object');
    }
    if (!Array.isArray(recordIds) || !recordIds.every((id) => typeof id === 'string')) {
      throw new TypeError('recordIds must be an array of strings');
    }
    if (!Number.isSafeInteger(tableSize) || tableSize < 0) {
      throw new TypeError('tableSize must be a non-negative integer');
    }
    const isSensitive = sensitive === true;
    const budgets: Array<{ budget: BudgetScope; storeKey: string; threshold: number }> = [
      {
        budget: 'app',
        storeKey: JSON.stringify(['app', key.appId, key.object]),
        threshold: appBudget(this.#config, tableSize, isSensitive, key.plan),
      },
      {
        budget: 'user',
        storeKey: JSON.stringify(['user', key.userId, key.object]),
        threshold: userBudget(this.#config, tableSize, isSensitive),
      },
    ];
    const windowMs = this.#config.windowSeconds * 1000;
    let results: Admission[];
    try {
      // Every budget in one call: one round trip to a shared store for the read.
      results = await this.#store.admitEach(
        budgets.map(({ storeKey, threshold }) => ({ key: storeKey, cap: threshold })),
        recordIds,
        this.#now(),
        windowMs,
      );
    } catch (error) {
      throw new LimitsUnavailable({ cause: error });
    }
    let decision: BulkReadDecision | undefined;
    for (const [i, result] of results.entries()) {
      const { budget, threshold } = budgets[i];
      if (result.admitted) {
        const room = threshold - result.distinct;
        if (decision === undefined || room < decision.threshold - decision.distinct) {
          decision = { allowed: true, budget, distinct: result.distinct, threshold };
        }
        continue;
      }
      return {
        allowed: false,
        budget,
        distinct: result.distinct,
        threshold,
        event: {
          action: 'bulk_export',
          guard: 'bulk_export_guard',
          budget,
          appId: key.appId,
          object: key.object,
          sensitive: isSensitive,
          tableSize,
          threshold,
          distinct: result.distinct,
          attempted: result.attempted,
          windowSeconds: this.#config.windowSeconds,
        },
      };
    }
    if (decision === undefined || results.length !== budgets.length) {
      throw new LimitsUnavailable({ cause: new Error('the distinct window store skipped a budget') });
    }
    return decision;
  }
}
