import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultScopes } from '../src/config/index.js';
import { openStore } from '../src/store/index.js';
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
  const store = await openStore(demo.config);
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
});
