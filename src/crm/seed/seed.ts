import { createHash } from 'node:crypto';
import type { Faker } from '@faker-js/faker';
import type { Kysely } from 'kysely';
import type { Db } from '../../store/index.js';
import type { FieldKeys } from '../field-keys.js';
import { fieldProtection } from '../field-protection.js';
import { seededId } from '../ids.js';
import { specOf, territories, type CrmTable, type Territory } from '../metadata.js';
import type { CrmObject } from '../types.js';
import { nationalIdFor, phoneFor, type Country, type Rng } from './identity.js';
import { industries, nextSteps, products, stages, topics } from './vocab.js';

export interface SeedOptions {
  /** Number of contacts; accounts, opportunities and notes scale with it. Default 2000. */
  contacts?: number;
  /** The same seed gives the same ids and values. Default 42. */
  seed?: number;
  /** Sales users who own accounts; accounts of a territory go to its owners (to all owners when it has none). */
  owners: { email: string; territory: 'EMEA' | 'NA' | 'APAC' }[];
  onProgress?: (done: number, total: number) => void;
  /**
   * The embedded CRM's field keys: encrypted fields are sealed before they are written, so the plain
   * value never reaches the store. Absent only for a vendor's fake, whose tables stand for the vendor's storage.
   */
  fieldKeys?: FieldKeys;
}

export interface SeedResult {
  accounts: number;
  contacts: number;
  opportunities: number;
  notes: number;
  seconds: number;
}

type Row = Record<string, string | number | null>;
type CrmDb = Record<CrmTable, Row>;

export const defaultContacts = 2000;
export const maxContacts = 10_000_000;

/** Per contact: 0.15 accounts, 0.4 opportunities, 0.6 notes (2000 contacts → 300, 800, 1200). */
export function seedCounts(contacts: number): Omit<SeedResult, 'seconds'> {
  return {
    accounts: Math.max(1, Math.round(contacts * 0.15)),
    contacts,
    opportunities: Math.round(contacts * 0.4),
    notes: Math.round(contacts * 0.6),
  };
}

/** Every timestamp is relative to this instant, so a seed gives the same data on any day. */
const reference = Date.UTC(2025, 5, 30, 12, 0, 0);
const day = 86_400_000;

const countriesOf: Record<Territory, readonly { country: Country; weight: number }[]> = {
  EMEA: [
    { country: 'GB', weight: 5 },
    { country: 'DE', weight: 3 },
    { country: 'FR', weight: 2 },
  ],
  NA: [
    { country: 'US', weight: 8 },
    { country: 'CA', weight: 2 },
  ],
  APAC: [
    { country: 'AU', weight: 6 },
    { country: 'SG', weight: 4 },
  ],
};
const territoryWeights: Record<Territory, number> = { EMEA: 4, NA: 4, APAC: 2 };
const topLevelDomain: Record<Country, string> = {
  GB: 'co.uk',
  DE: 'de',
  FR: 'fr',
  US: 'com',
  CA: 'ca',
  AU: 'com.au',
  SG: 'com.sg',
};

/** Rows per INSERT statement and per transaction: big enough to be fast, small enough to let other writers in. */
const rowsPerInsert = 500;
const rowsPerTransaction = 5000;

/**
 * Replaces the embedded CRM data with a deterministic synthetic data set. Generation is streamed:
 * only compact per-account and per-parent arrays are kept (a few bytes per record), rows are built in
 * chunks and written as multi-row inserts in short transactions, so a million contacts take bounded
 * memory and a server on the same database keeps working while a seed runs.
 */
