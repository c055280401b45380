import type { Kysely, Migration } from 'kysely';

/**
 * The policy decision log's table (policy_decisions), oldest first. Databases have recorded
 * these names: never rename or edit a released migration; add a new one.
 */
export const decisionLogMigrations: Record<string, Migration> = {
  '007_policy_decisions': {
    async up(db: Kysely<unknown>) {
      // Recorded runtime decisions for `policy simulate` (decision-log.ts describes each
      // column): Cedar's input without record contents, pruned after policy.decisionRetentionDays.
      await db.schema
        .createTable('policy_decisions')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('policy_version', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('object', 'text', (c) => c.notNull())
        .addColumn('decision', 'text', (c) => c.notNull())
        .addColumn('policy_ids', 'text', (c) => c.notNull())
        .addColumn('input', 'text', (c) => c.notNull())
        .addColumn('row_filter', 'text')
        .execute();
      await db.schema
        .createIndex('policy_decisions_created_at')
        .on('policy_decisions')
        .columns(['created_at', 'id'])
        .execute();
      await db.schema
        .createIndex('policy_decisions_request_id')
        .on('policy_decisions')
        .column('request_id')
        .execute();
    },
  },
  '030_policy_decisions_unindexed': {
    async up(db: Kysely<unknown>) {
      // Nothing reads decisions by request: read, count and prune go by created_at. The index only
      // cost every batch of recorded decisions a second B-tree to write.
      await db.schema.dropIndex('policy_decisions_request_id').ifExists().execute();
    },
  },
};
