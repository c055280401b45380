import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import { createEmbeddedCrm, seedCrm, type Condition, type CrmConnector, type CrmRecord } from './index.js';
import { testDatabase } from '../../test/support/database.js';

const owners = [
  { email: 'alice@example.com', territory: 'EMEA' as const },
  { email: 'bob@example.com', territory: 'EMEA' as const },
  { email: 'erin@example.com', territory: 'NA' as const },
];
const emea: Condition[] = [{ field: 'territory', op: 'eq', value: 'EMEA' }];
const na: Condition[] = [{ field: 'territory', op: 'eq', value: 'NA' }];
const invalidInput = expect.objectContaining({ code: 'INVALID_INPUT' });

let dir: string;
let store: Store;
let crm: CrmConnector;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-crm-'));
  store = await openGatehouseStore(loadConfig({ overrides: { dataDir: dir, ...(await testDatabase(dir)) } }));
  crm = createEmbeddedCrm(store.db);
});

afterAll(async () => {
  await store.close();
  rmSync(dir, { recursive: true, force: true });
});

/** Every record of an object under `where`, page by page. */
async function all(
  object: Parameters<CrmConnector['query']>[0],
  fields: string[],
  where: Condition[],
  limit = 100,
) {
  const records: CrmRecord[] = [];
  let cursor: string | undefined;
  let pages = 0;
  do {
    const page = await crm.query(object, { fields, where, limit, cursor });
    records.push(...page.records);
    cursor = page.nextCursor;
    pages++;
  } while (cursor);
  return { records, pages };
}

async function firstOf(
  object: Parameters<CrmConnector['query']>[0],
  where: Condition[],
  fields: string[] = [],
) {
  const { records } = await crm.query(object, { fields, where, limit: 1 });
  const record = records[0];
  if (!record) throw new Error(`no ${object} under the condition`);
  return record;
}

