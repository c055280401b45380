import { readdirSync, readFileSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { openLocalSecretStore, type SecretStore } from '../secrets/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import { onPostgres, testDatabase } from '../../test/support/database.js';
import {
  createEmbeddedCrm,
  createFieldKeys,
  reencryptFields,
  seedCrm,
  type CrmConnector,
  type FieldKeys,
} from './index.js';
import { sealValue } from './field-crypto.js';

const owners = [
  { email: 'alice@example.com', territory: 'EMEA' as const },
  { email: 'erin@example.com', territory: 'NA' as const },
];
const fieldEncrypted = expect.objectContaining({ code: 'FIELD_ENCRYPTED' });
type Row = Record<string, string | number | null>;

let dir: string;
let store: Store;
let secrets: SecretStore;
let keys: FieldKeys;
let crm: CrmConnector;
let raw: Kysely<Record<string, Row>>;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-fle-'));
  store = await openGatehouseStore(loadConfig({ overrides: { dataDir: dir, ...(await testDatabase(dir)) } }));
  secrets = openLocalSecretStore(dir);
  keys = createFieldKeys(store.db, secrets);
  crm = createEmbeddedCrm(store.db, keys);
  raw = store.db as unknown as Kysely<Record<string, Row>>;
  await seedCrm(store.db, { contacts: 60, owners, fieldKeys: keys });
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

const contacts = async () =>
  (await crm.query('contact', { fields: ['national_id', 'date_of_birth'], where: [], limit: 1000 })).records;
const storedContacts = () =>
  raw
    .selectFrom('crm_contacts')
    .select(['id', 'national_id', 'date_of_birth', 'national_id_bidx'])
    .orderBy('id')
    .execute();

/** The bytes of the SQLite database and its write-ahead log (PostgreSQL keeps its files elsewhere). */
function storeBytes(): Buffer {
  return Buffer.concat(
    readdirSync(dir)
      .filter((f) => f.startsWith('gatehouse.db'))
      .map((f) => readFileSync(join(dir, f))),
  );
}

describe('field-level encryption in the embedded CRM', () => {
  it('seeds sealed values and reads them back plain through the connector', async () => {
    const read = await contacts();
    const stored = await storedContacts();
    expect(read).toHaveLength(60);
    for (const [i, row] of stored.entries()) {
      expect(String(row.national_id)).toMatch(/^fle1\.1\./);
      expect(String(row.date_of_birth)).toMatch(/^fle1\.1\./);
      expect(row.national_id_bidx).toEqual(expect.any(String));
      expect(read[i]?.date_of_birth).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(String(read[i]?.national_id)).not.toMatch(/^fle1/);
    }
    if (!onPostgres) {
      const bytes = storeBytes();
      for (const record of read.slice(0, 20)) {
        expect(bytes.includes(Buffer.from(String(record.national_id)))).toBe(false);
      }
    }
  });

  it('a ciphertext copied onto another record does not open (bound to record and field)', async () => {
    const [a, b] = await storedContacts();
    await raw
      .updateTable('crm_contacts')
      .set({ national_id: a!.national_id })
      .where('id', '=', String(b!.id))
      .execute();
    try {
      await expect(crm.get('contact', String(b!.id), ['national_id'], [])).rejects.toThrow();
      await raw
        .updateTable('crm_contacts')
        .set({ date_of_birth: a!.national_id })
        .where('id', '=', String(a!.id))
        .execute();
      await expect(crm.get('contact', String(a!.id), ['date_of_birth'], [])).rejects.toThrow();
    } finally {
      await raw
        .updateTable('crm_contacts')
        .set({ national_id: b!.national_id })
        .where('id', '=', String(b!.id))
        .execute();
      await raw
        .updateTable('crm_contacts')
        .set({ date_of_birth: a!.date_of_birth })
        .where('id', '=', String(a!.id))
        .execute();
    }
  });

  it('finds records by equality through the blind index (eq, ne, in, and row conditions)', async () => {
    const [first, second] = await contacts();
    const nid = String(first!.national_id);
    const eq = await crm.query('contact', {
      fields: ['national_id'],
      where: [],
      filter: { kind: 'compare', field: 'national_id', op: 'eq', value: nid },
      limit: 10,
    });
    expect(eq.records).toEqual([{ id: first!.id, national_id: nid }]);
    const within = await crm.query('contact', {
      fields: [],
      where: [
        {
          field: 'date_of_birth',
          op: 'in',
          value: [String(first!.date_of_birth), String(second!.date_of_birth)],
        },
      ],
      limit: 100,
    });
    expect(within.records.map((r) => r.id)).toEqual(expect.arrayContaining([first!.id, second!.id]));
    expect(
      await crm.count('contact', [], { kind: 'compare', field: 'national_id', op: 'ne', value: nid }),
    ).toBe(59);
    expect(
      await crm.count('contact', [], {
        kind: 'in',
        field: 'national_id',
        values: [nid, String(second!.national_id), 'no-such-id'],
      }),
    ).toBe(2);
  });

  it('refuses range comparisons, grouping and min/max on encrypted fields (they would reveal order)', async () => {
    for (const op of ['gt', 'ge', 'lt', 'le'] as const) {
      await expect(
        crm.query('contact', {
          fields: [],
          where: [],
          filter: { kind: 'compare', field: 'date_of_birth', op, value: '1980-01-01' },
          limit: 10,
        }),
      ).rejects.toEqual(fieldEncrypted);
    }
    await expect(
      crm.count('contact', [], {
        kind: 'not',
        item: { kind: 'compare', field: 'national_id', op: 'gt', value: 'A' },
      }),
    ).rejects.toEqual(fieldEncrypted);
    await expect(
      crm.aggregate('contact', {
        groupBy: 'date_of_birth',
        bucket: 'month',
        metrics: [{ fn: 'count' }],
        where: [],
        limit: 10,
      }),
    ).rejects.toEqual(fieldEncrypted);
    await expect(
      crm.aggregate('contact', { metrics: [{ fn: 'min', field: 'date_of_birth' }], where: [], limit: 10 }),
    ).rejects.toEqual(fieldEncrypted);
  });

  it('writes seal what they store and answer plain', async () => {
    const [account] = (await crm.query('account', { fields: [], where: [], limit: 1 })).records;
    const created = await crm.create('contact', {
      first_name: 'Ada',
      last_name: 'Lovelace',
      account_id: String(account!.id),
      national_id: 'AB123456C',
      date_of_birth: '1815-12-10',
    });
    expect(created).toMatchObject({ national_id: 'AB123456C', date_of_birth: '1815-12-10' });
    await crm.update('contact', String(created.id), { national_id: 'ZX987654A' }, []);
    const [stored] = await raw
      .selectFrom('crm_contacts')
      .select(['national_id', 'date_of_birth'])
      .where('id', '=', String(created.id))
      .execute();
    expect(JSON.stringify(stored)).not.toMatch(/ZX987654A|AB123456C|1815-12-10/);
    expect(await crm.get('contact', String(created.id), ['national_id', 'date_of_birth'], [])).toEqual({
      id: created.id,
      national_id: 'ZX987654A',
      date_of_birth: '1815-12-10',
    });
    await crm.delete('contact', String(created.id), []);
  });

  it('rotates a key: reads and lookups work under both versions while rows move; the old key is retired after', async () => {
    const before = await contacts();
    const v2 = await keys.rotate('contact', 'national_id');
    expect(v2).toBe(2);
    // Stopped after the first batch, as a crash would stop it.
    await expect(
      reencryptFields(store.db, keys, {
        only: { object: 'contact', field: 'national_id' },
        batchSize: 25,
        onProgress: (p) => {
          if (p.done >= 25) throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');
    const versions = new Set((await storedContacts()).map((r) => String(r.national_id).split('.')[1]));
    expect(versions).toEqual(new Set(['1', '2']));
    expect(await contacts()).toEqual(before);
    for (const record of [before[0], before[59]]) {
      expect(
        await crm.count('contact', [], {
          kind: 'compare',
          field: 'national_id',
          op: 'eq',
          value: String(record!.national_id),
        }),
      ).toBe(1);
    }

    const progress: number[] = [];
    const [report] = await reencryptFields(store.db, keys, {
      only: { object: 'contact', field: 'national_id' },
      batchSize: 25,
      onProgress: (p) => progress.push(p.done),
    });
    expect(report).toMatchObject({ version: 2, reencrypted: 35, sealed: 0, retired: [1] });
    expect(progress).toEqual([25, 35]);
    expect((await storedContacts()).every((r) => String(r.national_id).startsWith('fle1.2.'))).toBe(true);
    expect(await contacts()).toEqual(before);
    expect(await keys.versions('contact', 'national_id')).toMatchObject([
      { version: 1, state: 'retired' },
      { version: 2, state: 'active' },
    ]);
    // Retired, its key kept for the grace: a write that read v1 before the rotation and commits now
    // stays readable, and the next run moves it before the key goes.
    expect(await secrets.get('crm/field-keys/contact.national_id/v1')).toBeDefined();
    const late = before[3]!;
    const v1 = await keys.key('contact', 'national_id', 1);
    const at = { object: 'contact', id: String(late.id), field: 'national_id' };
    await raw
      .updateTable('crm_contacts')
      .set({ national_id: sealValue(v1, 1, at, String(late.national_id)) })
      .where('id', '=', String(late.id))
      .execute();
    expect(await contacts()).toEqual(before);
    const kept = await reencryptFields(store.db, keys, { only: { object: 'contact', field: 'national_id' } });
    expect(kept[0]).toMatchObject({ reencrypted: 1, destroyed: [] });
    const [gone] = await reencryptFields(store.db, keys, {
      only: { object: 'contact', field: 'national_id' },
      destroyAfterMs: 0,
    });
    expect(gone).toMatchObject({ reencrypted: 0, destroyed: [1] });
    expect(await keys.versions('contact', 'national_id')).toMatchObject([
      { version: 1, state: 'destroyed' },
      { version: 2, state: 'active' },
    ]);
    expect(await secrets.get('crm/field-keys/contact.national_id/v1')).toBeUndefined();
    expect(await contacts()).toEqual(before);
  });

  it('encrypts plain values of an older database in place, resumably, and leaves no plain copy in the file', async () => {
    const before = await contacts();
    // The database as it was before field encryption: plain values, no blind index.
    for (const record of before) {
      await raw
        .updateTable('crm_contacts')
        .set({
          national_id: record.national_id,
          date_of_birth: record.date_of_birth,
          national_id_bidx: null,
          date_of_birth_bidx: null,
        })
        .where('id', '=', String(record.id))
        .execute();
    }
    expect(await contacts()).toEqual(before);
    await expect(
      reencryptFields(store.db, keys, {
        batchSize: 20,
        onProgress: (p) => {
          if (p.field === 'date_of_birth' && p.done >= 20) throw new Error('interrupted');
        },
      }),
    ).rejects.toThrow('interrupted');
    expect(await contacts()).toEqual(before);

    const reports = await reencryptFields(store.db, keys, { batchSize: 20 });
    // date_of_birth comes first and stopped after its first batch; national_id had not begun.
    expect(reports).toMatchObject([
      { object: 'contact', field: 'date_of_birth', sealed: 40 },
      { object: 'contact', field: 'national_id', sealed: 60 },
    ]);
    expect(await contacts()).toEqual(before);
    const stored = await storedContacts();
    expect(
      stored.every(
        (r) => String(r.national_id).startsWith('fle1.') && String(r.date_of_birth).startsWith('fle1.'),
      ),
    ).toBe(true);
    expect(
      await crm.count('contact', [], {
        kind: 'compare',
        field: 'national_id',
        op: 'eq',
        value: String(before[7]!.national_id),
      }),
    ).toBe(1);
    if (!onPostgres) {
      const bytes = storeBytes();
      for (const record of before) {
        expect(bytes.includes(Buffer.from(String(record.national_id)))).toBe(false);
      }
    }
  });
});
