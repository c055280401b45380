import { sql, type Kysely } from 'kysely';
import { storeKindOf } from './dialect.js';

/** The NOTIFY channel on which PostgreSQL tells every node that the control state changed. */
export const controlChannel = 'gatehouse_control';

/** The `control_revision` table (migration 027_control_state): one row, bumped by each control change. */
interface RevisionTables {
  control_revision: { id: number; revision: number | string | bigint };
}

/**
 * Records that the control state (policy versions, playbooks, signing keys) changed: nodes poll the
 * revision, and on PostgreSQL the NOTIFY wakes them at once.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any schema: only `control_revision` is used
export async function bumpControlRevision(database: Kysely<any>): Promise<void> {
  const db = database as Kysely<RevisionTables>;
  await db
    .updateTable('control_revision')
    .set((eb) => ({ revision: eb('revision', '+', 1) }))
    .where('id', '=', 1)
    .execute();
  if (storeKindOf(db) === 'postgres') await sql`select pg_notify(${controlChannel}, '')`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any -- any schema: only `control_revision` is used
export async function readControlRevision(database: Kysely<any>): Promise<number> {
  const db = database as Kysely<RevisionTables>;
  const row = await db
    .selectFrom('control_revision')
    .select('revision')
    .where('id', '=', 1)
    .executeTakeFirst();
  return Number(row?.revision ?? 0);
}
