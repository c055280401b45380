import { sql, type Kysely, type Migration } from 'kysely';
import { storeKindOf } from '../store/index.js';

/**
 * The control state's tables (control_*), oldest first. Databases have recorded
 * these names: never rename or edit a released migration; add a new one.
 */
export const controlMigrations: Record<string, Migration> = {
  '027_control_state': {
    async up(db: Kysely<unknown>) {
      // What every node serves from (src/control): published policy versions and playbooks, the active
      // one of each as append-only activations, and one revision counter that each change bumps.
      await db.schema
        .createTable('control_policy_versions')
        .addColumn('version', 'text', (c) => c.primaryKey())
        .addColumn('files', 'text', (c) => c.notNull())
        .addColumn('tests', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('control_playbooks')
        .addColumn('version', 'text', (c) => c.primaryKey())
        .addColumn('text', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('control_activations')
        .addColumn('seq', 'integer', (c) =>
          storeKindOf(db) === 'postgres'
            ? c.primaryKey().generatedByDefaultAsIdentity()
            : c.primaryKey().autoIncrement(),
        )
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('activated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('control_revision')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('revision', 'bigint', (c) => c.notNull())
        .execute();
      await sql`insert into control_revision (id, revision) values (1, 0)`.execute(db);
    },
  },
};
