import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { demoSeedOwners, loadConfig } from '../src/config/index.js';
import { seedCrm } from '../src/crm/index.js';
import { scanText } from '../src/dlp/index.js';
import { openGatehouseStore } from '../src/database/index.js';
import { gatehouseAsync } from './support/cli.js';
import { dropTestDatabase, onPostgres, openTestSql } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';
import { json, type Page } from './support/http.js';

/**
 * `gatehouse scrub` end to end: a seeded source data dir (SQLite, as a production export would be
 * copied) scrubbed into a fresh staging data dir through the real CLI; then every original value that
 * identifies someone on its own is searched for in the output's bytes (none may be there), formats,
 * links and distributions are compared with the source, and the staging data dir serves the demo.
 */

type Row = Record<string, string | number | null>;

let root: string;
let source: string;
let staging: string;
let again: string;
let original: SQLite.Database;
let demo: Demo | undefined;

const tables = ['crm_accounts', 'crm_contacts', 'crm_opportunities', 'crm_notes'] as const;

async function rowsOf(dataDir: string, table: string): Promise<Row[]> {
  const sql = await openTestSql(dataDir);
  try {
    return await sql.all<Row>(`select * from ${table} order by id`);
  } finally {
    await sql.close();
  }
}

/** What is stored in a data dir: the SQLite file's bytes, or on PostgreSQL every CRM row as text. */
async function outputBytes(dataDir: string): Promise<Buffer> {
  if (!onPostgres) {
    return Buffer.concat(
      ['gatehouse.db', 'gatehouse.db-wal']
        .map((f) => join(dataDir, f))
        .filter((f) => existsSync(f))
        .map((f) => readFileSync(f)),
    );
  }
  const rows = await Promise.all(tables.map((t) => rowsOf(dataDir, t)));
  return Buffer.from(
    rows
      .flat()
      .map((r) => JSON.stringify(r))
      .join('\n'),
    'utf8',
  );
}

const scrub = (to: string, ...extra: string[]) =>
  gatehouseAsync(['scrub', '--from', source, '--to', to, ...extra], { GATEHOUSE_DATA_DIR: to });

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'gatehouse-scrub-'));
  [source, staging, again] = ['source', 'staging', 'again'].map((d) => join(root, d)) as [
    string,
    string,
    string,
  ];
  // The source is always a SQLite data dir: `--from` reads its gatehouse.db.
  const config = loadConfig({ env: {}, overrides: { dataDir: source, demo: true, logLevel: 'silent' } });
  const store = await openGatehouseStore(config);
  try {
    await seedCrm(store.db, { contacts: 400, owners: demoSeedOwners(config) });
  } finally {
    await store.close();
  }
  original = new SQLite(join(source, 'gatehouse.db'), { readonly: true });
}, 120_000);

afterAll(async () => {
  original?.close();
  await demo?.stop();
  if (onPostgres) for (const dir of [staging, again]) await dropTestDatabase(dir);
  if (root) rmSync(root, { recursive: true, force: true });
});

