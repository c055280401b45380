import { readFileSync } from 'node:fs';
import { gunzipSync } from 'node:zlib';
import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { describe, expect, it } from 'vitest';
import { gatehouseMigrations, moduleMigrations } from './index.js';

/**
 * A SQLite database migrated by the single migration list src/store kept before each module owned its
 * migrations (schema only, made by that code); test/restart.e2e.test.ts starts a server on it.
 */
const oldDatabase = new URL('../../test/fixtures/migrations/store-029.db.gz', import.meta.url);

/** The names databases have recorded, in the order Kysely ran them when store kept one list. */
const recordedNames = [
  '001_initial',
  '002_crm_reference_indexes',
  '003_contact_consent',
  '004_broker_grants',
  '005_catalog',
  '006_classify',
  '007_policy_decisions',
  '008_detect',
  '009_audit_queue',
  '010_detect_cursor',
  '011_write_idempotency',
  '012_revocation_incident',
  '013_app_bundle_digest',
  '014_code_flow_capability',
  '017_compliance_app_store',
  '018_compliance_runs',
  '021_broker_subjects',
  '025_audit_cosignatures',
  '026_secrets',
  '027_control_state',
  '029_crm_field_encryption',
];

/** Migrations added since the fixture was made (store-029); they run on it at its next start. */
const newerNames = ['030_policy_decisions_unindexed', '031_audit_queue_pending_only'];

/** Which module owns a table: its name's prefix, but for the tables named before prefixes were the rule. */
const unprefixed: Record<string, string> = {
  meta: 'store',
  apps: 'catalog',
  app_history: 'catalog',
  token_revocations: 'broker',
  secrets: 'secrets',
  policy_decisions: 'decision-log',
};
const ownerOf = (table: string) => unprefixed[table] ?? table.split('_')[0];

interface SchemaRow {
  type: string;
  name: string;
  tbl_name: string;
  sql: string | null;
}

/** The schema as SQLite records it: every table and index with the DDL it was made by. */
function schemaOf(database: SQLite.Database): SchemaRow[] {
  return database
    .prepare(
      "select type, name, tbl_name, sql from sqlite_master where name not like 'sqlite_%' and name not like 'kysely_%' order by name",
    )
    .all() as SchemaRow[];
}

function oldSchema(): SchemaRow[] {
  const database = new SQLite(gunzipSync(readFileSync(oldDatabase)));
  try {
    return schemaOf(database);
  } finally {
    database.close();
  }
}

describe("the modules' migrations, as the composition root combines them", () => {
  it('keep the names databases have recorded, each once, in the order Kysely ran them', () => {
    const names = Object.keys(gatehouseMigrations);
    expect(names).toEqual([...recordedNames, ...newerNames]);
    expect([...names].sort()).toEqual(names);
    const perModule = Object.values(moduleMigrations).flatMap((list) => Object.keys(list));
    // Only the first migration, which made every module's first tables, is shared: by its four parts.
    expect(perModule.filter((name) => name === '001_initial')).toHaveLength(4);
    expect(new Set(perModule).size).toBe(perModule.length - 3);
  });

  it("each module's migrations touch only its own tables, and together build the old list's schema", async () => {
    const database = new SQLite(':memory:');
    const db = new Kysely<unknown>({ dialect: new SqliteDialect({ database }) });
    try {
      const run = async (names: readonly string[]) => {
        for (const name of names) {
          for (const [module, migrations] of Object.entries(moduleMigrations)) {
            const migration = migrations[name];
            if (!migration) continue;
            const before = schemaOf(database).map((row) => JSON.stringify(row));
            await migration.up(db);
            const after = schemaOf(database).map((row) => JSON.stringify(row));
            // Made or dropped: both count as touched.
            const touched = [
              ...after.filter((row) => !before.includes(row)),
              ...before.filter((row) => !after.includes(row)),
            ].map((row) => JSON.parse(row) as SchemaRow);
            expect(touched.length, `${module}: ${name} changes nothing`).toBeGreaterThan(0);
            expect(
              touched.map((row) => ({ table: row.tbl_name, module: ownerOf(row.tbl_name) })),
              `${module}: ${name}`,
            ).toEqual(touched.map((row) => ({ table: row.tbl_name, module })));
          }
        }
      };
      await run(recordedNames);
      expect(schemaOf(database)).toEqual(oldSchema());
      await run(newerNames);
      expect(schemaOf(database).map((row) => row.name)).not.toContain('policy_decisions_request_id');
    } finally {
      await db.destroy();
    }
  });
});
