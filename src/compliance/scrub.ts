import { createHmac } from 'node:crypto';
import { Faker, base, de, en, en_AU, en_CA, en_GB, en_US, fr } from '@faker-js/faker';
import { parsePhoneNumberFromString } from 'libphonenumber-js';
import { nationalIdFor, phoneFor, type Country } from '../crm/index.js';
import { redactText, scanText } from '../dlp/index.js';

/**
 * Scrubbed staging (DESIGN.md, compliance): the CRM tables of a data set rewritten so that they keep
 * their schema, links and distributions but hold no original personal value.
 *
 * - Identifiers (record ids and the ids that point at them) become keyed pseudonyms: HMAC-SHA256 under
 *   a secret of the key service, so the same id gets the same pseudonym in every table and every run.
 * - Values that identify someone get fakes of the same format, drawn by faker seeded from the HMAC of
 *   the value (the same name always becomes the same fake, so name frequencies are kept): names,
 *   company names, e-mails on the fake company's domain, phone numbers valid for the original's country
 *   from the regulators' fiction ranges, national ids in the country's format with valid check digits.
 *   A fake that equals (or contains) an original of its kind is drawn again, so no original can
 *   reappear by chance.
 * - Dates of birth move by up to half a year either way (ages stay as they were, to within months).
 * - Free text has every replaced value replaced inside it as well, then goes through DLP redaction.
 * - Everything else (territory, owner, stage, amounts, dates, consent) is kept as is: it is what staging
 *   needs to behave like production and identifies no one.
 *
 * The scrubber is pure over rows; reading the source and writing the target are the caller's.
 */

export type ScrubTable = 'crm_accounts' | 'crm_contacts' | 'crm_opportunities' | 'crm_notes';
export type Row = Record<string, string | number | null>;

/** Tables in the order they are scrubbed: what later tables' free text mentions is known by then. */
export const scrubTables: readonly ScrubTable[] = [
  'crm_accounts',
  'crm_contacts',
  'crm_opportunities',
  'crm_notes',
];

export type Treatment = 'pseudonym' | 'fake' | 'shifted' | 'redacted';

/** How each column is treated; a column not named is kept. */
const treatments: Readonly<Record<ScrubTable, Readonly<Record<string, Treatment>>>> = {
  crm_accounts: { id: 'pseudonym', name: 'fake' },
  crm_contacts: {
    id: 'pseudonym',
    account_id: 'pseudonym',
    first_name: 'fake',
    last_name: 'fake',
    email: 'fake',
    phone: 'fake',
    national_id: 'fake',
    date_of_birth: 'shifted',
  },
  crm_opportunities: { id: 'pseudonym', account_id: 'pseudonym', name: 'redacted' },
  crm_notes: {
    id: 'pseudonym',
    account_id: 'pseudonym',
    contact_id: 'pseudonym',
    opportunity_id: 'pseudonym',
    body: 'redacted',
  },
};

/** What a run replaced, per table and column, and what DLP redaction found in free text. */
export interface ScrubReport {
  readonly tables: Record<
    string,
    { rows: number; columns: Record<string, { treatment: Treatment; replaced: number }> }
  >;
  readonly dlp: Record<string, number>;
  /** The originals that identify on their own, searched for in the output (see survivors). */
  readonly sensitiveValues: number;
}

const countries: readonly Country[] = ['GB', 'DE', 'FR', 'US', 'CA', 'AU', 'SG'];
const alphabet = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

export class Scrubber {
  private readonly key: Buffer;
  private readonly faker = new Faker({ locale: [en, base] });
  private readonly local: Record<Country, Faker>;
  /** Originals of each kind, for drawing fakes that are none of them (filled by `learn`). */
  private readonly originals = {
    company: new Set<string>(),
    phone: new Set<string>(),
    nationalId: new Set<string>(),
  };
  private readonly companyList: string[] = [];
  /** original → fake, for every value faked; free text gets the same replacements. */
  private readonly replaced = new Map<string, string>();
  /** original id → pseudonym (ids do not occur in free text, so they stay out of its pattern). */
  private readonly ids = new Map<string, string>();
  /** Originals that identify someone on their own (searched for in the output). */
  readonly sensitive = new Set<string>();
  private readonly accountDomain = new Map<string, string>();
  private readonly report: ScrubReport = { tables: {}, dlp: {}, sensitiveValues: 0 };
  private textPattern: RegExp | undefined;