export async function seedCrm(db: Db, opts: SeedOptions): Promise<SeedResult> {
  const contacts = opts.contacts ?? defaultContacts;
  const seed = opts.seed ?? 42;
  if (!Number.isSafeInteger(contacts) || contacts < 1 || contacts > maxContacts) {
    throw new TypeError(`contacts must be an integer from 1 to ${maxContacts}`);
  }
  if (!Number.isSafeInteger(seed) || seed < 0) throw new TypeError('seed must be a non-negative integer');
  if (!Array.isArray(opts.owners) || opts.owners.length === 0)
    throw new TypeError('seeding needs at least one owner');
  for (const owner of opts.owners) {
    if (typeof owner?.email !== 'string' || !territories.includes(owner.territory)) {
      throw new TypeError('each owner needs an email and a territory of EMEA, NA or APAC');
    }
  }

  const started = performance.now();
  const counts = seedCounts(contacts);
  const total = counts.accounts + counts.contacts + counts.opportunities + counts.notes;
  const generator = new Generator(await makeFakers(seed), opts.owners, counts);
  const loose = db as unknown as Kysely<CrmDb>;

  let done = 0;
  opts.onProgress?.(0, total);
  await loose.transaction().execute(async (trx) => {
    for (const table of ['crm_notes', 'crm_opportunities', 'crm_contacts', 'crm_accounts'] as const) {
      await trx.deleteFrom(table).execute();
    }
  });
  const protection = opts.fieldKeys && fieldProtection(opts.fieldKeys);
  const write = async (object: CrmObject, count: number, make: (i: number) => Row) => {
    const { table } = specOf(object);
    const seal = protection ? await protection.sealer(specOf(object)) : undefined;
    for (let start = 0; start < count; start += rowsPerTransaction) {
      const end = Math.min(count, start + rowsPerTransaction);
      await loose.transaction().execute(async (trx) => {
        for (let from = start; from < end; from += rowsPerInsert) {
          const rows: Row[] = [];
          for (let i = from; i < Math.min(end, from + rowsPerInsert); i++) {
            const row = make(i);
            rows.push(seal ? seal(String(row.id), row) : row);
          }
          await trx.insertInto(table).values(rows).execute();
        }
      });
      done += end - start;
      opts.onProgress?.(done, total);
    }
  };
  await write('account', counts.accounts, (i) => generator.account(i));
  generator.finishAccounts();
  await write('contact', counts.contacts, (i) => generator.contact(i));
  await write('opportunity', counts.opportunities, (i) => generator.opportunity(i));
  await write('note', counts.notes, (i) => generator.note(i));
  return { ...counts, seconds: (performance.now() - started) / 1000 };
}

/** True when the embedded CRM holds no record at all (a fresh data directory). */
export async function isCrmEmpty(db: Db): Promise<boolean> {
  const loose = db as unknown as Kysely<CrmDb>;
  for (const table of ['crm_accounts', 'crm_contacts', 'crm_opportunities', 'crm_notes'] as const) {
    if (await loose.selectFrom(table).select('id').limit(1).executeTakeFirst()) return false;
  }
  return true;
}

interface Fakers {
  /** Numbers and choices; names come from the per-country instances. */
  main: Faker;
  byCountry: Record<Country, Faker>;
}

/** Own Faker instances (never the shared singletons), loaded only when seeding. */
async function makeFakers(seed: number): Promise<Fakers> {
  const f = await import('@faker-js/faker');
  const make = (locale: (typeof f)['en'] | undefined, offset: number) => {
    const faker = new f.Faker({ locale: locale ? [locale, f.en, f.base] : [f.en, f.base] });
    faker.seed([seed, offset]);
    return faker;
  };
  return {
    main: make(undefined, 0),
    byCountry: {
      GB: make(f.en_GB, 1),
      DE: make(f.de, 2),
      FR: make(f.fr, 3),
      US: make(f.en_US, 4),
      CA: make(f.en_CA, 5),
      AU: make(f.en_AU, 6),
      SG: make(undefined, 7),
    },
  };
}

const countryCodes: readonly Country[] = ['GB', 'DE', 'FR', 'US', 'CA', 'AU', 'SG'];

/**
 * Builds rows in order, i = 0, 1, 2, ... per object. Accounts must all be built before contacts,
 * contacts before opportunities and notes; every random draw happens in that fixed order, which is
 * what makes a seed reproducible.
 */
class Generator {
  private readonly rng: Rng;
  private readonly prefix = {
    account: specOf('account').prefix,
    contact: specOf('contact').prefix,
    opportunity: specOf('opportunity').prefix,
    note: specOf('note').prefix,
  };
  private readonly owners: readonly string[];
  /** Owner indexes eligible for each territory. */
  private readonly ownersOf: Record<Territory, readonly number[]>;

  // Compact per-account state: a few bytes per account plus its name and domain.
  private readonly accTerritory: Uint8Array;
  private readonly accOwner: Int32Array;
  private readonly accCountry: Uint8Array;
  private readonly accCreated: Float64Array;
  private readonly accWeight: Float64Array;
  private readonly accName: string[] = [];
  private readonly accDomain: string[] = [];

