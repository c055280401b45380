import type { Kysely, Migration } from 'kysely';

/**
 * The compliance module's tables (compliance_*), oldest first. Databases have recorded
 * these names: never rename or edit a released migration; add a new one.
 */
export const complianceMigrations: Record<string, Migration> = {
  '017_compliance_app_store': {
    async up(db: Kysely<unknown>) {
      // The governed app data store (src/compliance/tables.ts describes each column).
      await db.schema
        .createTable('compliance_documents')
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('user_id', 'text', (c) => c.notNull())
        .addColumn('collection', 'text', (c) => c.notNull())
        .addColumn('key', 'text', (c) => c.notNull())
        .addColumn('data', 'text', (c) => c.notNull())
        .addColumn('bytes', 'integer', (c) => c.notNull())
        .addColumn('data_classes', 'text', (c) => c.notNull())
        .addColumn('subject_ids', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addPrimaryKeyConstraint('compliance_documents_pk', ['app_id', 'user_id', 'collection', 'key'])
        .execute();
      await db.schema
        .createIndex('compliance_documents_expires')
        .on('compliance_documents')
        .column('expires_at')
        .execute();
    },
  },
  '018_compliance_runs': {
    async up(db: Kysely<unknown>) {
      // Purge runs and data-subject requests, with what each deleted by hash (src/compliance/tables.ts).
      await db.schema
        .createTable('compliance_purges')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('manifest', 'text', (c) => c.notNull())
        .addColumn('event_index', 'bigint')
        .execute();
      await db.schema
        .createTable('compliance_dsr')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('regime', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('contact_id', 'text')
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('requested_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('due_at', 'text', (c) => c.notNull())
        .addColumn('closed_at', 'text')
        .addColumn('detail', 'text', (c) => c.notNull())
        .execute();
    },
  },
};
