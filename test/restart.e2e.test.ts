import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import SQLite from 'better-sqlite3';
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
      // Both files: gatehouse.db and the audit log's own (attached as `audit` by openTestSql).
      return await db.all(
        `select 'main' as file, type, name, tbl_name, sql from main.sqlite_master where name not like 'sqlite_%'
         union all select 'audit', type, name, tbl_name, sql from audit.sqlite_master
         order by file, name`,
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

  it('starts, runs only the newer migrations, serves the CRM, and has the schema a new database gets', async () => {
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
    // The recorded ones never run again; only migrations added since the fixture was made do.
    const after = await recorded();
    expect(after.slice(0, before.length)).toEqual(before);
    expect(after.slice(before.length).map((m) => m.name)).toEqual([
      '030_policy_decisions_unindexed',
      '031_audit_queue_pending_only',
    ]);

    const fresh = await openGatehouseStore(
      loadConfig({ env: {}, overrides: { dataDir: freshDir, ...(await testDatabase(freshDir)) } }),
    );
    await fresh.close();
    expect(await schemaOf(oldDir)).toEqual(await schemaOf(freshDir));
  });
});

/** The audit tables a data dir's SQLite file holds. */
function auditTablesIn(dataDir: string, file: string): string[] {
  const db = new SQLite(join(dataDir, file), { readonly: true });
  try {
    return db
      .prepare("select name from sqlite_master where type = 'table' and name like 'audit%' order by name")
      .pluck()
      .all() as string[];
  } finally {
    db.close();
  }
}

/** Every row of the log, in order: equal rows are an equal event count and Merkle root. */
function auditRows(dataDir: string): unknown[] {
  const db = new SQLite(join(dataDir, 'audit.db'), { readonly: true });
  try {
    return [
      ...db
        .prepare(
          'select idx, leaf_hash, event, request_id, app_id, created_at from audit_events order by idx',
        )
        .all(),
      ...db.prepare('select size, root_hash, note from audit_checkpoints order by size').all(),
    ];
  } finally {
    db.close();
  }
}

/**
 * Puts a data dir's audit log back where stores kept it before audit.db: in gatehouse.db, by the DDL
 * it was made with. `keepAuditFile`: audit.db stays too, as a move cut short after its copy leaves it.
 */
function auditLogIntoMainFile(dataDir: string, { keepAuditFile = false } = {}): void {
  const db = new SQLite(join(dataDir, 'gatehouse.db'));
  try {
    db.prepare("attach database ? as 'moved'").run(join(dataDir, 'audit.db'));
    const rows = db
      .prepare(
        "select type, name, sql from moved.sqlite_master where sql is not null order by type = 'index', name",
      )
      .all() as Array<{ type: string; name: string; sql: string }>;
    db.transaction(() => {
      for (const row of rows) db.exec(row.sql);
      for (const row of rows.filter((r) => r.type === 'table')) {
        db.exec(`insert into main.${row.name} select * from moved.${row.name}`);
      }
    })();
    db.exec('detach moved');
  } finally {
    db.close();
  }
  if (keepAuditFile) return;
  for (const file of ['audit.db', 'audit.db-wal', 'audit.db-shm'])
    rmSync(join(dataDir, file), { force: true });
}

describe.skipIf(onPostgres)('a SQLite data dir whose audit log is still in gatehouse.db', () => {
  let dir = '';
  let logged: unknown[] = [];
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('moves it to audit.db once: the same rows, count and root; gatehouse.db keeps none; appends go on', async () => {
    const first = await startDemo({ keepDataDir: true });
    dir = first.dataDir;
    const token = await first.accessToken('alice', 'call-notes', 'read:account.basic');
    expect((await first.get('/crm/v1/accounts?limit=3', token)).status).toBe(200);
    await first.stop();
    logged = auditRows(dir);
    const verified = JSON.parse(gatehouse(['audit', 'verify', '--json', '--data-dir', dir]).stdout);
    expect(verified).toMatchObject({ ok: true });
    expect(verified.size).toBeGreaterThan(0);

    auditLogIntoMainFile(dir);
    expect(auditTablesIn(dir, 'gatehouse.db')).toContain('audit_events');
    const moved = gatehouse(['audit', 'verify', '--json', '--data-dir', dir]);
    expect(moved.code, moved.stderr).toBe(0);
    expect(JSON.parse(moved.stdout)).toEqual(verified);
    expect(auditRows(dir)).toEqual(logged);
    expect(auditTablesIn(dir, 'gatehouse.db')).toEqual([]);
    expect(auditTablesIn(dir, 'audit.db')).toEqual([
      'audit_checkpoints',
      'audit_cosignatures',
      'audit_events',
      'audit_nodes',
      'audit_queue',
    ]);

    const again = await startDemo({ dataDir: dir, keepDataDir: true });
    const next = await again.accessToken('alice', 'call-notes', 'read:account.basic');
    expect((await again.get('/crm/v1/accounts?limit=3', next)).status).toBe(200);
    await again.stop();
    const grown = JSON.parse(gatehouse(['audit', 'verify', '--json', '--data-dir', dir]).stdout);
    expect(grown).toMatchObject({ ok: true });
    expect(grown.size).toBeGreaterThan(verified.size);
    logged = auditRows(dir);
  });

  it('a move cut short after its copy (the same log in both files) is finished at the next start', () => {
    auditLogIntoMainFile(dir, { keepAuditFile: true });
    const finished = gatehouse(['audit', 'verify', '--json', '--data-dir', dir]);
    expect(finished.code, finished.stderr).toBe(0);
    expect(auditRows(dir)).toEqual(logged);
    expect(auditTablesIn(dir, 'gatehouse.db')).toEqual([]);
  });

  it('two different logs in the two files are refused in one line, and neither is dropped', () => {
    auditLogIntoMainFile(dir, { keepAuditFile: true });
    const db = new SQLite(join(dir, 'audit.db'));
    db.prepare('delete from audit_events where idx = (select max(idx) from audit_events)').run();
    db.close();
    const refused = gatehouse(['audit', 'verify', '--json', '--data-dir', dir]);
    expect(refused.code).not.toBe(0);
    expect(refused.stderr.trim().split('\n')).toHaveLength(1);
    expect(refused.stderr).toMatch(/gatehouse\.db and .*audit\.db hold an audit log and they differ/);
    expect(auditTablesIn(dir, 'gatehouse.db')).toContain('audit_events');
    expect(auditTablesIn(dir, 'audit.db')).toContain('audit_events');
  });

  it('audit.db lost after the move is refused, never replaced by a new empty log', () => {
    const fresh = mkdtempSync(join(tmpdir(), 'gatehouse-lost-audit-'));
    try {
      expect(gatehouse(['audit', 'verify', '--json', '--data-dir', fresh]).code).toBe(0);
      rmSync(join(fresh, 'audit.db'));
      const refused = gatehouse(['audit', 'verify', '--json', '--data-dir', fresh]);
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/audit log file .*audit\.db is missing or empty.*restore audit\.db/);
    } finally {
      rmSync(fresh, { recursive: true, force: true });
    }
  });
});