  constructor(key: Uint8Array) {
    if (key.length < 32) throw new TypeError('the scrub key must be at least 32 bytes');
    this.key = Buffer.from(key);
    const make = (locale: typeof en) => new Faker({ locale: [locale, en, base] });
    this.local = {
      GB: make(en_GB),
      DE: make(de),
      FR: make(fr),
      US: make(en_US),
      CA: make(en_CA),
      AU: make(en_AU),
      SG: make(en),
    };
  }

  /** A first pass over the source: the originals fakes must never equal. */
  learn(table: ScrubTable, row: Row): void {
    if (table === 'crm_accounts' && typeof row.name === 'string') {
      this.originals.company.add(row.name);
      this.companyList.push(row.name);
    }
    if (table === 'crm_contacts') {
      if (typeof row.phone === 'string') this.originals.phone.add(row.phone);
      if (typeof row.national_id === 'string') this.originals.nationalId.add(row.national_id);
    }
    // Numbers pasted into free text are originals too: no fake may equal one.
    for (const [column, treatment] of Object.entries(treatments[table])) {
      const text = row[column];
      if (treatment !== 'redacted' || typeof text !== 'string') continue;
      for (const finding of scanText(text)) {
        const value = text.slice(finding.start, finding.end);
        this.originals.phone.add(value);
        this.originals.nationalId.add(value);
      }
    }
  }

  /** The scrubbed row; tables must come in `scrubTables` order. */
  scrub(table: ScrubTable, row: Row): Row {
    const out: Row = { ...row };
    const stats = (this.report.tables[table] ??= { rows: 0, columns: {} });
    stats.rows += 1;
    for (const [column, treatment] of Object.entries(treatments[table])) {
      const value = row[column];
      if (value === null || value === undefined || value === '') continue;
      const next = this.treat(table, column, treatment, String(value), row);
      if (next !== value) {
        const col = (stats.columns[column] ??= { treatment, replaced: 0 });
        col.replaced += 1;
      }
      out[column] = next;
    }
    return out;
  }

  summary(): ScrubReport {
    return { ...this.report, sensitiveValues: this.sensitive.size };
  }

  private treat(table: ScrubTable, column: string, treatment: Treatment, value: string, row: Row): string {
    switch (treatment) {
      case 'pseudonym':
        return this.pseudonymId(value);
      case 'shifted':
        // 1 to 182 days either way: never the original date.
        return shiftDate(
          value,
          this.int(`dob:${String(row.id)}`, 1, 182) * (this.int(`dob-sign:${String(row.id)}`, 0, 1) ? 1 : -1),
        );
      case 'redacted':
        return this.freeText(value);
      case 'fake':
        return this.fake(table, column, value, row);
    }
  }

