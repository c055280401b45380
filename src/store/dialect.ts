import { PostgresAdapter, type Kysely } from 'kysely';

export type StoreKind = 'sqlite' | 'postgres';

/** Which backend a Kysely instance runs on (migrations and the audit log branch on it where SQL differs). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any schema: only the adapter is read
export function storeKindOf(db: Kysely<any>): StoreKind {
  return db.getExecutor().adapter instanceof PostgresAdapter ? 'postgres' : 'sqlite';
}
