import type { Kysely, Migration } from 'kysely';

/**
 * The crm module's tables (crm_*): the embedded CRM's records and the versions of its field keys,
 * oldest first. Databases have recorded these names: never rename or edit a released migration; add a
 * new one.
 */
export const crmMigrations: Record<string, Migration> = {
  '001_initial': {
    // The crm's part of the first migration, which created every module's first tables at once.
    async up(db: Kysely<unknown>) {
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
  '029_crm_field_encryption': {
    async up(db: Kysely<unknown>) {
      // Versions of the data keys of encrypted CRM fields; the keys live in the key service (src/crm/field-keys.ts).
      await db.schema
        .createTable('crm_field_keys')
        .addColumn('object', 'text', (c) => c.notNull())
        .addColumn('field', 'text', (c) => c.notNull())
        .addColumn('version', 'integer', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('retired_at', 'text')
        .addPrimaryKeyConstraint('crm_field_keys_pk', ['object', 'field', 'version'])
        .execute();
      // The keyed blind index beside each encrypted field: equality filters look it up.
      for (const field of ['national_id', 'date_of_birth']) {
        await db.schema.alterTable('crm_contacts').addColumn(`${field}_bidx`, 'text').execute();
        await db.schema
          .createIndex(`crm_contacts_${field}_bidx`)
          .on('crm_contacts')
          .column(`${field}_bidx`)
          .execute();
      }
    },
  },
};
