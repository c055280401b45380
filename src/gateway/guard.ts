import type { CrmConnector, CrmObject, CrmRecord, DataClass } from '../crm/index.js';
import { BulkExportBlocked, type BulkExportEvent, type Limits } from '../limits/index.js';
import type { Principal } from '../policy/index.js';
import type { ApprovedPlan, Trail } from './pipeline.js';

/** Classes whose presence in an object makes reading much of its table an export worth stopping early. */
const sensitiveClasses: ReadonlySet<DataClass> = new Set<DataClass>(['pii', 'financial', 'health', 'secret']);

export interface BulkGuardStage {
  /**
   * guard: counts the records a read is about to return against the user's export budget for the object
   * (across every app) and the app's (from its plan). Refused: 403 BULK_EXPORT_BLOCKED naming the guard
   * and the budget, and a `bulk_export` audit event for detection.
   */
  check(
    principal: Principal,
    object: CrmObject,
    records: readonly CrmRecord[],
    trail: Trail,
    /** The app plan's declared reads (its export budgets), from the request's one plan lookup. */
    reads?: ApprovedPlan['reads'],
  ): Promise<void>;
}

/**
 * The guard keys on the user (across every app) and on the app, never the token: paging through a table
 * is caught however it is split, across pages, page sizes, cursors, tokens and apps. The table size is
 * counted once per `cacheSeconds` per object: a count per read would cost more than the read.
 */
export function bulkGuardStage(
  crm: CrmConnector,
  limits: Limits,
  cacheSeconds: number,
  now: () => number = Date.now,
): BulkGuardStage {
  const sizes = new Map<CrmObject, { size: number; until: number }>();
  // A cached size is answered without a promise: the guard runs on every read, the count rarely.
  const tableSize = (object: CrmObject): number | Promise<number> => {
    const cached = sizes.get(object);
    if (cached && cached.until > now()) return cached.size;
    return crm.count(object).then((size) => {
      sizes.set(object, { size, until: now() + cacheSeconds * 1000 });
      return size;
    });
  };
  // Worked out once per metadata object: a connector that refreshes its metadata describes anew.
  const sensitivity = new WeakMap<ReturnType<CrmConnector['describe']>, boolean>();
  const sensitive = (object: CrmObject): boolean => {
    const meta = crm.describe(object);
    let found = sensitivity.get(meta);
    if (found === undefined) {
      found = meta.fields.some((field) => sensitiveClasses.has(field.dataClass));
      sensitivity.set(meta, found);
    }
    return found;
  };

  return {
    async check(principal, object, records, trail, reads) {
      if (records.length === 0) return;
      const pending = tableSize(object);
      const size = typeof pending === 'number' ? pending : await pending;
      const ids = records.map((record) => String(record.id));
      const expectedReads = reads?.expectedReads[object];
      const decision = await limits.guardBulkRead(
        {
          appId: principal.appId,
          userId: principal.userId,
          object,
          ...(reads && {
            plan: {
              expectedUsers: reads.expectedUsers,
              ...(expectedReads !== undefined && { expectedReads }),
            },
          }),
        },
        ids,
        size,
        sensitive(object),
      );
      if (decision.allowed) return;
      if (decision.event) trail.events.push({ action: 'bulk_export', reason: describeEvent(decision.event) });
      trail.detail = `bulk_export_guard ${decision.budget} budget ${decision.threshold}`;
      throw new BulkExportBlocked(decision);
    },
  };
}

/** The detection-facing reason of a bulk_export event: the guard's numbers, never a record id. */
function describeEvent(event: BulkExportEvent): string {
  return [
    `guard=${event.guard}`,
    `budget=${event.budget}`,
    `object=${event.object}`,
    `sensitive=${event.sensitive}`,
    `threshold=${event.threshold}`,
    `distinct=${event.distinct}`,
    `attempted=${event.attempted}`,
    `table_size=${event.tableSize}`,
    `window_seconds=${event.windowSeconds}`,
  ].join(' ');
}