  private fake(table: ScrubTable, column: string, value: string, row: Row): string {
    if (table === 'crm_accounts') {
      const fake = this.remember(value, () => this.company(value), true);
      this.accountDomain.set(this.pseudonymId(String(row.id)), slug(fake));
      return fake;
    }
    const country = countryOf(row.phone, row.national_id);
    switch (column) {
      case 'first_name':
        return this.remember(value, () =>
          this.unlike(new Set([value]), (n) => this.draw(`first:${value}:${n}`, country).person.firstName()),
        );
      case 'last_name': {
        const fake = this.remember(value, () =>
          this.unlike(new Set([value]), (n) => this.draw(`last:${value}:${n}`, country).person.lastName()),
        );
        if (typeof row.first_name === 'string') this.sensitive.add(`${row.first_name} ${value}`);
        return fake;
      }
      case 'email': {
        const first = this.replaced.get(String(row.first_name)) ?? 'contact';
        const last = this.replaced.get(String(row.last_name)) ?? 'person';
        const suffix = /(\d+)@/.exec(value)?.[1] ?? '';
        const tld = /\.([a-z.]+)$/i.exec(value)?.[1] ?? 'example';
        const domain = this.accountDomain.get(this.pseudonymId(String(row.account_id))) ?? 'example';
        return this.remember(value, () => `${ascii(first)}.${ascii(last)}${suffix}@${domain}.${tld}`, true);
      }
      case 'phone':
        return this.remember(
          value,
          () =>
            this.unlike(this.originals.phone, (attempt) =>
              phoneFor(country, this.rng(`phone:${value}:${attempt}`)),
            ),
          true,
        );
      case 'national_id':
        return this.remember(
          value,
          () =>
            this.unlike(
              this.originals.nationalId,
              (attempt) =>
                nationalIdFor(
                  country,
                  {
                    sex: this.int(`sex:${value}`, 0, 1) === 0 ? 'female' : 'male',
                    dateOfBirth: String(row.date_of_birth ?? '1980-01-01'),
                  },
                  this.rng(`nid:${value}:${attempt}`),
                ),
              // DLP must read the fake as it reads the original (an SSN as an SSN), so what staging
              // tests of detection see keeps its distribution.
              (fake) => !sameKinds(fake, value),
            ),
          true,
        );
      default:
        throw new TypeError(`no fake for ${table}.${column}`);
    }
  }

  /** A fake company name that is no original and contains none. */
  private company(value: string): string {
    return this.unlike(
      this.originals.company,
      (attempt) => this.draw(`company:${value}:${attempt}`, 'US').company.name(),
      (fake) => this.companyList.some((original) => fake.includes(original) || original.includes(fake)),
    );
  }

  private unlike(
    originals: ReadonlySet<string>,
    make: (attempt: number) => string,
    clash?: (fake: string) => boolean,
  ): string {
    // Most draws succeed at once; a rare shape (a Steuer-ID that DLP also reads as a phone number,
    // about one draw in twenty) needs many more than 100 to be found for every key.
    for (let attempt = 0; attempt < 2000; attempt++) {
      const fake = make(attempt);
      if (!originals.has(fake) && !clash?.(fake)) return fake;
    }
    throw new TypeError(
      'no fake value unlike every original could be drawn; the source is too large for its format',
    );
  }

  /** The same original always gets the same replacement, in every table and in free text. */
  private remember(value: string, make: () => string, sensitive = false): string {
    let fake = this.replaced.get(value);
    if (fake === undefined) {
      fake = make();
      this.replaced.set(value, fake);
      this.textPattern = undefined;
    }
    if (sensitive) this.sensitive.add(value);
    return fake;
  }

  /** The object's key prefix and 12 base-62 characters of the HMAC: a valid id of the same object. */
  private pseudonymId(id: string): string {
    let pseudonym = this.ids.get(id);
    if (pseudonym === undefined) {
      const digest = this.hmac(`id:${id}`);
      let body = '';
      for (let i = 0; i < 12; i++) body += alphabet[(digest[i] as number) % 62];
      pseudonym = id.slice(0, 3) + body;
      this.ids.set(id, pseudonym);
      this.sensitive.add(id);
    }
    return pseudonym;
  }

  /** Every value replaced so far replaced inside the text too (whole words), then DLP redaction. */
  private freeText(text: string): string {
    this.textPattern ??= wordsPattern([...this.replaced.keys()]);
    const known = this.textPattern
      ? text.replace(this.textPattern, (match) => this.replaced.get(match) ?? match)
      : text;
    // What DLP finds in the original is searched for in the output; what it finds after the
    // replacements (a fake among them) is redacted.
    for (const finding of scanText(text)) this.sensitive.add(text.slice(finding.start, finding.end));
    const findings = scanText(known);
    for (const finding of findings) this.report.dlp[finding.kind] = (this.report.dlp[finding.kind] ?? 0) + 1;
    return findings.length > 0 ? redactText(known, findings) : known;
  }