  /** first[kind][a] is the first row of that kind under account a; rows are laid out account by account. */
  private first: Record<'contact' | 'opportunity' | 'note', Int32Array> = {
    contact: new Int32Array(1),
    opportunity: new Int32Array(1),
    note: new Int32Array(1),
  };
  private at = { contact: 0, opportunity: 0, note: 0 };
  /** Faker returns its own list entries, so this holds references, not copies: 8 bytes a contact. */
  private readonly contactFirstName: string[];
  private currentAccount = -1;
  private emailsOfAccount = new Set<string>();

  constructor(
    private readonly fakers: Fakers,
    owners: SeedOptions['owners'],
    private readonly counts: Omit<SeedResult, 'seconds'>,
  ) {
    const f = fakers.main;
    this.rng = { int: (min, max) => f.number.int({ min, max }) };
    this.owners = owners.map((o) => o.email);
    const all = owners.map((_, i) => i);
    const ownersOf = {} as Record<Territory, readonly number[]>;
    for (const t of territories) {
      const own = all.filter((i) => owners[i]?.territory === t);
      ownersOf[t] = own.length > 0 ? own : all;
    }
    this.ownersOf = ownersOf;
    this.accTerritory = new Uint8Array(counts.accounts);
    this.accOwner = new Int32Array(counts.accounts);
    this.accCountry = new Uint8Array(counts.accounts);
    this.accCreated = new Float64Array(counts.accounts);
    this.accWeight = new Float64Array(counts.accounts);
    this.contactFirstName = new Array<string>(counts.contacts);
  }

  account(i: number): Row {
    const f = this.fakers.main;
    const territory = weighted(this.rng, territories, (t) => territoryWeights[t]);
    const country = weighted(this.rng, countriesOf[territory], (c) => c.weight).country;
    const owner = pick(this.rng, this.ownersOf[territory]);
    const name = this.fakers.byCountry[country].company.name();
    const created = reference - this.rng.int(30, 5 * 365) * day - this.rng.int(0, day - 1);
    this.accTerritory[i] = territories.indexOf(territory);
    this.accOwner[i] = owner;
    this.accCountry[i] = countryCodes.indexOf(country);
    this.accCreated[i] = created;
    // Account size drives how many contacts and opportunities it gets, and its revenue.
    const size = Math.exp(2 * f.number.float({ min: 0, max: 1 }));
    this.accWeight[i] = size;
    this.accName.push(name);
    this.accDomain.push(`${slug(name)}.${topLevelDomain[country]}`);
    const revenue = logUniform(f, 500_000, 2_000_000_000) * size;
    return {
      id: seededId(this.prefix.account, i),
      territory,
      owner: this.owners[owner] as string,
      created_at: iso(created),
      updated_at: iso(between(this.rng, created, reference)),
      name,
      industry: pick(this.rng, industries),
      annual_revenue: roundTo(revenue, 3),
    };
  }

  /**
   * After the last account: lay contacts, opportunities and notes out account by account in
   * proportion to account size. Rows of one account are then generated together, which keeps every
   * index insert near the end of its B-tree (the difference between 18k and 27k records/s at a
   * million contacts) and lets notes refer to contacts and opportunities of their own account.
   */
  finishAccounts(): void {
    const cumulative = new Float64Array(this.counts.accounts);
    let sum = 0;
    for (let a = 0; a < this.counts.accounts; a++) {
      sum += this.accWeight[a] as number;
      cumulative[a] = sum;
    }
    this.first = {
      contact: layout(cumulative, this.counts.contacts),
      opportunity: layout(cumulative, this.counts.opportunities),
      note: layout(cumulative, this.counts.notes),
    };
  }

  /** The account of row i of a kind; rows are asked for in order, so a moving pointer finds it. */
  private accountOf(kind: 'contact' | 'opportunity' | 'note', i: number): number {
    const first = this.first[kind];
    let a = this.at[kind];
    while ((first[a + 1] as number) <= i) a++;
    this.at[kind] = a;
    return a;
  }

