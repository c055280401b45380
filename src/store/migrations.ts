import { type Kysely, type Migration } from 'kysely';

/**
 * Versioned migrations, oldest first. Only Kysely's schema builder and portable types, so the same
 * list runs on SQLite and PostgreSQL. Never edit a released migration; add a new one.
 */
export const migrations: Record<string, Migration> = {
  '001_initial': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('meta')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .execute();
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

      const crmTable = (name: string) =>
        db.schema
          .createTable(name)
          .addColumn('id', 'text', (c) => c.primaryKey())
          .addColumn('territory', 'text', (c) => c.notNull())
          .addColumn('owner', 'text', (c) => c.notNull())
          .addColumn('created_at', 'text', (c) => c.notNull())
          .addColumn('updated_at', 'text', (c) => c.notNull());
      await crmTable('crm_accounts')
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('industry', 'text', (c) => c.notNull())
        .addColumn('annual_revenue', 'double precision', (c) => c.notNull())
        .execute();
      await crmTable('crm_contacts')
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('first_name', 'text', (c) => c.notNull())
        .addColumn('last_name', 'text', (c) => c.notNull())
        .addColumn('title', 'text', (c) => c.notNull())
        .addColumn('email', 'text', (c) => c.notNull())
        .addColumn('phone', 'text', (c) => c.notNull())
        .addColumn('date_of_birth', 'text', (c) => c.notNull())
        .addColumn('national_id', 'text', (c) => c.notNull())
        .execute();
      await crmTable('crm_opportunities')
        .addColumn('account_id', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('stage', 'text', (c) => c.notNull())
        .addColumn('amount', 'double precision', (c) => c.notNull())
        .addColumn('close_date', 'text', (c) => c.notNull())
        .execute();
      await crmTable('crm_notes')
        .addColumn('body', 'text', (c) => c.notNull())
        .addColumn('author', 'text', (c) => c.notNull())
        .addColumn('account_id', 'text')
        .addColumn('contact_id', 'text')
        .addColumn('opportunity_id', 'text')
        .execute();
      for (const table of ['crm_accounts', 'crm_contacts', 'crm_opportunities', 'crm_notes']) {
        // Row filters and cursors page by (territory, id): the index keeps both in the query.
        await db.schema.createIndex(`${table}_territory_id`).on(table).columns(['territory', 'id']).execute();
      }

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
  '002_crm_reference_indexes': {
    async up(db: Kysely<unknown>) {
      // Children are listed, re-owned and deleted by their parent: contacts of an account, notes of a contact.
      const indexes: [table: string, columns: string[]][] = [
        ['crm_contacts', ['account_id', 'id']],
        ['crm_opportunities', ['account_id', 'id']],
        ['crm_notes', ['account_id', 'id']],
        ['crm_notes', ['contact_id']],
        ['crm_notes', ['opportunity_id']],
      ];
      for (const [table, columns] of indexes) {
        await db.schema.createIndex(`${table}_${columns[0]}`).on(table).columns(columns).execute();
      }
    },
  },
  '003_contact_consent': {
    async up(db: Kysely<unknown>) {
      // Purposes a contact consented to, as a sorted JSON array (`["analytics","sales_outreach"]`). Rows
      // that existed before have no recorded consent, and no recorded consent is no consent.
      await db.schema
        .alterTable('crm_contacts')
        .addColumn('consent', 'text', (c) => c.notNull().defaultTo('[]'))
        .execute();
    },
  },
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
        .addColumn('seq', 'integer', (c) => c.primaryKey().autoIncrement())
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
};
