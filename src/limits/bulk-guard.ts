import type { DistinctWindowStore } from './backend.js';
import type { BulkExportConfig } from './config.js';
import { LimitsUnavailable } from './errors.js';

/** What the gateway records in the audit trail (action `bulk_export`) for detection; never record ids. */
export interface BulkExportEvent {
  readonly action: 'bulk_export';
  readonly guard: 'bulk_export_guard';
  readonly appId: string;
  readonly object: string;
  readonly sensitive: boolean;
  readonly tableSize: number;
  readonly threshold: number;
  /** Distinct records the app has read in the window. */
  readonly distinct: number;
  /** Distinct records it would have held had this read been allowed. */
  readonly attempted: number;
  readonly windowSeconds: number;
}

export interface BulkReadDecision {
  allowed: boolean;
  distinct: number;
  threshold: number;
  /** Present when refused: the event to record for detection. */
  event?: BulkExportEvent;
}

/** The most distinct records of a table of `tableSize` one app may read per window. */
export function bulkThreshold(config: BulkExportConfig, tableSize: number, sensitive: boolean): number {
  const share = (sensitive ? config.fraction : config.nonSensitiveFraction) * tableSize;
  // toPrecision drops binary noise (0.01 × 700 is 7.000000000000001) that ceil would round up.
  const proportional = Math.ceil(Number(share.toPrecision(12)));
  return Math.min(config.maxTracked, Math.max(config.minimum, proportional));
}

/**
 * Counts the distinct records each app reads from each object in a sliding window, however the reads
 * are split (page size, cursor order, one id at a time): only the set of ids matters. Re-reading a
 * record already counted costs nothing. A read that would take the count past the threshold is refused
 * whole and not counted.
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
    key: { appId: string; object: string },
    recordIds: readonly string[],
    tableSize: number,
    sensitive: boolean,
  ): Promise<BulkReadDecision> {
    if (typeof key?.appId !== 'string' || typeof key.object !== 'string') {
      throw new TypeError('guardBulkRead needs string appId and object');
    }
    if (!Array.isArray(recordIds) || !recordIds.every((id) => typeof id === 'string')) {
      throw new TypeError('recordIds must be an array of strings');
    }
    if (!Number.isSafeInteger(tableSize) || tableSize < 0) {
      throw new TypeError('tableSize must be a non-negative integer');
    }
    const threshold = bulkThreshold(this.#config, tableSize, sensitive === true);
    const storeKey = JSON.stringify([key.appId, key.object]);
    const windowMs = this.#config.windowSeconds * 1000;
    let result: { admitted: boolean; distinct: number; attempted: number };
    try {
      result = await this.#store.admit(storeKey, recordIds, this.#now(), windowMs, threshold);
    } catch (error) {
      throw new LimitsUnavailable({ cause: error });
    }
    if (result.admitted) return { allowed: true, distinct: result.distinct, threshold };
    return {
      allowed: false,
      distinct: result.distinct,
      threshold,
      event: {
        action: 'bulk_export',
        guard: 'bulk_export_guard',
        appId: key.appId,
        object: key.object,
        sensitive: sensitive === true,
        tableSize,
        threshold,
        distinct: result.distinct,
        attempted: result.attempted,
        windowSeconds: this.#config.windowSeconds,
      },
    };
  }
}
