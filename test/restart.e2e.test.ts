import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { decodeJwt } from 'jose';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../src/config/index.js';
import { openGatehouseStore } from '../src/database/index.js';
import { gatehouse } from './support/cli.js';
import { onPostgres, openTestSql, testDatabase, withTestDatabase } from './support/database.js';
import { startDemo } from './support/demo.js';

let dataDir = '';
afterAll(() => {
  if (dataDir) rmSync(dataDir, { recursive: true, force: true });
});

describe('a demo data dir across restarts and commands', () => {
  it('keeps CRM data, apps and the audit log when started again, and the CLI works on it', async () => {
    const first = await startDemo({ keepDataDir: true });
    dataDir = first.dataDir;
    const token = await first.accessToken('alice', 'call-notes', 'read:account.basic');
    const before = (await (await first.get('/crm/v1/accounts?limit=3', token)).json()) as {
      records: unknown[];
    };
    await first.stop();

    const second = await startDemo({ dataDir, keepDataDir: true });
    const again = await second.accessToken('alice', 'call-notes', 'read:account.basic');
    const after = (await (await second.get('/crm/v1/accounts?limit=3', again)).json()) as {
      records: unknown[];
    };
    expect(after.records).toEqual(before.records);

    const idToken = gatehouse(['dev', 'id-token', '--user', 'bob', '--data-dir', dataDir]);
    expect(idToken.code).toBe(0);
    expect(decodeJwt(idToken.stdout.trim())).toMatchObject({ sub: 'bob', email: 'bob@example.com' });
    const unknown = gatehouse(['dev', 'id-token', '--user', 'mallory', '--data-dir', dataDir]);
    expect(unknown.code).toBe(1);
    expect(unknown.stderr).toContain('USER_UNKNOWN');

    const apps = gatehouse(['app', 'list', '--json', '--data-dir', dataDir]);
    expect(JSON.parse(apps.stdout).records.map((a: { id: string }) => a.id)).toEqual([
      'call-notes',
      'console',
      'pipeline-dashboard',
    ]);
    await second.stop();
  });

  it('audit verify passes on the intact log and names the first bad index after tampering', async () => {
    const intact = gatehouse(['audit', 'verify', '--json', '--data-dir', dataDir]);
    expect(intact.code).toBe(0);
    expect(JSON.parse(intact.stdout)).toMatchObject({ ok: true });

    const db = await openTestSql(dataDir);
    const row = (await db.get<{ idx: number; event: string }>(
      'select idx, event from audit_events where idx = 1',
    )) as { idx: number; event: string };
    await db.run('update audit_events set event = ? where idx = 1', row.event.replace('"allow"', '"deny"'));
    await db.close();

    const tampered = gatehouse(['audit', 'verify', '--json', '--data-dir', dataDir]);
    expect(tampered.code).not.toBe(0);
    expect(JSON.parse(tampered.stdout)).toMatchObject({ ok: false, firstBadIndex: 1 });
  });
});

/**
 * A database migrated by the single migration list src/store kept before each module owned its
 * migrations, made by that code: the SQLite file itself, or PostgreSQL's pg_dump of one.
 */
async function restoreOldStore(dataDir: string): Promise<void> {
  const fixtures = new URL('./fixtures/migrations/', import.meta.url);
  if (!onPostgres) {
    writeFileSync(
      join(dataDir, 'gatehouse.db'),
      gunzipSync(readFileSync(new URL('store-029.db.gz', fixtures))),
    );
    return;
  }
  const dump = readFileSync(new URL('store-029.postgres.sql', fixtures), 'utf8');
  await withTestDatabase(dataDir, (client) => client.query(dump));
}

/** Every table's columns and every index, as the backend describes them. */
async function schemaOf(dataDir: string): Promise<unknown[]> {
  const db = await openTestSql(dataDir);
  try {
    if (!onPostgres) {
      return await db.all(
        "select type, name, tbl_name, sql from sqlite_master where name not like 'sqlite_%' order by name",
      );
    }
    return [
      ...(await db.all(
        `select table_name, column_name, data_type, is_nullable, column_default, is_identity
         from information_schema.columns where table_schema = 'public' order by table_name, column_name`,
      )),
      ...(await db.all(
        "select indexname, indexdef from pg_indexes where schemaname = 'public' order by indexname",
      )),
    ];
  } finally {
    await db.close();
  }
}

describe('a data dir migrated before each module owned its migrations', () => {
  const oldDir = mkdtempSync(join(tmpdir(), 'gatehouse-old-store-'));
  const freshDir = mkdtempSync(join(tmpdir(), 'gatehouse-fresh-store-'));
  afterAll(() => {
    for (const dir of [oldDir, freshDir]) rmSync(dir, { recursive: true, force: true });
  });

  it('starts, runs no migration again, serves the CRM, and has the schema a new database gets', async () => {
    await restoreOldStore(oldDir);
    const recorded = async () => {
      const db = await openTestSql(oldDir);
      try {
        return await db.all<{ name: string; timestamp: string }>(
          'select name, timestamp from kysely_migration order by name',
        );
      } finally {
        await db.close();
      }
    };
    const before = await recorded();
    expect(before.map((m) => m.name)).toContain('029_crm_field_encryption');

    const demo = await startDemo({ dataDir: oldDir, keepDataDir: true });
    try {
      const token = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
      const accounts = await demo.get('/crm/v1/accounts?limit=3', token);
      expect(accounts.status).toBe(200);
      expect(((await accounts.json()) as { records: unknown[] }).records).toHaveLength(3);
    } finally {
      await demo.stop();
    }
    expect(await recorded()).toEqual(before);

    const fresh = await openGatehouseStore(
      loadConfig({ env: {}, overrides: { dataDir: freshDir, ...(await testDatabase(freshDir)) } }),
    );
    await fresh.close();
    expect(await schemaOf(oldDir)).toEqual(await schemaOf(freshDir));
  });
});