  private draw(label: string, country: Country): Faker {
    const faker = this.local[country] ?? this.faker;
    faker.seed(this.int(label, 0, 2 ** 31 - 1));
    return faker;
  }

  private hmac(label: string): Buffer {
    return createHmac('sha256', this.key).update(label).digest();
  }

  private int(label: string, min: number, max: number): number {
    return min + (this.hmac(label).readUInt32BE(0) % (max - min + 1));
  }

  /** A small deterministic generator for the seed's identity functions. */
  private rng(label: string): { int(min: number, max: number): number } {
    let n = 0;
    return { int: (min, max) => this.int(`${label}:${n++}`, min, max) };
  }
}

/**
 * Which of `values` occur in `text` (the output's bytes read as latin1, values likewise as their UTF-8
 * bytes): found by their first four characters, so thousands of values cost one pass over the text.
 */
export function survivors(text: string, values: Iterable<string>): string[] {
  const byPrefix = new Map<string, string[]>();
  const short: string[] = [];
  for (const value of values) {
    const bytes = Buffer.from(value, 'utf8').toString('latin1');
    if (bytes.length < 4) short.push(bytes);
    else {
      const list = byPrefix.get(bytes.slice(0, 4)) ?? [];
      list.push(bytes);
      byPrefix.set(bytes.slice(0, 4), list);
    }
  }
  const found = new Set<string>();
  for (let i = 0; i + 4 <= text.length; i++) {
    const candidates = byPrefix.get(text.slice(i, i + 4));
    if (!candidates) continue;
    for (const value of candidates) if (text.startsWith(value, i)) found.add(value);
  }
  for (const value of short) if (text.includes(value)) found.add(value);
  return [...found].map((v) => Buffer.from(v, 'latin1').toString('utf8'));
}

function wordsPattern(values: readonly string[]): RegExp | undefined {
  const words = values.filter((v) => v.length >= 2).sort((a, b) => b.length - a.length);
  if (words.length === 0) return undefined;
  const escaped = words.map((w) => w.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'));
  return new RegExp(`(?<![\\p{L}\\p{N}])(?:${escaped.join('|')})(?![\\p{L}\\p{N}])`, 'gu');
}

const byCallingCode: Readonly<Record<string, Country>> = {
  '44': 'GB',
  '49': 'DE',
  '33': 'FR',
  '61': 'AU',
  '65': 'SG',
};

/**
 * The country a contact's identity formats follow, from their phone number: what libphonenumber says,
 * else the calling code (+1 numbers of the fiction ranges name no country: a SIN-shaped national id
 * makes them Canadian). US when nothing tells.
 */
/** Whether DLP finds the same kinds of data in both texts. */
function sameKinds(a: string, b: string): boolean {
  const kinds = (text: string) => [...new Set(scanText(text).map((f) => f.kind))].sort().join(',');
  return kinds(a) === kinds(b);
}

function countryOf(phone: unknown, nationalId: unknown): Country {
  const parsed = typeof phone === 'string' ? parsePhoneNumberFromString(phone) : undefined;
  const country = parsed?.country as Country | undefined;
  if (country && countries.includes(country)) return country;
  const code = parsed?.countryCallingCode;
  if (code === '1')
    return typeof nationalId === 'string' && /^\d{3} \d{3} \d{3}$/.test(nationalId) ? 'CA' : 'US';
  return (code && byCallingCode[code]) || 'US';
}

function shiftDate(value: string, days: number): string {
  const time = Date.parse(`${value.slice(0, 10)}T00:00:00Z`);
  if (Number.isNaN(time)) return value;
  return new Date(time + days * 86_400_000).toISOString().slice(0, 10);
}

function ascii(name: string): string {
  return (
    name
      .normalize('NFKD')
      .replace(/[^\p{L}\p{N}]/gu, '')
      .replace(/[^\x20-\x7e]/g, '')
      .toLowerCase() || 'x'
  );
}

function slug(name: string): string {
  return (
    name
      .normalize('NFKD')
      .replace(/[^\x20-\x7e]/g, '')
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '') || 'company'
  );
}
