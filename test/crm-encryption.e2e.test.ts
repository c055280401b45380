import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultScopes } from '../src/config/index.js';
import { openGatehouseStore } from '../src/database/index.js';
import { gatehouseAsync } from './support/cli.js';
import { onPostgres } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';
import { expectProblem, json, type Page } from './support/http.js';

/**
 * Field-level encryption at rest, from the outside: what the gateway serves is plain, what the store
 * and the exports hold is not; equality filters work, anything revealing order is refused.
 */

type Row = Record<string, string | number | null>;
const pii = 'read:contact.basic read:contact.pii write:contact.pii read:contact.aggregate';
let demo: Demo;
let bob: string;

/** Every byte of the SQLite database and its write-ahead log. */
function databaseBytes(dataDir: string): Buffer {
  return Buffer.concat(
    readdirSync(dataDir)
      .filter((f) => f.startsWith('gatehouse.db'))
      .map((f) => readFileSync(join(dataDir, f))),
  );
}

/** An approved app whose plan holds the contact pii scopes, straight in the catalog. */
async function insertPiiApp(): Promise<void> {
  const store = await openGatehouseStore(demo.config);
  try {
    const at = new Date().toISOString();
    await store.db
      .insertInto('apps')
      .values({
        id: 'kyc-desk',
        client_id: 'kyc-desk',
        name: 'KYC desk',
        owner: 'bob@example.com',
        status: 'approved',
        scopes: JSON.stringify(pii.split(' ')),
        manifest: JSON.stringify({ name: 'kyc-desk', consent_purpose: 'sales_outreach' }),
        created_at: at,
        updated_at: at,
      })
      .execute();
  } finally {
    await store.close();
  }
}

beforeAll(async () => {
  demo = await startDemo({
    config: {
      scopes: {
        ...defaultScopes,
        'write:contact.pii': { object: 'contact', fields: ['national_id', 'date_of_birth'] },
        'read:contact.aggregate': { object: 'contact', fields: ['date_of_birth'] },
      },
      'roles.sales_manager.scopes': [...pii.split(' '), 'read:account.basic', 'read:note.basic'],
      'roles.sales_manager.masks': {},
    },
  });
  await insertPiiApp();
  bob = await demo.accessToken('bob', 'kyc-desk', pii);
});

afterAll(async () => {
  await demo?.stop();
});

