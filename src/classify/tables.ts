import type { Kysely } from 'kysely';
import type { Db } from '../store/index.js';

/** The classify module's tables (migration 006_classify). Times are ISO 8601 text. */
export interface ClassifyTables {
  /** What the last DLP sampling of a field found: counts only, never a value. */
  classify_samples: {
    object: string;
    field: string;
    /** Non-empty values sampled. */
    sampled: number;
    /** JSON object: DLP detector kind → number of sampled values holding at least one finding of it. */
    evidence: string;
    sampled_at: string;
  };
  /** An admin's class for a field, which wins over metadata and sampling; its history is in the audit trail. */
  classify_overrides: {
    object: string;
    field: string;
    data_class: string;
    reason: string;
    actor: string;
    created_at: string;
  };
}

export type ClassifyDb = Kysely<ClassifyTables>;

/** The store seen with the classify tables (they are not part of the store's own Database type). */
export function classifyDb(db: Db): ClassifyDb {
  return db as unknown as ClassifyDb;
}