describe('gatehouse scrub --from <data dir> --to <data dir>', () => {
  it('replaces what identifies someone and reports what it replaced, with its own check passing', async () => {
    const result = await scrub(staging, '--json');
    expect(result.code, result.stderr).toBe(0);
    // Progress goes to stderr (a bar on a terminal, the last count otherwise); stdout stays JSON.
    expect(result.stderr).toMatch(/scrubbing: 860\/860/);
    const report = JSON.parse(result.stdout) as {
      tables: Record<
        string,
        { rows: number; columns: Record<string, { treatment: string; replaced: number }> }
      >;
      check: { searched: number; survivors: number };
    };
    expect(report.tables.crm_contacts?.rows).toBe(400);
    expect(report.tables.crm_contacts?.columns).toMatchObject({
      id: { treatment: 'pseudonym', replaced: 400 },
      email: { treatment: 'fake', replaced: 400 },
      national_id: { treatment: 'fake', replaced: 400 },
      date_of_birth: { treatment: 'shifted' },
    });
    expect(report.tables.crm_notes?.columns.body?.treatment).toBe('redacted');
    expect(report.check.survivors).toBe(0);
    expect(report.check.searched).toBeGreaterThan(2000);
  }, 120_000);

  it('leaves none of the input’s sensitive values in the output (every original searched for)', async () => {
    const sensitive = new Set<string>();
    for (const table of tables) {
      for (const row of original.prepare(`select * from ${table}`).all() as Row[]) {
        sensitive.add(String(row.id));
        if (table === 'crm_accounts') sensitive.add(String(row.name));
        if (table === 'crm_contacts') {
          for (const field of ['email', 'phone', 'national_id'] as const) sensitive.add(String(row[field]));
          sensitive.add(`${row.first_name} ${row.last_name}`);
        }
        // Whatever DLP finds in the source's free text (phone numbers pasted into notes).
        if (table === 'crm_notes') {
          const body = String(row.body);
          for (const f of scanText(body)) sensitive.add(body.slice(f.start, f.end));
        }
      }
    }
    const bytes = await outputBytes(staging);
    expect(bytes.length).toBeGreaterThan(10_000);
    const found = [...sensitive].filter((value) => bytes.includes(Buffer.from(value, 'utf8')));
    expect(found).toEqual([]);
  });

  it('keeps formats, links and distributions', async () => {
    const contacts = await rowsOf(staging, 'crm_contacts');
    const before = original.prepare('select * from crm_contacts').all() as Row[];
    expect(contacts).toHaveLength(before.length);
    for (const c of contacts) {
      expect(String(c.id)).toMatch(/^003[0-9A-Za-z]{12}$/);
      expect(String(c.email)).toMatch(/^[a-z0-9.]+@[a-z0-9-]+\.[a-z.]+$/);
      expect(parsePhoneNumberFromString(String(c.phone))?.isPossible()).toBe(true);
    }
    const tally = (values: string[]) => {
      const counts: Record<string, number> = {};
      for (const v of values) counts[v] = (counts[v] ?? 0) + 1;
      return counts;
    };
    // Phone calling codes, the national ids DLP validates (SSN, NINO; a German tax id may also read as a phone), consent and territory.
    const country = (r: Row) => parsePhoneNumberFromString(String(r.phone))?.countryCallingCode ?? '?';
    const idKinds = (r: Row) =>
      scanText(String(r.national_id))
        .map((f) => f.kind)
        .filter((kind) => kind === 'us_ssn' || kind === 'uk_nino')
        .join(',') || 'other';
    for (const measure of [
      country,
      idKinds,
      (r: Row) => String(r.consent),
      (r: Row) => String(r.territory),
    ]) {
      expect([measure.name, tally(contacts.map(measure))]).toEqual([
        measure.name,
        tally(before.map(measure)),
      ]);
    }
    // Every link resolves, and accounts keep their number of contacts.
    const accounts = new Set((await rowsOf(staging, 'crm_accounts')).map((a) => String(a.id)));
    const ids = new Set(contacts.map((c) => String(c.id)));
    for (const c of contacts) expect(accounts.has(String(c.account_id))).toBe(true);
    for (const n of await rowsOf(staging, 'crm_notes')) {
      if (n.contact_id !== null) expect(ids.has(String(n.contact_id))).toBe(true);
    }
    const perAccount = (rows: Row[]) =>
      Object.values(tally(rows.map((r) => String(r.account_id)))).sort((a, b) => a - b);
    expect(perAccount(contacts)).toEqual(perAccount(before));
  });

  it('gives the same pseudonyms on every run (keyed by a secret of the source)', async () => {
    const run = await scrub(again);
    expect(run.code, run.stderr).toBe(0);
    const first = (await rowsOf(staging, 'crm_contacts')).map((c) => [c.id, c.email, c.national_id]);
    const second = (await rowsOf(again, 'crm_contacts')).map((c) => [c.id, c.email, c.national_id]);
    expect(second).toEqual(first);
  }, 120_000);

  it('refuses a staging data dir whose CRM is not empty, in one line', async () => {
    const result = await scrub(staging);
    expect(result.code).not.toBe(0);
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
    expect(result.stderr).toContain('not empty');
  });

  it('gives a staging data dir that Gatehouse serves', async () => {
    demo = await startDemo({ dataDir: staging, keepDataDir: true });
    const token = await demo.accessToken('alice', 'call-notes', 'read:contact.basic read:note.basic');
    const page = await json<Page>(await demo.get('/crm/v1/contacts?limit=5', token));
    expect(page.records).toHaveLength(5);
    const stored = new Set((await rowsOf(staging, 'crm_contacts')).map((c) => String(c.id)));
    for (const record of page.records) expect(stored.has(String(record.id))).toBe(true);
    const notes = await demo.get('/crm/v1/notes?limit=5', token);
    expect(notes.status).toBe(200);
  }, 120_000);
});
