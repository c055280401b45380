import type { Kysely, Migration } from 'kysely';

/**
 * The audit module's tables (audit_*), oldest first. Databases have recorded
 * these names: never rename or edit a released migration; add a new one.
 */
export const auditMigrations: Record<string, Migration> = {
  '001_initial': {
    // The audit's part of the first migration, which created every module's first tables at once.
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('audit_events')
        .addColumn('idx', 'bigint', (c) => c.primaryKey())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('leaf_hash', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('audit_events_request_id')
        .on('audit_events')
        .column('request_id')
        .execute();
      await db.schema
        .createIndex('audit_events_app_id')
        .on('audit_events')
        .columns(['app_id', 'idx'])
        .execute();
      await db.schema
        .createTable('audit_checkpoints')
        .addColumn('size', 'bigint', (c) => c.primaryKey())
        .addColumn('root_hash', 'text', (c) => c.notNull())
        .addColumn('note', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('audit_nodes')
        .addColumn('level', 'integer', (c) => c.notNull())
        .addColumn('idx', 'bigint', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('audit_nodes_pk', ['level', 'idx'])
        .execute();
    },
  },
  '009_audit_queue': {
    async up(db: Kysely<unknown>) {
      // Leaves waiting for the audit sequencer (PostgreSQL, many nodes; src/audit/sequencer.ts). A node
      // inserts its events here and waits; the one sequencer gives each its index in the log, and the
      // node learns it from `idx`. Integrated rows are deleted after a minute.
      await db.schema
        .createTable('audit_queue')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('event', 'text', (c) => c.notNull())
        .addColumn('queued_at', 'text', (c) => c.notNull())
        .addColumn('idx', 'bigint')
        .addColumn('integrated_at', 'text')
        .execute();
      await db.schema
        .createIndex('audit_queue_pending')
        .on('audit_queue')
        .columns(['idx', 'queued_at', 'id'])
        .execute();
    },
  },
  '025_audit_cosignatures': {
    async up(db: Kysely<unknown>) {
      // Witness cosignatures of audit checkpoints, one per checkpoint size and witness (src/audit).
      await db.schema
        .createTable('audit_cosignatures')
        .addColumn('size', 'bigint', (c) => c.notNull())
        .addColumn('witness', 'text', (c) => c.notNull())
        .addColumn('line', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('audit_cosignatures_pk', ['size', 'witness'])
        .execute();
    },
  },
};
