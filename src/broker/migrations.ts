import type { Kysely, Migration } from 'kysely';
import { storeKindOf } from '../store/index.js';

/**
 * The token broker's tables (broker_*, token_revocations), oldest first. Databases have recorded
 * these names: never rename or edit a released migration; add a new one.
 */
export const brokerMigrations: Record<string, Migration> = {
  '004_broker_grants': {
    async up(db: Kysely<unknown>) {
      // Token broker state (src/broker/tables.ts describes each column). Times are epoch seconds.
      await db.schema
        .createTable('broker_logins')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('browser_hash', 'text', (c) => c.notNull())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('redirect_uri', 'text', (c) => c.notNull())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('state', 'text')
        .addColumn('code_challenge', 'text', (c) => c.notNull())
        .addColumn('idp_nonce', 'text', (c) => c.notNull())
        .addColumn('idp_verifier', 'text', (c) => c.notNull())
        .addColumn('identity', 'text')
        .addColumn('granted_scope', 'text')
        .addColumn('consent_hash', 'text')
        .addColumn('done', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('broker_codes')
        .addColumn('code_hash', 'text', (c) => c.primaryKey())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('redirect_uri', 'text', (c) => c.notNull())
        .addColumn('code_challenge', 'text', (c) => c.notNull())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('identity', 'text', (c) => c.notNull())
        .addColumn('family_id', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .execute();
      await db.schema
        .createTable('broker_refresh_tokens')
        .addColumn('token_hash', 'text', (c) => c.primaryKey())
        .addColumn('family_id', 'text', (c) => c.notNull())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('sub', 'text', (c) => c.notNull())
        .addColumn('email', 'text')
        .addColumn('identity', 'text', (c) => c.notNull())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('cap', 'text')
        .addColumn('jkt', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('family_expires_at', 'bigint', (c) => c.notNull())
        .addColumn('used_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .execute();
      for (const column of ['family_id', 'app_id', 'sub', 'email']) {
        await db.schema
          .createIndex(`broker_refresh_tokens_${column}`)
          .on('broker_refresh_tokens')
          .column(column)
          .execute();
      }
      await db.schema
        .createTable('token_revocations')
        // SQLite's autoincrement is PostgreSQL's identity column (PostgreSQL never ran this migration before).
        .addColumn('seq', 'integer', (c) =>
          storeKindOf(db) === 'postgres'
            ? c.primaryKey().generatedByDefaultAsIdentity()
            : c.primaryKey().autoIncrement(),
        )
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('issued_before', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('reason', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('broker_elevations')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('sub', 'text', (c) => c.notNull())
        .addColumn('identity', 'text', (c) => c.notNull())
        .addColumn('client_id', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('scope', 'text', (c) => c.notNull())
        .addColumn('justification', 'text', (c) => c.notNull())
        .addColumn('status', 'text', (c) => c.notNull())
        .addColumn('reviewer', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('decided_at', 'bigint')
        .addColumn('expires_at', 'bigint', (c) => c.notNull())
        .addColumn('token_jti', 'text')
        .execute();
      await db.schema
        .createTable('broker_keys')
        .addColumn('kid', 'text', (c) => c.primaryKey())
        .addColumn('secret_name', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('publish_at', 'bigint', (c) => c.notNull())
        .addColumn('sign_at', 'bigint', (c) => c.notNull())
        .addColumn('retire_at', 'bigint')
        .execute();
    },
  },
  '012_revocation_incident': {
    async up(db: Kysely<unknown>) {
      // The incident a containment revocation came from, so a refused token can name it (src/broker).
      await db.schema.alterTable('token_revocations').addColumn('incident', 'text').execute();
    },
  },
  '014_code_flow_capability': {
    async up(db: Kysely<unknown>) {
      // RFC 9396 authorization_details asked at /oauth/authorize, carried through consent into the code.
      await db.schema.alterTable('broker_logins').addColumn('cap', 'text').execute();
      await db.schema.alterTable('broker_codes').addColumn('cap', 'text').execute();
    },
  },
  '021_broker_subjects': {
    async up(db: Kysely<unknown>) {
      // Users are keyed on the immutable (issuer, sub); the e-mail is an attribute. Offboarding names a
      // user by e-mail and revokes every subject seen with it (src/broker).
      await db.schema
        .createTable('broker_subjects')
        .addColumn('issuer', 'text', (c) => c.notNull())
        .addColumn('sub', 'text', (c) => c.notNull())
        .addColumn('email', 'text')
        .addColumn('seen_at', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('broker_subjects_pk', ['issuer', 'sub'])
        .execute();
      await db.schema.createIndex('broker_subjects_email').on('broker_subjects').column('email').execute();
    },
  },
};