  contact(i: number): Row {
    // All contacts of an account come together, so unique emails per domain need no global set.
    const a = this.accountOf('contact', i);
    if (a !== this.currentAccount) {
      this.currentAccount = a;
      this.emailsOfAccount = new Set();
    }
    const country = countryCodes[this.accCountry[a] as number] as Country;
    const local = this.fakers.byCountry[country];
    const sex = this.rng.int(0, 1) === 0 ? 'female' : 'male';
    const firstName = local.person.firstName(sex);
    const lastName = local.person.lastName();
    const born = reference - this.rng.int(22 * 365, 70 * 365) * day;
    const dateOfBirth = iso(born).slice(0, 10);
    let local_part = `${ascii(firstName)}.${ascii(lastName)}`;
    for (let n = 2; this.emailsOfAccount.has(local_part); n++)
      local_part = `${ascii(firstName)}.${ascii(lastName)}${n}`;
    this.emailsOfAccount.add(local_part);
    this.contactFirstName[i] = firstName;
    const created = between(this.rng, this.accCreated[a] as number, reference);
    return {
      id: seededId(this.prefix.contact, i),
      ...this.ownership(a),
      created_at: iso(created),
      updated_at: iso(between(this.rng, created, reference)),
      account_id: seededId(this.prefix.account, a),
      first_name: firstName,
      last_name: lastName,
      title: jobTitle(this.fakers.main),
      email: `${local_part}@${this.accDomain[a]}`,
      phone: phoneFor(country, this.rng),
      date_of_birth: dateOfBirth,
      national_id: nationalIdFor(country, { sex, dateOfBirth }, this.rng),
      consent: consentFor(seededId(this.prefix.contact, i)),
    };
  }

  opportunity(i: number): Row {
    const f = this.fakers.main;
    const a = this.accountOf('opportunity', i);
    const stage = weighted(this.rng, stages, (s) => s.weight);
    const created = between(this.rng, this.accCreated[a] as number, reference);
    const close = stage.closed
      ? between(this.rng, created, reference)
      : reference + this.rng.int(7, 365) * day;
    const product = pick(this.rng, products);
    return {
      id: seededId(this.prefix.opportunity, i),
      ...this.ownership(a),
      created_at: iso(created),
      updated_at: iso(between(this.rng, created, reference)),
      account_id: seededId(this.prefix.account, a),
      name: `${this.accName[a]} - ${product}`,
      stage: stage.name,
      amount: Math.round(logUniform(f, 5_000, 2_500_000) / 100) * 100,
      close_date: iso(close).slice(0, 10),
    };
  }

  note(i: number): Row {
    const a = this.accountOf('note', i);
    const kind = this.rng.int(0, 9);
    const [c0, c1] = [this.first.contact[a] as number, this.first.contact[a + 1] as number];
    const [o0, o1] = [this.first.opportunity[a] as number, this.first.opportunity[a + 1] as number];
    let contactId: string | null = null;
    let opportunityId: string | null = null;
    let body: string;
    const topic = pick(this.rng, topics);
    const step = pick(this.rng, nextSteps);
    if (kind < 5 && c1 > c0) {
      const c = this.rng.int(c0, c1 - 1);
      contactId = seededId(this.prefix.contact, c);
      const name = this.contactFirstName[c] ?? 'them';
      body = `Call with ${name}: discussed ${topic}. Next step: ${step}.`;
      // Reps paste contact details into notes; a few do here too, for the DLP scan to find.
      if (this.rng.int(0, 29) === 0) {
        const country = countryCodes[this.accCountry[a] as number] as Country;
        body += ` Prefers to be called on ${phoneFor(country, this.rng)}.`;
      }
    } else if (kind < 8 && o1 > o0) {
      const o = this.rng.int(o0, o1 - 1);
      opportunityId = seededId(this.prefix.opportunity, o);
      body = `Deal review: ${topic} is the open question; we will ${step}.`;
    } else {
      body = `Account check-in about ${topic}. Agreed to ${step}.`;
    }
    const territory = territories[this.accTerritory[a] as number] as Territory;
    // Mostly the account owner writes; sometimes a colleague of the same territory.
    const author =
      this.rng.int(0, 3) === 0
        ? (this.owners[pick(this.rng, this.ownersOf[territory])] as string)
        : this.ownership(a).owner;
    const created = between(this.rng, this.accCreated[a] as number, reference);
    return {
      id: seededId(this.prefix.note, i),
      ...this.ownership(a),
      created_at: iso(created),
      updated_at: iso(created),
      body,
      author,
      account_id: seededId(this.prefix.account, a),
      contact_id: contactId,
      opportunity_id: opportunityId,
    };
  }

  private ownership(a: number): { territory: string; owner: string } {
    return {
      territory: territories[this.accTerritory[a] as number] as string,
      owner: this.owners[this.accOwner[a] as number] as string,
    };
  }
}

