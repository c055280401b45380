import type { Kysely, Migration } from 'kysely';

/**
 * The detect module's tables (detect_*), oldest first. Databases have recorded
 * these names: never rename or edit a released migration; add a new one.
 */
export const detectMigrations: Record<string, Migration> = {
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
  '010_detect_cursor': {
    async up(db: Kysely<unknown>) {
      // The audit index each saved rule state stops at: the node that takes detection over goes on
      // from there (src/detect/engine.ts). Null for states saved before.
      await db.schema.alterTable('detect_state').addColumn('through', 'bigint').execute();
    },
  },
};