describe('field-level encryption at rest through the gateway', () => {
  it('serves plain values, writes sealed ones, and no plain value is in the database file or the audit export', async () => {
    const page = await json<Page>(
      await demo.get('/crm/v1/contacts?limit=50&fields=national_id,date_of_birth', bob),
    );
    expect(page.records).toHaveLength(50);
    const target = page.records[0] as Row;
    const etag = (await demo.get(`/crm/v1/contacts/${target.id}?fields=national_id`, bob)).headers.get(
      'etag',
    );
    const patched = await demo.send('PATCH', `/crm/v1/contacts/${target.id}`, bob, {
      json: { national_id: 'QQ123456C', date_of_birth: '1971-02-03' },
      headers: { 'if-match': String(etag) },
    });
    expect(patched.status).toBe(200);
    const read = await json<Row>(
      await demo.get(`/crm/v1/contacts/${target.id}?fields=national_id,date_of_birth`, bob),
    );
    expect(read).toMatchObject({ national_id: 'QQ123456C', date_of_birth: '1971-02-03' });

    const out = join(demo.dataDir, 'audit-export.jsonl');
    const exported = await gatehouseAsync(['audit', 'export', '--out', out, '--data-dir', demo.dataDir]);
    expect(exported.code).toBe(0);
    const searched = [readFileSync(out), ...(onPostgres ? [] : [databaseBytes(demo.dataDir)])];
    const plain = ['QQ123456C', ...page.records.slice(1).map((r) => String(r.national_id))];
    for (const bytes of searched) {
      for (const value of plain) expect(bytes.includes(Buffer.from(value))).toBe(false);
    }
  });

  it('an equality filter on an encrypted field finds the record through the blind index', async () => {
    const [first] = (
      await json<Page>(await demo.get('/crm/v1/contacts?limit=1&fields=national_id,date_of_birth', bob))
    ).records as Row[];
    const byId = await json<Page>(
      await demo.get(
        `/crm/v1/contacts?fields=national_id&filter=${encodeURIComponent(`national_id eq '${first!.national_id}'`)}`,
        bob,
      ),
    );
    expect(byId.records.map((r) => r.id)).toEqual([first!.id]);
    const byBirth = await json<Page>(
      await demo.get(
        `/crm/v1/contacts?fields=date_of_birth&filter=${encodeURIComponent(`date_of_birth eq '${first!.date_of_birth}'`)}`,
        bob,
      ),
    );
    expect(byBirth.records.map((r) => r.id)).toContain(first!.id);
  });

  it('a range filter on an encrypted field is refused with FIELD_ENCRYPTED (ciphertext has no order)', async () => {
    const problem = await expectProblem(
      await demo.get(
        `/crm/v1/contacts?fields=date_of_birth&filter=${encodeURIComponent("date_of_birth lt '1980-01-01'")}`,
        bob,
      ),
      422,
      'FIELD_ENCRYPTED',
    );
    expect(problem.field).toBe('date_of_birth');
  });

  it('grouping by an encrypted field, or its min/max, is refused with FIELD_ENCRYPTED (they would reveal order)', async () => {
    const r = await demo.get('/crm/v1/contacts/aggregate?group_by=date_of_birth:month', bob);
    await expectProblem(r, 422, 'FIELD_ENCRYPTED');
    await expectProblem(
      await demo.get('/crm/v1/contacts/aggregate?metric=min(date_of_birth)', bob),
      422,
      'FIELD_ENCRYPTED',
    );
  });

  it('gatehouse crm rotate-field-key re-encrypts under a new key while the server serves, then retires the old key', async () => {
    const before = (await json<Page>(await demo.get('/crm/v1/contacts?limit=20&fields=national_id', bob)))
      .records;
    const rotated = await gatehouseAsync([
      'crm',
      'rotate-field-key',
      'contact.national_id',
      '--json',
      '--data-dir',
      demo.dataDir,
    ]);
    expect(rotated.code, rotated.stderr).toBe(0);
    const result = JSON.parse(rotated.stdout) as {
      rotated: number;
      fields: { retired: number[]; versions: unknown[] }[];
    };
    expect(result.rotated).toBe(2);
    expect(result.fields[0]).toMatchObject({
      object: 'contact',
      field: 'national_id',
      version: 2,
      retired: [1],
      versions: [
        { version: 1, state: 'retired' },
        { version: 2, state: 'active' },
      ],
    });
    const after = (await json<Page>(await demo.get('/crm/v1/contacts?limit=20&fields=national_id', bob)))
      .records;
    expect(after).toEqual(before);
    const found = await json<Page>(
      await demo.get(
        `/crm/v1/contacts?fields=national_id&filter=${encodeURIComponent(`national_id eq '${before[3]!.national_id}'`)}`,
        bob,
      ),
    );
    expect(found.records.map((r) => r.id)).toEqual([before[3]!.id]);
    const bad = await gatehouseAsync([
      'crm',
      'rotate-field-key',
      'contact.email',
      '--data-dir',
      demo.dataDir,
    ]);
    expect(bad.code).not.toBe(0);
    expect(bad.stderr).toMatch(/contact\.email is not an encrypted field/);
  });
});

describe('a database from before field encryption', () => {
  it('is encrypted in place at start, and serves the same values', async () => {
    const first = await startDemo({ keepDataDir: true });
    const dataDir = first.dataDir;
    let second: Demo | undefined;
    try {
      const store = await openGatehouseStore(first.config);
      const { createEmbeddedCrm, createFieldKeys } = await import('../src/crm/index.js');
      const crm = createEmbeddedCrm(store.db, createFieldKeys(store.db, first.secrets));
      const { records } = await crm.query('contact', {
        fields: ['national_id', 'date_of_birth'],
        where: [],
        limit: 50,
      });
      await first.stop();
      // What an older Gatehouse stored: plain values, no blind index.
      const raw = store.db as unknown as import('kysely').Kysely<Record<string, Row>>;
      for (const record of records) {
        await raw
          .updateTable('crm_contacts')
          .set({
            national_id: record.national_id!,
            date_of_birth: record.date_of_birth!,
            national_id_bidx: null,
            date_of_birth_bidx: null,
          })
          .where('id', '=', String(record.id))
          .execute();
      }
      await store.close();

      second = await startDemo({ dataDir, config: { 'roles.sales_manager.masks': {} } });
      const reopened = await openGatehouseStore(second.config);
      try {
        const stored = await (reopened.db as unknown as import('kysely').Kysely<Record<string, Row>>)
          .selectFrom('crm_contacts')
          .select(['id', 'national_id', 'date_of_birth', 'national_id_bidx'])
          .execute();
        expect(
          stored.every((r) => String(r.national_id).startsWith('fle1.') && r.national_id_bidx !== null),
        ).toBe(true);
      } finally {
        await reopened.close();
      }
      if (!onPostgres) {
        const bytes = databaseBytes(dataDir);
        for (const record of records)
          expect(bytes.includes(Buffer.from(String(record.national_id)))).toBe(false);
      }
    } finally {
      await second?.stop();
    }
  });
});