/** Share of contacts consenting to each purpose; the rest have not (or withdrew). */
const consentShares: ReadonlyArray<[purpose: string, share: number]> = [
  ['analytics', 0.7],
  ['marketing', 0.35],
  ['sales_outreach', 0.8],
];

/**
 * The purposes a seeded contact consented to, as the sorted JSON array the gateway filters on. Drawn
 * from a hash of the id rather than the generator, so adding consent changed no other seeded value.
 */
export function consentFor(id: string): string {
  const digest = createHash('sha256').update(`consent:${id}`).digest();
  const purposes = consentShares
    .filter(([, share], i) => (digest[i] as number) < share * 256)
    .map(([p]) => p);
  return JSON.stringify(purposes);
}

/** first[a] = the first of `count` rows that falls to account a by cumulative weight; first[accounts] = count. */
function layout(cumulative: Float64Array, count: number): Int32Array {
  const accounts = cumulative.length;
  const first = new Int32Array(accounts + 1);
  const total = cumulative[accounts - 1] as number;
  let a = 0;
  for (let i = 0; i < count; i++) {
    const position = ((i + 0.5) / count) * total;
    while ((cumulative[a] as number) < position) first[++a] = i;
  }
  first.fill(count, a + 1);
  return first;
}

function pick<T>(rng: Rng, items: readonly T[]): T {
  return items[rng.int(0, items.length - 1)] as T;
}

function weighted<T>(rng: Rng, items: readonly T[], weight: (item: T) => number): T {
  let total = 0;
  for (const item of items) total += weight(item);
  let r = rng.int(0, total - 1);
  for (const item of items) {
    r -= weight(item);
    if (r < 0) return item;
  }
  return items[items.length - 1] as T;
}

function between(rng: Rng, from: number, to: number): number {
  return to <= from ? from : from + rng.int(0, Math.floor((to - from) / 1000)) * 1000;
}

function logUniform(f: Faker, min: number, max: number): number {
  return Math.exp(f.number.float({ min: Math.log(min), max: Math.log(max) }));
}

function roundTo(value: number, significant: number): number {
  const scale = 10 ** Math.max(0, Math.floor(Math.log10(value)) + 1 - significant);
  return Math.round(value / scale) * scale;
}

/** Faker's jobTitle() goes through its template engine; composing the same three parts is 8× faster. */
function jobTitle(f: Faker): string {
  return `${f.person.jobDescriptor()} ${f.person.jobArea()} ${f.person.jobType()}`;
}

const dayPrefixes = new Map<number, string>();
const two = (n: number) => (n < 10 ? '0' : '') + n;

/** `Date#toISOString` for whole-millisecond times, with the date part cached per day (it was a tenth of seeding). */
function iso(ms: number): string {
  const d = Math.floor(ms / day);
  let prefix = dayPrefixes.get(d);
  if (prefix === undefined) {
    prefix = new Date(d * day).toISOString().slice(0, 11);
    dayPrefixes.set(d, prefix);
  }
  let rest = ms - d * day;
  const millis = rest % 1000;
  rest = (rest - millis) / 1000;
  const seconds = rest % 60;
  rest = (rest - seconds) / 60;
  const minutes = rest % 60;
  const hours = (rest - minutes) / 60;
  return `${prefix}${two(hours)}:${two(minutes)}:${two(seconds)}.${String(millis).padStart(3, '0')}Z`;
}

/** Lower-case ASCII for e-mail local parts and domains: "Müller-Lüdenscheidt" → "muellerluedenscheidt". */
function ascii(text: string): string {
  return text
    .toLowerCase()
    .replaceAll('ä', 'ae')
    .replaceAll('ö', 'oe')
    .replaceAll('ü', 'ue')
    .replaceAll('ß', 'ss')
    .normalize('NFD')
    .replace(/[^a-z0-9]/g, '');
}

function slug(name: string): string {
  const words = name
    .toLowerCase()
    .split(/[\s,&]+/)
    .map(ascii)
    .filter(
      (w) =>
        w &&
        ![
          'and',
          'und',
          'et',
          'the',
          'inc',
          'llc',
          'ltd',
          'plc',
          'gmbh',
          'ag',
          'kg',
          'sa',
          'sarl',
          'group',
        ].includes(w),
    );
  return (words.join('-') || 'company').slice(0, 40).replace(/-+$/, '');
}
