import type { Kysely, Migration } from 'kysely';

/**
 * The classify module's tables (classify_*), oldest first. Databases have recorded
 * these names: never rename or edit a released migration; add a new one.
 */
export const classifyMigrations: Record<string, Migration> = {
  '006_classify': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('classify_samples')
        .addColumn('object', 'text', (c) => c.notNull())
        .addColumn('field', 'text', (c) => c.notNull())
        .addColumn('sampled', 'integer', (c) => c.notNull())
        .addColumn('evidence', 'text', (c) => c.notNull())
        .addColumn('sampled_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('classify_samples_pk', ['object', 'field'])
        .execute();
      await db.schema
        .createTable('classify_overrides')
        .addColumn('object', 'text', (c) => c.notNull())
        .addColumn('field', 'text', (c) => c.notNull())
        .addColumn('data_class', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('classify_overrides_pk', ['object', 'field'])
        .execute();
    },
  },
};
