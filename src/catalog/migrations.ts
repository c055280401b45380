import type { Kysely, Migration } from 'kysely';

/**
 * The catalog's tables (apps, app_history, catalog_cursors), oldest first. Databases have recorded
 * these names: never rename or edit a released migration; add a new one.
 */
export const catalogMigrations: Record<string, Migration> = {
  '001_initial': {
    // The catalog's part of the first migration, which created every module's first tables at once.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('apps')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('client_id', 'text', (c) => c.notNull().unique())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('owner', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('manifest', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
  '005_catalog': {
    async up(db: Kysely<unknown>) {
      // The app lifecycle (src/catalog/tables.ts describes each column); times are ISO text, JSON as text.
      for (const column of [
        'requested_by',
        'approved_by',
        'approved_at',
        'approved_until',
        'review_reason',
        'admission',
        'data_classes',
        'constraints',
        'pending',
        'scan',
        'last_used_at',
        'unused_notified_at',
      ]) {
        await db.schema.alterTable('apps').addColumn(column, 'text').execute();
      }
      await db.schema.alterTable('apps').addColumn('risk_score', 'integer').execute();
      await db.schema.createIndex('apps_owner').on('apps').columns(['owner', 'id']).execute();
      await db.schema.createIndex('apps_status').on('apps').columns(['status', 'id']).execute();
      await db.schema
        .createTable('app_history')
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('seq', 'integer', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('from_state', 'text', (c) => c.notNull())
        .addColumn('to_state', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('app_history_pk', ['app_id', 'seq'])
        .execute();
      await db.schema
        .createTable('catalog_cursors')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('position', 'bigint', (c) => c.notNull())
        .execute();
    },
  },
  '013_app_bundle_digest': {
    async up(db: Kysely<unknown>) {
      // The digest of the bundle Gatehouse scanned itself, and of the one an approval covers (src/catalog).
      await db.schema.alterTable('apps').addColumn('bundle_digest', 'text').execute();
      await db.schema.alterTable('apps').addColumn('approved_digest', 'text').execute();
    },
  },
};