describe('reads', () => {
  beforeAll(async () => {
    await seedCrm(store.db, { contacts: 400, seed: 1, owners });
  });

  it('names itself', () => {
    expect(crm.name).toBe('embedded');
  });

  it('get returns exactly the requested fields plus id', async () => {
    const { id } = await firstOf('contact', []);
    const record = await crm.get('contact', String(id), ['first_name', 'email'], []);
    expect(Object.keys(record ?? {}).sort()).toEqual(['email', 'first_name', 'id']);
    expect(record?.id).toBe(id);
  });

  it('get with an empty field list returns only the id', async () => {
    const { id } = await firstOf('account', []);
    expect(await crm.get('account', String(id), [], [])).toEqual({ id });
  });

  it('query returns exactly the requested fields plus id on every record', async () => {
    const page = await crm.query('opportunity', {
      fields: ['amount', 'stage', 'amount'],
      where: [],
      limit: 20,
    });
    expect(page.records).toHaveLength(20);
    for (const record of page.records) expect(Object.keys(record).sort()).toEqual(['amount', 'id', 'stage']);
    expect(typeof page.records[0]?.amount).toBe('number');
  });

  it('get answers undefined for a missing id, and for ids of any shape', async () => {
    for (const id of ['003DOESNOTEXIST', '', 'x'.repeat(100), "' or '1'='1"]) {
      expect(await crm.get('contact', id, ['first_name'], [])).toBeUndefined();
    }
  });

  it('a territory condition hides a record of another territory from get, exactly like a missing one', async () => {
    const naContact = await firstOf('contact', na, ['territory']);
    expect(naContact.territory).toBe('NA');
    expect(await crm.get('contact', String(naContact.id), ['first_name'], na)).toBeDefined();
    expect(await crm.get('contact', String(naContact.id), ['first_name'], emea)).toBeUndefined();
  });

  it('reads started together (one statement on PostgreSQL) each answer their own record under their own filter', async () => {
    const { records } = await crm.query('contact', {
      fields: ['territory', 'last_name'],
      where: [],
      limit: 150,
    });
    const asks = records.flatMap((r) => [
      { id: String(r.id), where: emea, fields: ['last_name'] },
      { id: String(r.id), where: na, fields: ['last_name'] },
      { id: String(r.id), where: emea, fields: ['last_name'] },
      { id: String(r.id), where: [], fields: ['territory'] },
      { id: `${String(r.id)}X`, where: emea, fields: ['last_name'] },
    ]);
    const answers = await Promise.all(asks.map((a) => crm.get('contact', a.id, a.fields, a.where)));
    asks.forEach((ask, i) => {
      const record = records.find((r) => r.id === ask.id);
      const visible = record && ask.where.every((c) => c.op === 'eq' && record.territory === c.value);
      const expected = visible
        ? Object.fromEntries(['id', ...ask.fields].map((f) => [f, record[f]]))
        : undefined;
      expect(answers[i]).toEqual(expected);
    });
    // Every caller gets a copy of its own: changing one answer changes no other.
    const [a, b] = await Promise.all([0, 1].map(() => crm.get('contact', String(records[0]?.id), [], [])));
    expect(a).not.toBe(b);
  });

  it('a territory condition is applied in query: no record of another territory on any page', async () => {
    const { records, pages } = await all('account', ['territory'], emea, 7);
    expect(pages).toBeGreaterThan(1);
    expect(records.length).toBe(await crm.count('account', emea));
    expect(new Set(records.map((r) => r.territory))).toEqual(new Set(['EMEA']));
  });

  it('in-conditions and combined conditions (AND) are pushed into the query', async () => {
    const both = await crm.count('account', [{ field: 'territory', op: 'in', value: ['EMEA', 'NA'] }]);
    expect(both).toBe((await crm.count('account', emea)) + (await crm.count('account', na)));
    const alice = await crm.count('account', [
      ...emea,
      { field: 'owner', op: 'eq', value: 'alice@example.com' },
    ]);
    const bob = await crm.count('account', [...emea, { field: 'owner', op: 'eq', value: 'bob@example.com' }]);
    expect(alice + bob).toBe(await crm.count('account', emea));
    expect(alice).toBeGreaterThan(0);
    expect(await crm.count('account', [{ field: 'territory', op: 'in', value: [] }])).toBe(0);
    expect(
      (
        await crm.query('account', {
          fields: [],
          where: [{ field: 'territory', op: 'in', value: [] }],
          limit: 5,
        })
      ).records,
    ).toEqual([]);
  });

  it('number fields take numeric filter text, and reject anything else as bad input', async () => {
    const { amount } = await firstOf('opportunity', [], ['amount']);
    const matches = await crm.count('opportunity', [{ field: 'amount', op: 'eq', value: String(amount) }]);
    expect(matches).toBeGreaterThan(0);
    await expect(
      crm.count('opportunity', [{ field: 'amount', op: 'eq', value: '1 or 1=1' }]),
    ).rejects.toThrow(invalidInput);
  });

  it('count counts everything, or what the conditions let through', async () => {
    expect(await crm.count('contact')).toBe(400);
    expect(await crm.count('note')).toBe(240);
    const split = (await crm.count('contact', emea)) + (await crm.count('contact', na));
    expect(split + (await crm.count('contact', [{ field: 'territory', op: 'eq', value: 'APAC' }]))).toBe(400);
  });

  it('keyset pagination visits every row exactly once, in id order, for any page size', async () => {
    const total = await crm.count('contact');
    await fc.assert(
      fc.asyncProperty(fc.integer({ min: 1, max: 450 }), fc.boolean(), async (limit, filtered) => {
        const where = filtered ? emea : [];
        const { records, pages } = await all('contact', [], where, limit);
        const ids = records.map((r) => String(r.id));
        expect(new Set(ids).size).toBe(ids.length);
        expect(ids.length).toBe(filtered ? await crm.count('contact', emea) : total);
        expect([...ids].sort()).toEqual(ids);
        expect(pages).toBe(Math.max(1, Math.ceil(ids.length / limit)));
      }),
      { numRuns: 15 },
    );
  });

  it('the last page carries no cursor, and an exactly full last page does not promise another', async () => {
    const total = await crm.count('account');
    const page = await crm.query('account', { fields: [], where: [], limit: total });
    expect(page.records).toHaveLength(total);
    expect(page.nextCursor).toBeUndefined();
  });

  it('a cursor of one list does not page another object', async () => {
    const page = await crm.query('account', { fields: [], where: [], limit: 2 });
    await expect(
      crm.query('contact', { fields: [], where: [], limit: 2, cursor: page.nextCursor }),
    ).rejects.toThrow(invalidInput);
  });

  it('a forged cursor cannot widen the row filter: later pages still apply it', async () => {
    const firstNa = await firstOf('contact', na);
    const { encodeCursor } = await import('./cursor.js');
    const page = await crm.query('contact', {
      fields: ['territory'],
      where: emea,
      limit: 50,
      cursor: encodeCursor('contact', '0'),
    });
    expect(page.records.every((r) => r.territory === 'EMEA')).toBe(true);
    expect(page.records.map((r) => r.id)).not.toContain(firstNa.id);
  });

  it('rejects a limit outside 1..10000 (a caller mistake)', async () => {
    for (const limit of [0, -1, 1.5, Number.NaN, 10_001]) {
      await expect(crm.query('contact', { fields: [], where: [], limit })).rejects.toThrow(TypeError);
    }
  });
});

