import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../config/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import {
  createEmbeddedCrm,
  isCrmEmpty,
  seedCrm,
  type CrmObject,
  type CrmRecord,
  type SeedOptions,
} from './index.js';
import { testDatabase } from '../../test/support/database.js';

const owners: SeedOptions['owners'] = [
  { email: 'alice@example.com', territory: 'EMEA' },
  { email: 'bob@example.com', territory: 'EMEA' },
  { email: 'erin@example.com', territory: 'NA' },
];

const opened: { store: Store; dir: string }[] = [];
async function freshStore(): Promise<Store> {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-seed-'));
  const store = await openGatehouseStore(
    loadConfig({ overrides: { dataDir: dir, ...(await testDatabase(dir)) } }),
  );
  opened.push({ store, dir });
  return store;
}
afterAll(async () => {
  for (const { store, dir } of opened) {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});

async function everything(store: Store, object: CrmObject): Promise<CrmRecord[]> {
  const crm = createEmbeddedCrm(store.db);
  const fields = crm.describe(object).fields.map((f) => f.name);
  const records: CrmRecord[] = [];
  let cursor: string | undefined;
  do {
    const page = await crm.query(object, { fields, where: [], limit: 1000, cursor });
    records.push(...page.records);
    cursor = page.nextCursor;
  } while (cursor);
  return records;
}

describe('seedCrm', () => {
  let store: Store;
  const progress: [number, number][] = [];
  let result: Awaited<ReturnType<typeof seedCrm>>;
  const data = {} as Record<CrmObject, CrmRecord[]>;

  beforeAll(async () => {
    store = await freshStore();
    expect(await isCrmEmpty(store.db)).toBe(true);
    result = await seedCrm(store.db, { owners, onProgress: (done, total) => progress.push([done, total]) });
    for (const object of ['account', 'contact', 'opportunity', 'note'] as const)
      data[object] = await everything(store, object);
  });

  it('fills the demo default: 300 accounts, 2000 contacts, 800 opportunities, 1200 notes', () => {
    expect(result).toMatchObject({ accounts: 300, contacts: 2000, opportunities: 800, notes: 1200 });
    expect(result.seconds).toBeGreaterThan(0);
    expect(data.account).toHaveLength(300);
    expect(data.contact).toHaveLength(2000);
    expect(data.opportunity).toHaveLength(800);
    expect(data.note).toHaveLength(1200);
  });

  it('reports progress from 0 to the total, never going back', () => {
    expect(progress[0]).toEqual([0, 4300]);
    expect(progress.at(-1)).toEqual([4300, 4300]);
    for (let i = 1; i < progress.length; i++)
      expect(progress[i]![0]).toBeGreaterThanOrEqual(progress[i - 1]![0]);
  });

  it('makes the CRM non-empty', async () => {
    expect(await isCrmEmpty(store.db)).toBe(false);
  });

  it('uses Salesforce-like ids with the object prefix', () => {
    const prefixes: Record<CrmObject, string> = {
      account: '001',
      contact: '003',
      opportunity: '006',
      note: '002',
    };
    for (const [object, prefix] of Object.entries(prefixes)) {
      for (const record of data[object as CrmObject])
        expect(record.id).toMatch(new RegExp(`^${prefix}[0-9A-Za-z]{12}$`));
    }
  });

  it('spreads accounts over EMEA, NA and APAC, owned by the owners of their territory (APAC, with none, by anyone)', () => {
    const byTerritory = groupBy(data.account, (a) => String(a.territory));
    expect([...byTerritory.keys()].sort()).toEqual(['APAC', 'EMEA', 'NA']);
    expect(new Set(byTerritory.get('EMEA')!.map((a) => a.owner))).toEqual(
      new Set(['alice@example.com', 'bob@example.com']),
    );
    expect(new Set(byTerritory.get('NA')!.map((a) => a.owner))).toEqual(new Set(['erin@example.com']));
    expect(new Set(byTerritory.get('APAC')!.map((a) => a.owner))).toEqual(
      new Set(['alice@example.com', 'bob@example.com', 'erin@example.com']),
    );
  });

  it('gives every child the territory and owner of its account, and notes parents of one account', () => {
    const accounts = new Map(data.account.map((a) => [a.id, a]));
    const contacts = new Map(data.contact.map((c) => [c.id, c]));
    const opportunities = new Map(data.opportunity.map((o) => [o.id, o]));
    for (const child of [...data.contact, ...data.opportunity, ...data.note]) {
      const account = accounts.get(child.account_id!);
      expect(account).toBeDefined();
      expect([child.territory, child.owner]).toEqual([account!.territory, account!.owner]);
    }
    for (const note of data.note) {
      if (note.contact_id) expect(contacts.get(note.contact_id)?.account_id).toBe(note.account_id);
      if (note.opportunity_id)
        expect(opportunities.get(note.opportunity_id)?.account_id).toBe(note.account_id);
    }
    expect(data.note.some((n) => n.contact_id)).toBe(true);
    expect(data.note.some((n) => n.opportunity_id)).toBe(true);
    expect(data.note.some((n) => !n.contact_id && !n.opportunity_id)).toBe(true);
  });

  it('gives contacts E.164 phones of their territory', () => {
    const codes: Record<string, RegExp> = {
      EMEA: /^\+(44|49|33)/,
      NA: /^\+1[2-9]\d{2}55501\d{2}$/,
      APAC: /^\+(61|65)/,
    };
    for (const contact of data.contact) {
      expect(contact.phone).toMatch(/^\+[1-9]\d{7,14}$/);
      expect(contact.phone).toMatch(codes[String(contact.territory)]!);
    }
    const countries = new Set(data.contact.map((c) => countryOf(c)));
    expect(countries).toEqual(new Set(['GB', 'DE', 'FR', 'US', 'CA', 'AU', 'SG']));
  });

  it('gives contacts national ids valid for their country, with check digits that verify', () => {
    for (const contact of data.contact) {
      const country = countryOf(contact);
      const valid = nationalIdValidators[country](String(contact.national_id), String(contact.date_of_birth));
      expect(valid, `${country} ${contact.national_id}`).toBe(true);
    }
  });

  it('gives adults plausible birth dates', () => {
    for (const contact of data.contact) {
      const dob = String(contact.date_of_birth);
      expect(new Date(`${dob}T00:00:00Z`).toISOString().slice(0, 10)).toBe(dob);
      const age = 2025.5 - Number(dob.slice(0, 4));
      expect(age).toBeGreaterThanOrEqual(21);
      expect(age).toBeLessThanOrEqual(71);
    }
  });

  it('gives each contact a unique e-mail at the domain of its account', () => {
    const byAccount = groupBy(data.contact, (c) => String(c.account_id));
    for (const contacts of byAccount.values()) {
      const domains = new Set(contacts.map((c) => String(c.email).split('@')[1]));
      expect(domains.size).toBe(1);
      expect(new Set(contacts.map((c) => c.email)).size).toBe(contacts.length);
    }
    for (const contact of data.contact)
      expect(contact.email).toMatch(/^[a-z0-9]+\.[a-z0-9]+@[a-z0-9-]+(\.[a-z]+)+$/);
  });

  it('writes realistic accounts and opportunities', () => {
    for (const account of data.account) {
      expect(account.annual_revenue).toBeGreaterThan(100_000);
      expect(String(account.name).length).toBeGreaterThan(1);
      expect(String(account.industry).length).toBeGreaterThan(1);
    }
    const stages = new Set(data.opportunity.map((o) => o.stage));
    expect(stages).toContain('Closed Won');
    expect(stages).toContain('Prospecting');
    for (const opportunity of data.opportunity) {
      expect(opportunity.amount).toBeGreaterThanOrEqual(5_000);
      expect(opportunity.close_date).toMatch(/^\d{4}-\d{2}-\d{2}$/);
    }
  });

  it('writes timestamps in canonical ISO 8601, creation before modification', () => {
    for (const record of [...data.account, ...data.contact, ...data.opportunity, ...data.note]) {
      const created = String(record.created_at);
      expect(new Date(created).toISOString()).toBe(created);
      expect(new Date(String(record.updated_at)).toISOString()).toBe(record.updated_at);
      expect(created <= String(record.updated_at)).toBe(true);
    }
  });

  it('replaces existing data when run again, created records included', async () => {
    const crm = createEmbeddedCrm(store.db);
    const extra = await crm.create('account', { name: 'Extra', territory: 'NA', owner: 'erin@example.com' });
    await seedCrm(store.db, { owners, contacts: 100 });
    expect(await crm.count('contact')).toBe(100);
    expect(await crm.get('account', String(extra.id), [], [])).toBeUndefined();
  });
});

describe('seed determinism', () => {
  it('the same seed gives the same ids and values; another seed does not', async () => {
    const [a, b, c] = [await freshStore(), await freshStore(), await freshStore()];
    await seedCrm(a.db, { owners, contacts: 300, seed: 7 });
    await seedCrm(b.db, { owners, contacts: 300, seed: 7 });
    await seedCrm(c.db, { owners, contacts: 300, seed: 8 });
    for (const object of ['account', 'contact', 'opportunity', 'note'] as const) {
      const [x, y, z] = [
        await everything(a, object),
        await everything(b, object),
        await everything(c, object),
      ];
      expect(y).toEqual(x);
      expect(z.slice(0, 5)).not.toEqual(x.slice(0, 5));
    }
  });
});

describe('seed options', () => {
  it('gives every account to the only owner there is', async () => {
    const store = await freshStore();
    await seedCrm(store.db, { owners: [{ email: 'erin@example.com', territory: 'NA' }], contacts: 40 });
    const accounts = await everything(store, 'account');
    expect(new Set(accounts.map((a) => a.owner))).toEqual(new Set(['erin@example.com']));
    expect(new Set(accounts.map((a) => a.territory)).size).toBeGreaterThan(1);
  });

  it('refuses options that are a caller mistake', async () => {
    const store = await freshStore();
    for (const bad of [
      { owners, contacts: 0 },
      { owners, contacts: 1.5 },
      { owners, contacts: 1e9 },
      { owners, seed: -1 },
      { owners: [] },
      { owners: [{ email: 'x@example.com', territory: 'LATAM' }] },
    ]) {
      await expect(seedCrm(store.db, bad as SeedOptions)).rejects.toThrow(TypeError);
    }
    expect(await isCrmEmpty(store.db)).toBe(true);
  });

  it('handles the smallest data set', async () => {
    const store = await freshStore();
    expect(await seedCrm(store.db, { owners, contacts: 1 })).toMatchObject({
      accounts: 1,
      contacts: 1,
      opportunities: 0,
      notes: 1,
    });
  });
});

/** Map.groupBy arrived in Node 21; Gatehouse runs on 20. */
function groupBy<T>(items: readonly T[], key: (item: T) => string): Map<string, T[]> {
  const groups = new Map<string, T[]>();
  for (const item of items) groups.set(key(item), [...(groups.get(key(item)) ?? []), item]);
  return groups;
}

type Country = 'GB' | 'DE' | 'FR' | 'US' | 'CA' | 'AU' | 'SG';

function countryOf(contact: CrmRecord): Country {
  const phone = String(contact.phone);
  if (phone.startsWith('+44')) return 'GB';
  if (phone.startsWith('+49')) return 'DE';
  if (phone.startsWith('+33')) return 'FR';
  if (phone.startsWith('+61')) return 'AU';
  if (phone.startsWith('+65')) return 'SG';
  return String(contact.national_id).includes('-') ? 'US' : 'CA';
}

// Independent validators (not the generator's code), written from each scheme's published rules.
const nationalIdValidators: Record<Country, (id: string, dob: string) => boolean> = {
  US: (id) => {
    const m = /^(\d{3})-(\d{2})-(\d{4})$/.exec(id);
    if (!m) return false;
    const area = Number(m[1]);
    return area !== 0 && area !== 666 && area < 900 && m[2] !== '00' && m[3] !== '0000';
  },
  CA: (id) => /^[1-79]\d{2} \d{3} \d{3}$/.test(id) && luhn(id.replaceAll(' ', '')),
  GB: (id) => /^(?!BG|GB|KN|NK|NT|TN|ZZ)[A-CEGHJ-PR-TW-Z][A-CEGHJ-NPR-TW-Z]\d{6}[A-D]$/.test(id),
  DE: (id) => {
    if (!/^[1-9]\d{10}$/.test(id)) return false;
    const counts = new Map<string, number>();
    for (const d of id.slice(0, 10)) counts.set(d, (counts.get(d) ?? 0) + 1);
    if (![...counts.values()].some((n) => n === 2 || n === 3)) return false;
    let product = 10;
    for (const d of id.slice(0, 10)) {
      let sum = (Number(d) + product) % 10;
      if (sum === 0) sum = 10;
      product = (sum * 2) % 11;
    }
    return (11 - product) % 10 === Number(id[10]);
  },
  FR: (id, dob) =>
    /^[12]\d{14}$/.test(id) &&
    id.slice(1, 3) === dob.slice(2, 4) &&
    id.slice(3, 5) === dob.slice(5, 7) &&
    97n - (BigInt(id.slice(0, 13)) % 97n) === BigInt(id.slice(13)),
  AU: (id) => {
    if (!/^\d{3} \d{3} \d{3}$/.test(id)) return false;
    const weights = [1, 4, 3, 7, 5, 8, 6, 9, 10];
    const digits = id.replaceAll(' ', '');
    return weights.reduce((sum, w, i) => sum + w * Number(digits[i]), 0) % 11 === 0;
  },
  SG: (id, dob) => {
    const m = /^([ST])(\d{7})([A-Z])$/.exec(id);
    if (!m || (m[1] === 'T') !== dob >= '2000') return false;
    const weights = [2, 7, 6, 5, 4, 3, 2];
    const sum = weights.reduce((s, w, i) => s + w * Number(m[2]![i]), m[1] === 'T' ? 4 : 0);
    return 'JZIHGFEDCBA'[sum % 11] === m[3];
  },
};

function luhn(digits: string): boolean {
  let sum = 0;
  for (let i = 0; i < digits.length; i++) {
    let d = Number(digits[digits.length - 1 - i]);
    if (i % 2 === 1) d = d * 2 > 9 ? d * 2 - 9 : d * 2;
    sum += d;
  }
  return sum % 10 === 0;
}
