import SQLite from 'better-sqlite3';
import { Kysely, SqliteDialect } from 'kysely';
import { describe, expect, it } from 'vitest';
import { defaultScopes } from '../config/defaults.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import { isIdOf, randomId, seededId } from './ids.js';
import { createEmbeddedCrm, crmObjects, objectFromPlural, type CrmObject } from './index.js';
import type { Db } from '../store/index.js';

// describe() reads no table: an empty in-memory database is enough.
const crm = createEmbeddedCrm(
  new Kysely({ dialect: new SqliteDialect({ database: new SQLite(':memory:') }) }) as unknown as Db,
);

describe('metadata', () => {
  it('describes the four objects with their plural names', () => {
    expect(crmObjects).toEqual(['account', 'contact', 'opportunity', 'note']);
    expect(crmObjects.map((o) => crm.describe(o).plural)).toEqual([
      'accounts',
      'contacts',
      'opportunities',
      'notes',
    ]);
    for (const object of crmObjects) expect(objectFromPlural(crm.describe(object).plural)).toBe(object);
  });

  it('maps only the four plurals, not prototype members or singulars', () => {
    for (const plural of ['account', 'constructor', '__proto__', 'toString', 'Contacts', '']) {
      expect(objectFromPlural(plural)).toBeUndefined();
    }
  });

  it('has the contract fields of every object, with id, territory and owner on each', () => {
    const contract: Record<CrmObject, string[]> = {
      account: ['name', 'industry', 'territory', 'owner', 'annual_revenue'],
      contact: [
        'first_name',
        'last_name',
        'title',
        'account_id',
        'email',
        'phone',
        'date_of_birth',
        'national_id',
      ],
      opportunity: ['name', 'account_id', 'stage', 'amount', 'close_date', 'owner'],
      note: ['body', 'author', 'account_id', 'contact_id', 'opportunity_id', 'created_at'],
    };
    for (const object of crmObjects) {
      const names = crm.describe(object).fields.map((f) => f.name);
      expect(names).toEqual(expect.arrayContaining([...contract[object], 'id', 'territory', 'owner']));
      expect(new Set(names).size).toBe(names.length);
    }
  });

  it('covers every field of the configured scope fieldsets', () => {
    for (const scope of Object.values(defaultScopes)) {
      const names = crm.describe(scope.object).fields.map((f) => f.name);
      expect(names).toEqual(expect.arrayContaining([...scope.fields]));
    }
  });

  it('classifies the sensitive fields', () => {
    const classOf = (object: CrmObject, field: string) =>
      crm.describe(object).fields.find((f) => f.name === field)?.dataClass;
    for (const field of ['email', 'phone', 'date_of_birth', 'national_id'])
      expect(classOf('contact', field)).toBe('pii');
    expect(classOf('account', 'annual_revenue')).toBe('financial');
    expect(classOf('opportunity', 'amount')).toBe('financial');
    for (const object of crmObjects) {
      expect(classOf(object, 'territory')).toBe('internal');
      expect(classOf(object, 'owner')).toBe('internal');
    }
  });

  it('types fields for formatting and validation', () => {
    const typeOf = (object: CrmObject, field: string) =>
      crm.describe(object).fields.find((f) => f.name === field)?.type;
    expect(typeOf('contact', 'id')).toBe('id');
    expect(typeOf('contact', 'account_id')).toBe('id');
    expect(typeOf('contact', 'date_of_birth')).toBe('date');
    expect(typeOf('opportunity', 'amount')).toBe('number');
    expect(typeOf('note', 'created_at')).toBe('datetime');
  });

  it('is frozen, so no caller can reclassify a field for everyone', () => {
    const meta = crm.describe('contact');
    expect(Object.isFrozen(meta)).toBe(true);
    expect(Object.isFrozen(meta.fields)).toBe(true);
    expect(Object.isFrozen(meta.fields[0])).toBe(true);
  });

  it('rejects an object that does not exist (a caller mistake)', () => {
    expect(() => crm.describe('lead' as CrmObject)).toThrow(TypeError);
    expect(() => crm.describe('__proto__' as CrmObject)).toThrow(TypeError);
  });
});

describe('ids', () => {
  it('are Salesforce-shaped: object prefix and 15 characters', () => {
    expect(seededId('001', 0)).toBe('0010S0000000000');
    expect(seededId('003', 61)).toBe('0030S000000000z');
    expect(seededId('003', 62)).toBe('0030S0000000010');
    const id = randomId('006');
    expect(id).toMatch(/^006[0-9A-Za-z]{12}$/);
    expect(id.slice(3, 5)).not.toBe('0S');
    expect(isIdOf('006', id)).toBe(true);
    expect(isIdOf('003', id)).toBe(false);
  });

  it('sort in creation order when seeded (binary collation)', () => {
    const ids = [0, 1, 9, 10, 35, 36, 61, 62, 3843, 3844, 1_000_000].map((n) => seededId('003', n));
    expect([...ids].sort()).toEqual(ids);
  });
});

describe('cursor', () => {
  it('round-trips the last id of a page for the same object', () => {
    expect(decodeCursor('contact', encodeCursor('contact', '0030S0000000042'))).toBe('0030S0000000042');
    expect(encodeCursor('contact', '0030S0000000042')).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it.each([
    ['not base64url', 'abc$def'],
    ['empty', ''],
    ['too long', 'A'.repeat(300)],
    ['plain text id', '0030S0000000042'],
    ['another object', encodeCursor('account', '0010S0000000001')],
    ['injected SQL in the id', Buffer.from("c1:contact:x' or '1'='1").toString('base64url')],
    ['base64 with padding', `${encodeCursor('contact', '0030S0000000042')}=`],
  ])('rejects a forged cursor: %s', (_name, cursor) => {
    expect(() => decodeCursor('contact', cursor)).toThrow(expect.objectContaining({ code: 'INVALID_INPUT' }));
  });
});