describe('hostile field names never reach SQL', () => {
  beforeAll(async () => {
    await seedCrm(store.db, { contacts: 50, seed: 2, owners });
  });

  const attacks = [
    'name; drop table crm_accounts',
    'name from crm_accounts; --',
    '"name"',
    'name as x, national_id',
    '*',
    'crm_contacts.national_id',
    '__proto__',
    'constructor',
    'NAME',
    '',
  ];

  it.each(attacks)('rejects %j as a field in get and query', async (field) => {
    const { id } = await firstOf('account', []);
    await expect(crm.get('account', String(id), [field], [])).rejects.toThrow(TypeError);
    await expect(crm.query('account', { fields: ['name', field], where: [], limit: 5 })).rejects.toThrow(
      TypeError,
    );
  });

  it.each(attacks)('rejects %j as a condition field, in reads and writes', async (field) => {
    const where: Condition[] = [{ field, op: 'eq', value: 'x' }];
    const { id } = await firstOf('account', []);
    await expect(crm.query('account', { fields: [], where, limit: 5 })).rejects.toThrow(TypeError);
    await expect(crm.count('account', where)).rejects.toThrow(TypeError);
    await expect(crm.get('account', String(id), [], where)).rejects.toThrow(TypeError);
    await expect(crm.update('account', String(id), { name: 'x' }, where)).rejects.toThrow(TypeError);
    await expect(crm.delete('account', String(id), where)).rejects.toThrow(TypeError);
  });

  it('rejects a field that exists on another object only (national_id on an account)', async () => {
    await expect(crm.query('account', { fields: ['national_id'], where: [], limit: 1 })).rejects.toThrow(
      TypeError,
    );
  });

  it('rejects an unknown operator', async () => {
    const where = [{ field: 'territory', op: 'like', value: '%' }] as unknown as Condition[];
    await expect(crm.count('account', where)).rejects.toThrow(TypeError);
  });

  it('treats an injection attempt in a value as a plain value', async () => {
    const where: Condition[] = [{ field: 'territory', op: 'eq', value: "EMEA' or '1'='1" }];
    expect(await crm.count('account', where)).toBe(0);
  });

  it('the tables are all still there', async () => {
    expect(await crm.count('account')).toBeGreaterThan(0);
  });
});

