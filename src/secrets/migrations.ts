import type { Kysely, Migration } from 'kysely';

/**
 * The secrets module's table (secrets), oldest first. Databases have recorded
 * these names: never rename or edit a released migration; add a new one.
 */
export const secretsMigrations: Record<string, Migration> = {
  '026_secrets': {
    async up(db: Kysely<unknown>) {
      // Secrets as versioned envelopes (src/secrets/stored.ts): a row is never changed; a delete adds a
      // tombstone (envelope null), so history stays and a re-import never brings a deleted secret back.
      await db.schema
        .createTable('secrets')
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('envelope', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('secrets_pk', ['name', 'version'])
        .execute();
    },
  },
};
