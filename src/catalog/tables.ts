import type { Kysely } from 'kysely';
import type { Database, Db } from '../store/index.js';

/**
 * The catalog's tables: `apps` (src/store/schema.ts) and those of migration 005_catalog. Times are ISO
 * 8601 text.
 */
export interface CatalogTables {
  apps: Database['apps'];
  /** Every lifecycle change of every app, in order; the audit trail holds the same, signed. */
  app_history: {
    app_id: string;
    /** 1, 2, 3 … per app. */
    seq: number;
    at: string;
    /** register, update, approve, deny, suspend, restore, retire, transfer, expire. */
    action: string;
    from_state: string;
    to_state: string;
    /** An email, `policy` (the admission policy decided), `system`, `detect` or `cli`. */
    actor: string;
    reason: string;
  };
  /** How far the catalog has read the audit log for last-use times: the next index to read. */
  catalog_cursors: { name: string; position: number };
}

export type CatalogDb = Kysely<CatalogTables>;

/** The store seen through the catalog's tables only. */
export function catalogDb(db: Db | CatalogDb): CatalogDb {
  return db as unknown as CatalogDb;
}
