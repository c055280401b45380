import type { Kysely, Migration } from 'kysely';

/**
 * Migrations by name; Kysely runs them sorted by name. Each module owns the migrations of its tables and
 * exports them from its index.ts; the composition root (src/server) combines them and hands the result
 * to openStore. Only Kysely's schema builder and portable types, so the same list runs on SQLite and
 * PostgreSQL.
 */
export type Migrations = Readonly<Record<string, Migration>>;

/**
 * The one name several modules share: the first migration created every module's first tables at once,
 * and databases have recorded it under this name, so each module keeps its part of it under the name.
 */
const sharedMigration = '001_initial';

/** The store's own table (meta.ts). */
export const storeMigrations: Migrations = {
  [sharedMigration]: {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
    },
  },
};

/**
 * Every module's migrations as one list, sorted by name. The parts of the shared first migration run in
 * the order of `lists`, as one migration; any other name given twice is two modules' mistake and throws.
 */
export function combineMigrations(lists: readonly Migrations[]): Migrations {
  const parts = new Map<string, Migration[]>();
  for (const list of lists) {
    for (const [name, migration] of Object.entries(list)) {
      const named = parts.get(name) ?? [];
      if (named.length > 0 && name !== sharedMigration) {
        throw new TypeError(`migration ${name} is given by two modules; give the newer one its own name`);
      }
      parts.set(name, [...named, migration]);
    }
  }
  return Object.fromEntries(
    [...parts.keys()].sort().map((name) => [name, inSequence(parts.get(name) as Migration[])]),
  );
}

function inSequence(migrations: readonly Migration[]): Migration {
  if (migrations.length === 1) return migrations[0] as Migration;
  return {
    async up(db) {
      for (const migration of migrations) await migration.up(db);
    },
  };
}
