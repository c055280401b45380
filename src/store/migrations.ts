import { sql, type Kysely, type Migration } from 'kysely';
import { storeKindOf } from './dialect.js';

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
  '007_policy_decisions': {
    async up(db: Kysely<unknown>) {
      // Recorded runtime decisions for `policy simulate` (src/policy/decision-log.ts describes each
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
  '008_detect': {
    async up(db: Kysely<unknown>) {
      // Incidents of src/detect (src/detect/tables.ts describes each column); times are ISO text.
      await db.schema
        .createTable('detect_incidents')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('rule', 'text', (c) => c.notNull())
        .addColumn('actor', 'text', (c) => c.notNull())
        .addColumn('app_id', 'text', (c) => c.notNull())
        .addColumn('severity', 'text', (c) => c.notNull())
        .addColumn('state', 'text', (c) => c.notNull())
        .addColumn('summary', 'text', (c) => c.notNull())
        .addColumn('detections', 'integer', (c) => c.notNull())
        .addColumn('containment', 'text', (c) => c.notNull())
        .addColumn('playbook_version', 'text', (c) => c.notNull())
        .addColumn('opened_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addColumn('closed_at', 'text')
        .execute();
      await db.schema
        .createIndex('detect_incidents_key')
        .on('detect_incidents')
        .columns(['rule', 'actor', 'app_id', 'state'])
        .execute();
      await db.schema
        .createTable('detect_timeline')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('incident_id', 'text', (c) => c.notNull())
        .addColumn('at', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('by_actor', 'text', (c) => c.notNull())
        .addColumn('detail', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createIndex('detect_timeline_incident')
        .on('detect_timeline')
        .columns(['incident_id', 'id'])
        .execute();
      await db.schema
        .createTable('detect_evidence')
        .addColumn('incident_id', 'text', (c) => c.notNull())
        .addColumn('audit_index', 'bigint', (c) => c.notNull())
        .addPrimaryKeyConstraint('detect_evidence_pk', ['incident_id', 'audit_index'])
        .execute();
      await db.schema
        .createTable('detect_state')
        .addColumn('rule', 'text', (c) => c.primaryKey())
        .addColumn('state', 'text', (c) => c.notNull())
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
  '010_detect_cursor': {
    async up(db: Kysely<unknown>) {
      // The audit index each saved rule state stops at: the node that takes detection over goes on
      // from there (src/detect/engine.ts). Null for states saved before.
      await db.schema.alterTable('detect_state').addColumn('through', 'bigint').execute();
    },
  },
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
  '012_revocation_incident': {
    async up(db: Kysely<unknown>) {
      // The incident a containment revocation came from, so a refused token can name it (src/broker).
      await db.schema.alterTable('token_revocations').addColumn('incident', 'text').execute();
    },
  },
  '013_app_bundle_digest': {
    async up(db: Kysely<unknown>) {
      // The digest of the bundle Gatehouse scanned itself, and of the one an approval covers (src/catalog).
      await db.schema.alterTable('apps').addColumn('bundle_digest', 'text').execute();
      await db.schema.alterTable('apps').addColumn('approved_digest', 'text').execute();
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
  '027_control_state': {
    async up(db: Kysely<unknown>) {
      // What every node serves from (src/control): published policy versions and playbooks, the active
      // one of each as append-only activations, and one revision counter that each change bumps.
      await db.schema
        .createTable('control_policy_versions')
        .addColumn('version', 'text', (c) => c.primaryKey())
        .addColumn('files', 'text', (c) => c.notNull())
        .addColumn('tests', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('control_playbooks')
        .addColumn('version', 'text', (c) => c.primaryKey())
        .addColumn('text', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('control_activations')
        .addColumn('seq', 'integer', (c) =>
          storeKindOf(db) === 'postgres'
            ? c.primaryKey().generatedByDefaultAsIdentity()
            : c.primaryKey().autoIncrement(),
        )
        .addColumn('kind', 'text', (c) => c.notNull())
        .addColumn('version', 'text', (c) => c.notNull())
        .addColumn('activated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('control_revision')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('revision', 'bigint', (c) => c.notNull())
        .execute();
      await sql`insert into control_revision (id, revision) values (1, 0)`.execute(db);
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
