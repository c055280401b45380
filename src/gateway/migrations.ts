import type { Kysely, Migration } from 'kysely';

/**
 * The gateway's table (gateway_idempotency), oldest first. Databases have recorded
 * these names: never rename or edit a released migration; add a new one.
 */
export const gatewayMigrations: Record<string, Migration> = {
  '011_write_idempotency': {
    async up(db: Kysely<unknown>) {
      // Idempotency-Key of gateway writes (src/gateway/idempotency.ts describes each column).
      await db.schema
        .createTable('gateway_idempotency')
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('actor_id', 'text', (c) => c.notNull())
        .addColumn('key_hash', 'text', (c) => c.notNull())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('request_id', 'text', (c) => c.notNull())
        .addColumn('answer', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('gateway_idempotency_pk', ['app_id', 'actor_id', 'key_hash'])
        .execute();
      await db.schema
        .createIndex('gateway_idempotency_created')
        .on('gateway_idempotency')
        .column('created_at')
        .execute();
    },
  },
};