describe('writes', () => {
  let naAccount: CrmRecord;
  let emeaAccount: CrmRecord;

  beforeEach(async () => {
    await seedCrm(store.db, { contacts: 100, seed: 3, owners });
    naAccount = await firstOf('account', na, ['territory', 'owner']);
    emeaAccount = await firstOf('account', emea, ['territory', 'owner']);
  });

  const newContact = (accountId: unknown) => ({
    first_name: 'Ada',
    last_name: 'Lovelace',
    account_id: String(accountId),
    email: 'ada@example.org',
    date_of_birth: '1990-12-10',
  });

  it('create stores a contact with a random prefixed id, inheriting territory and owner from its account', async () => {
    const created = await crm.create('contact', newContact(emeaAccount.id));
    expect(created.id).toMatch(/^003[0-9A-Za-z]{12}$/);
    expect(created).toMatchObject({ first_name: 'Ada', territory: 'EMEA', owner: emeaAccount.owner });
    const stored = await crm.get(
      'contact',
      String(created.id),
      ['first_name', 'territory', 'owner', 'phone', 'created_at'],
      emea,
    );
    expect(stored).toMatchObject({
      first_name: 'Ada',
      territory: 'EMEA',
      owner: emeaAccount.owner,
      phone: '',
    });
    expect(Date.parse(String(stored?.created_at))).not.toBeNaN();
    expect(await crm.count('contact')).toBe(101);
  });

  it('create of a child under an account of another territory fails like a missing account', async () => {
    const naParent = crm.create('contact', { ...newContact(naAccount.id), territory: 'EMEA' });
    await expect(naParent).rejects.toThrow(invalidInput);
    const missing = crm.create('contact', { ...newContact('0010S00000ZZZZZ'), territory: 'EMEA' });
    await expect(missing).rejects.toThrow(invalidInput);
    const [a, b] = await Promise.allSettled([naParent, missing]);
    expect(a.status === 'rejected' && (a.reason as Error).message).toBe(
      b.status === 'rejected' && (b.reason as Error).message,
    );
    expect(await crm.count('contact')).toBe(100);
  });

  it('create of a note through a contact takes the account, territory and owner of that contact', async () => {
    const contact = await firstOf('contact', na, ['account_id', 'owner']);
    const note = await crm.create('note', {
      body: 'called',
      author: 'erin@example.com',
      contact_id: String(contact.id),
    });
    expect(note).toMatchObject({ account_id: contact.account_id, territory: 'NA', owner: contact.owner });
    await expect(
      crm.create('note', {
        body: 'x',
        author: 'erin@example.com',
        contact_id: String(contact.id),
        account_id: String(emeaAccount.id),
      }),
    ).rejects.toThrow(invalidInput);
    await expect(crm.create('note', { body: 'orphan', author: 'erin@example.com' })).rejects.toThrow(
      invalidInput,
    );
  });

  it('create of an account needs a known territory and an owner', async () => {
    const account = await crm.create('account', {
      name: 'Acme',
      territory: 'APAC',
      owner: 'erin@example.com',
    });
    expect(account.id).toMatch(/^001/);
    await expect(
      crm.create('account', { name: 'Acme', territory: 'Mars', owner: 'erin@example.com' }),
    ).rejects.toThrow(invalidInput);
    await expect(crm.create('account', { name: 'Acme', territory: 'NA' })).rejects.toThrow(invalidInput);
  });

  it.each([
    ['a missing required field', { first_name: 'A' }],
    ['a number where text belongs', { last_name: 42 }],
    ['an impossible date', { date_of_birth: '1990-02-30' }],
    ['text that is too long', { title: 'x'.repeat(256) }],
    ['a control character', { title: 'a\u0000b' }],
    ['an account id of the wrong object', { account_id: '0030S0000000001' }],
    ['an e-mail that is not one', { email: 'not an email' }],
  ])('create rejects %s as bad input, naming the field', async (_name, patch) => {
    const values = { ...newContact(emeaAccount.id), ...patch } as CrmRecord;
    if (_name === 'a missing required field') delete values.last_name;
    await expect(crm.create('contact', values)).rejects.toThrow(invalidInput);
  });

  it('create refuses system fields and unknown fields (no mass assignment)', async () => {
    const extras: CrmRecord[] = [{ id: '0030S0000000001' }, { created_at: '2020-01-01' }, { is_admin: 1 }];
    for (const extra of extras) {
      await expect(crm.create('contact', { ...newContact(emeaAccount.id), ...extra })).rejects.toThrow(
        TypeError,
      );
    }
  });

  it('update changes a visible record and answers with what it wrote', async () => {
    const contact = await firstOf('contact', emea, ['updated_at']);
    const updated = await crm.update(
      'contact',
      String(contact.id),
      { title: 'CFO', phone: '+447700900001' },
      emea,
    );
    expect(updated).toEqual({ id: contact.id, title: 'CFO', phone: '+447700900001' });
    const stored = await crm.get('contact', String(contact.id), ['title', 'updated_at'], []);
    expect(stored?.title).toBe('CFO');
    expect(String(stored?.updated_at) > String(contact.updated_at)).toBe(true);
  });

  it('update of a record hidden by where answers undefined and changes nothing', async () => {
    const contact = await firstOf('contact', na, ['title']);
    expect(await crm.update('contact', String(contact.id), { title: 'Hacked' }, emea)).toBeUndefined();
    expect((await crm.get('contact', String(contact.id), ['title'], []))?.title).toBe(contact.title);
    expect(await crm.update('contact', '003DOESNOTEXIST', { title: 'x' }, [])).toBeUndefined();
  });

  it('update cannot move a record out of the caller row filter', async () => {
    await expect(crm.update('account', String(emeaAccount.id), { territory: 'NA' }, emea)).rejects.toThrow(
      expect.objectContaining({ code: 'POLICY_DENIED' }),
    );
    expect((await crm.get('account', String(emeaAccount.id), ['territory'], []))?.territory).toBe('EMEA');
  });

  it('update cannot re-parent a child under an account the caller cannot see', async () => {
    const contact = await firstOf('contact', emea);
    await expect(
      crm.update('contact', String(contact.id), { account_id: String(naAccount.id) }, emea),
    ).rejects.toThrow(invalidInput);
  });

  it('a child territory follows its account and cannot be set directly', async () => {
    const contact = await firstOf('contact', emea);
    await expect(crm.update('contact', String(contact.id), { territory: 'NA' }, [])).rejects.toThrow(
      invalidInput,
    );
  });

  it('moving an account to another territory (no row filter) moves its contacts, opportunities and notes', async () => {
    const id = String(emeaAccount.id);
    const children = [{ field: 'account_id', op: 'eq', value: id }] as Condition[];
    const before = await crm.count('contact', children);
    expect(before).toBeGreaterThan(0);
    await crm.update('account', id, { territory: 'APAC', owner: 'erin@example.com' }, []);
    for (const object of ['contact', 'opportunity', 'note'] as const) {
      const { records } = await all(object, ['territory', 'owner'], children);
      expect(records.every((r) => r.territory === 'APAC' && r.owner === 'erin@example.com')).toBe(true);
    }
    expect(await crm.count('contact', children)).toBe(before);
  });

  it('delete of a record hidden by where answers false and deletes nothing', async () => {
    const contact = await firstOf('contact', na);
    expect(await crm.delete('contact', String(contact.id), emea)).toBe(false);
    expect(await crm.get('contact', String(contact.id), [], [])).toBeDefined();
    expect(await crm.delete('contact', '003DOESNOTEXIST', [])).toBe(false);
  });

  it('delete of a visible contact removes it and its notes', async () => {
    const note = await firstOf('note', [], ['contact_id']);
    const contactId = String(note.contact_id ?? (await firstOf('contact', [])).id);
    expect(await crm.delete('contact', contactId, [])).toBe(true);
    expect(await crm.get('contact', contactId, [], [])).toBeUndefined();
    expect(await crm.count('note', [{ field: 'contact_id', op: 'eq', value: contactId }])).toBe(0);
  });

  it('delete of an account removes its contacts, opportunities and notes', async () => {
    const id = String(naAccount.id);
    const children = [{ field: 'account_id', op: 'eq', value: id }] as Condition[];
    expect(await crm.delete('account', id, na)).toBe(true);
    for (const object of ['contact', 'opportunity', 'note'] as const)
      expect(await crm.count(object, children)).toBe(0);
  });
});
