import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultRoles, defaultScopes } from '../src/config/defaults.js';
import { scanText } from '../src/dlp/index.js';
import { openGatehouseStore } from '../src/database/index.js';
import { openTestSql, type TestSql } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';
import {
  auditEventsOf,
  expectProblem,
  json,
  ownAccountContact,
  requestIdOf,
  type Page,
  type Row,
} from './support/http.js';

// Detection's containment (throttle, revoke, suspend) would answer this suite's deliberate refusals and
// bulk reads; it has suites of its own, so it is off here.
const quietDetection = { 'detect.enabled': false };

/**
 * The protect stage over real HTTP: consent, masking, DLP of outgoing free text and aggregates. The
 * bulk-export guard is raised here (it has its own suite), this demo lets card numbers into notes so that
 * the outgoing scan has one to find, and sales managers get opportunity owners masked so that a masked
 * aggregate field exists. A `note-insights` app (purpose sales_outreach) with a note aggregate scope
 * shows that notes follow the consent of the contact they are about, in aggregates too.
 */

let demo: Demo;
let masked: Demo;
let db: TestSql;
let carol: string;
let alice: string;
let aliceNoReach: string;
let bob: string;
let bobNoReach: string;
let dashboard: string;
let noteInsights: string;

const relaxedGuard = { 'limits.bulkExport': { minimum: 100_000, maxTracked: 100_000 } };
const callNotes =
  'read:account.basic read:contact.basic read:contact.reach read:note.basic write:contact.note';

beforeAll(async () => {
  const roles = {
    ...defaultRoles,
    sales_rep: {
      ...defaultRoles.sales_rep,
      scopes: [...defaultRoles.sales_rep.scopes, 'read:note.aggregate'],
    },
    sales_manager: {
      ...defaultRoles.sales_manager,
      masks: { ...defaultRoles.sales_manager.masks, 'opportunity.owner': 'null' },
    },
  };
  const scopes = {
    ...defaultScopes,
    'read:note.aggregate': { object: 'note', fields: ['author', 'account_id', 'created_at'] },
  };
  const purposes = {
    'gateway.consent.appPurposes': {
      'call-notes': 'sales_outreach',
      'pipeline-dashboard': 'analytics',
      'note-insights': 'sales_outreach',
    },
  };
  [demo, masked] = await Promise.all([
    startDemo({
      config: {
        ...relaxedGuard,
        ...quietDetection,
        ...purposes,
        roles,
        scopes,
        'gateway.dlp.incoming.payment_card': 'allow',
      },
    }),
    startDemo({ config: { ...relaxedGuard, ...quietDetection, 'gateway.consent.mode': 'mask' } }),
  ]);
  db = await openTestSql(demo.dataDir);
  const store = await openGatehouseStore(demo.config);
  const at = new Date().toISOString();
  await store.db
    .insertInto('apps')
    .values({
      id: 'note-insights',
      client_id: 'note-insights',
      name: 'note-insights',
      owner: 'alice@example.com',
      status: 'approved',
      scopes: JSON.stringify(['read:note.aggregate']),
      manifest: JSON.stringify({ name: 'note-insights', redirect_uris: [] }),
      created_at: at,
      updated_at: at,
    })
    .execute();
  await store.close();
  [carol, alice, aliceNoReach, bob, bobNoReach, dashboard] = await Promise.all([
    demo.accessToken('carol', 'console', 'audit:read'),
    demo.accessToken('alice', 'call-notes', callNotes),
    demo.accessToken('alice', 'call-notes', 'read:contact.basic read:note.basic write:contact.note'),
    demo.accessToken('bob', 'call-notes', callNotes),
    demo.accessToken('bob', 'call-notes', 'read:note.basic'),
    demo.accessToken('bob', 'pipeline-dashboard', 'read:opportunity.aggregate'),
  ]);
  noteInsights = await demo.accessToken('alice', 'note-insights', 'read:note.aggregate');
});

afterAll(async () => {
  await db?.close();
  await Promise.all([demo?.stop(), masked?.stop()]);
});

const consented = (flags: string) => (JSON.parse(flags) as string[]).includes('sales_outreach');

function emeaContacts(): Promise<{ id: string; consent: string }[]> {
  return db.all("select id, consent from crm_contacts where territory = 'EMEA' order by id");
}

async function everyRecord(path: string, token: string): Promise<Row[]> {
  const out: Row[] = [];
  let cursor: string | null = null;
  do {
    const page: Page = await json<Page>(
      await demo.get(`${path}?limit=100${cursor ? `&cursor=${cursor}` : ''}`, token),
    );
    out.push(...page.records);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

describe('consent', () => {
  it('the seed gives a realistic share of contacts no consent for sales outreach', async () => {
    const all = await db.all<{ consent: string }>('select consent from crm_contacts');
    const without = all.filter((c) => !consented(c.consent)).length / all.length;
    expect(without).toBeGreaterThan(0.1);
    expect(without).toBeLessThan(0.35);
    for (const { consent } of all)
      expect(JSON.parse(consent)).toEqual([...(JSON.parse(consent) as string[])].sort());
  });

  it('call-notes (purpose sales_outreach) never sees a contact without that consent', async () => {
    const contacts = await emeaContacts();
    const allowed = new Set(contacts.filter((c) => consented(c.consent)).map((c) => c.id));
    const seen = await everyRecord('/crm/v1/contacts', alice);
    expect(seen.length).toBe(allowed.size);
    for (const record of seen) expect(allowed.has(String(record.id))).toBe(true);
    expect(seen[0]).not.toHaveProperty('consent');
  });

  it('a contact without consent, asked for by id, is 404; a note about it is refused like a hidden contact', async () => {
    const refuser = (await emeaContacts()).find((c) => !consented(c.consent));
    const response = await demo.get(`/crm/v1/contacts/${refuser?.id}`, alice);
    await expectProblem(response, 404, 'NOT_FOUND');
    expect(await auditEventsOf(demo, carol, requestIdOf(response))).toHaveLength(1);
    const note = await demo.send('POST', '/crm/v1/notes', alice, {
      json: { body: 'called', contact_id: refuser?.id },
    });
    expect((await expectProblem(note, 422, 'INVALID_INPUT')).field).toBe('contact_id');
  });

  it('in mask mode the contact is returned with every personal field nulled', async () => {
    const token = await masked.accessToken('alice', 'call-notes', callNotes);
    const refuser = (await emeaContacts()).find((c) => !consented(c.consent));
    const giver = (await emeaContacts()).find((c) => consented(c.consent));
    const withheld = await masked.get(`/crm/v1/contacts/${refuser?.id}`, token);
    expect(withheld.status).toBe(200);
    const record = await json<Row>(withheld);
    expect(record).toMatchObject({
      id: refuser?.id,
      first_name: null,
      last_name: null,
      email: null,
      phone: null,
    });
    expect(record.account_id).toMatch(/^001/);
    const shown = await json<Row>(await masked.get(`/crm/v1/contacts/${giver?.id}`, token));
    expect(shown.first_name).toEqual(expect.any(String));
    const carolMasked = await masked.accessToken('carol', 'console', 'audit:read');
    const [row] = await auditEventsOf(masked, carolMasked, requestIdOf(withheld));
    expect(row?.event.reason).toBe('1 record returned; 1 withheld for consent');
  });
});

describe('consent of the contact a note is about', () => {
  /** EMEA notes with whether the contact they are about (if any) consented to sales outreach. */
  const emeaNotes = async () =>
    (
      await db.all<{ id: string; contact_id: string | null; author: string; consent: string | null }>(
        `select n.id, n.contact_id, n.author, c.consent from crm_notes n
         left join crm_contacts c on c.id = n.contact_id where n.territory = 'EMEA' order by n.id`,
      )
    ).map((n) => ({ ...n, allowed: n.contact_id === null || (n.consent !== null && consented(n.consent)) }));

  it('the seed has notes about contacts without consent, and notes about no contact', async () => {
    const notes = await emeaNotes();
    expect(notes.some((n) => !n.allowed)).toBe(true);
    expect(notes.some((n) => n.contact_id === null)).toBe(true);
  });

  it('a list never carries a note about a contact without consent; notes about no contact still come', async () => {
    const truth = await emeaNotes();
    const seen = await everyRecord('/crm/v1/notes', alice);
    expect(seen.map((n) => n.id).sort()).toEqual(
      truth
        .filter((n) => n.allowed)
        .map((n) => n.id)
        .sort(),
    );
  });

  it('such a note asked for by id is 404, like a note the caller cannot see', async () => {
    const note = (await emeaNotes()).find((n) => !n.allowed);
    const response = await demo.get(`/crm/v1/notes/${note?.id}`, alice);
    await expectProblem(response, 404, 'NOT_FOUND');
    expect(JSON.stringify(await auditEventsOf(demo, carol, requestIdOf(response)))).not.toContain('body');
  });

  it('in mask mode the note comes with its text nulled and what it hangs off kept', async () => {
    const token = await masked.accessToken('alice', 'call-notes', callNotes);
    const maskedDb = await openTestSql(masked.dataDir);
    const note = (await maskedDb.get<{ id: string; contact_id: string; author: string }>(
      `select n.id, n.contact_id, n.author from crm_notes n join crm_contacts c on c.id = n.contact_id
       where n.territory = 'EMEA' and c.consent not like '%sales_outreach%' order by n.id limit 1`,
    )) as { id: string; contact_id: string; author: string };
    await maskedDb.close();
    const response = await masked.get(`/crm/v1/notes/${note.id}`, token);
    expect(response.status).toBe(200);
    expect(await json<Row>(response)).toMatchObject({
      id: note.id,
      body: null,
      contact_id: note.contact_id,
      author: note.author,
    });
    const page = await json<Page>(await masked.get('/crm/v1/notes?limit=100', token));
    const withheld = page.records.filter((r) => r.body === null);
    expect(withheld.length).toBeGreaterThan(0);
    expect(withheld.every((r) => r.contact_id !== null)).toBe(true);
  });

  it('an aggregate of notes leaves out notes about contacts without consent', async () => {
    const truth = new Map<string, number>();
    const notes = await emeaNotes();
    for (const n of notes) if (n.allowed) truth.set(n.author, (truth.get(n.author) ?? 0) + 1);
    const everyone = new Map<string, number>();
    for (const n of notes) everyone.set(n.author, (everyone.get(n.author) ?? 0) + 1);
    const response = await demo.get('/crm/v1/notes/aggregate?group_by=author&metric=count', noteInsights);
    expect(response.status).toBe(200);
    const answer = await json<{ groups: Row[]; suppressed_groups: number }>(response);
    const expected = [...truth].filter(([, n]) => n >= 5).sort(([a], [b]) => (a < b ? -1 : 1));
    expect(answer.groups).toEqual(expected.map(([author, count]) => ({ author, count })));
    expect(answer.suppressed_groups).toBe(truth.size - expected.length);
    // The consent check made a difference: counted over every note, some author would differ.
    expect([...everyone].some(([author, n]) => truth.get(author) !== n)).toBe(true);
  });

  it('min and max over notes are withheld: no k notes share the earliest or latest time; the count skips the ones left out', async () => {
    const allowed = (await emeaNotes()).filter((n) => n.allowed);
    const answer = await json<{ groups: Row[] }>(
      await demo.get('/crm/v1/notes/aggregate?metric=min(created_at)&metric=max(created_at)', noteInsights),
    );
    expect(answer.groups).toEqual([{ count: allowed.length, min_created_at: null, max_created_at: null }]);
  });
});

describe('DLP of outgoing free text', () => {
  const seededPhoneNote = async () =>
    (await db.get<{ id: string; body: string }>(
      "select id, body from crm_notes where territory = 'EMEA' and body like '%Prefers to be called on +%' order by id limit 1",
    )) as { id: string; body: string };

  it('a rep, whose contact phones are masked, gets a phone pasted into a note redacted; the audit says so', async () => {
    const note = await seededPhoneNote();
    const phone = /\+[0-9 ]+[0-9]/.exec(note.body)?.[0] as string;
    const response = await demo.get(`/crm/v1/notes/${note.id}`, alice);
    expect(response.status).toBe(200);
    const body = String((await json<Row>(response)).body);
    expect(body).toContain('[redacted:phone]');
    expect(body).not.toContain(phone);
    const [row] = await auditEventsOf(demo, carol, requestIdOf(response));
    expect(row?.event.reason).toBe('1 record returned; dlp redacted 1 (phone)');
    expect(JSON.stringify(row)).not.toContain(phone);
  });

  it('a manager who may read phones unmasked sees it; the same manager without read:contact.reach does not', async () => {
    const note = await seededPhoneNote();
    const full = await json<Row>(await demo.get(`/crm/v1/notes/${note.id}`, bob));
    expect(full.body).toBe(note.body);
    const narrowed = await json<Row>(await demo.get(`/crm/v1/notes/${note.id}`, bobNoReach));
    expect(narrowed.body).toContain('[redacted:phone]');
  });

  it('in lists too: no phone number the scanner finds in a note reaches a rep', async () => {
    const notes = await everyRecord('/crm/v1/notes', alice);
    expect(notes.length).toBeGreaterThan(100);
    const stored = new Map(
      (await db.all<{ id: string; body: string }>('select id, body from crm_notes')).map((n) => [
        n.id,
        n.body,
      ]),
    );
    let redacted = 0;
    for (const note of notes) {
      const original = stored.get(String(note.id)) as string;
      expect(original).toEqual(expect.any(String));
      for (const finding of scanText(original, { kinds: ['phone'] })) {
        expect(String(note.body)).not.toContain(original.slice(finding.start, finding.end));
        redacted += 1;
      }
    }
    expect(redacted).toBeGreaterThan(0);
  });

  it('an email in a note is redacted for a reader without contact email access, even in the write answer', async () => {
    const created = await demo.send('POST', '/crm/v1/notes', aliceNoReach, {
      json: {
        body: 'mail me at jo@example.com',
        contact_id: (await ownAccountContact(demo, alice, 'alice@example.com')).id,
      },
    });
    expect(created.status).toBe(201);
    const note = await json<Row>(created);
    expect(note.body).toBe('mail me at [redacted:email]');
    expect((await json<Row>(await demo.get(`/crm/v1/notes/${note.id}`, alice))).body).toBe(
      'mail me at jo@example.com',
    );
  });

  it('a card number is redacted for every reader, managers included', async () => {
    const contact = await ownAccountContact(demo, alice, 'alice@example.com');
    const created = await demo.send('POST', '/crm/v1/notes', alice, {
      json: { body: 'card 4111 1111 1111 1111 on file', contact_id: contact?.id },
    });
    expect(created.status).toBe(201);
    const { id } = await json<Row>(created);
    for (const token of [alice, bob]) {
      expect((await json<Row>(await demo.get(`/crm/v1/notes/${id}`, token))).body).toBe(
        'card [redacted:payment_card] on file',
      );
    }
  });
});

describe('masking: the unmasked value never leaves', () => {
  it('a rep gets phones as last four digits in lists and single reads; national ids are out of reach', async () => {
    const page = await json<Page>(await demo.get('/crm/v1/contacts?limit=5&fields=phone', alice));
    for (const r of page.records) expect(r.phone).toMatch(/^\*\*\*\d{4}$/);
    const one = await json<Row>(
      await demo.get(`/crm/v1/contacts/${page.records[0]?.id}?fields=phone`, alice),
    );
    expect(one.phone).toMatch(/^\*\*\*\d{4}$/);
    await expectProblem(
      await demo.get('/crm/v1/contacts?fields=national_id', alice),
      403,
      'FIELD_NOT_ALLOWED',
    );
  });
});

describe('aggregates', () => {
  const emeaStages = async () =>
    (
      await db.all<{ stage: string; n: number | string; total: number | string }>(
        "select stage, count(*) as n, sum(amount) as total from crm_opportunities where territory = 'EMEA' group by stage",
      )
    ).map((g) => ({ stage: g.stage, n: Number(g.n), total: Number(g.total) }));

  it('pipeline-dashboard shows the pipeline by stage: sums and counts of its territory only, small groups suppressed', async () => {
    const response = await demo.get(
      '/crm/v1/opportunities/aggregate?group_by=stage&metric=sum(amount)&metric=count',
      dashboard,
    );
    expect(response.status).toBe(200);
    const answer = await json<{ groups: Row[]; suppressed_groups: number }>(response);
    const expected = await emeaStages();
    const big = expected.filter((g) => g.n >= 5);
    expect(answer.groups.map((g) => g.stage).sort()).toEqual(big.map((g) => g.stage).sort());
    for (const group of answer.groups) {
      const truth = big.find((g) => g.stage === group.stage);
      expect(group.count).toBe(truth?.n);
      expect(group.sum_amount).toBeCloseTo(truth?.total as number, 2);
    }
    expect(answer.suppressed_groups).toBe(expected.length - big.length);
    const [row] = await auditEventsOf(demo, carol, requestIdOf(response));
    expect(row?.event).toMatchObject({
      action: 'crm.aggregate',
      outcome: 'allow',
      scope: 'read:opportunity.aggregate',
    });
  });

  it('pipeline by month: group_by=close_date:month sums each month of its territory; the exact date is refused', async () => {
    const response = await demo.get(
      '/crm/v1/opportunities/aggregate?group_by=close_date:month&metric=sum(amount)&metric=count',
      dashboard,
    );
    expect(response.status).toBe(200);
    const answer = await json<{ groups: Row[]; suppressed_groups: number }>(response);
    const months = (
      await db.all<{ month: string; n: number | string; total: number | string }>(
        `select substr(close_date, 1, 7) as month, count(*) as n, sum(amount) as total
         from crm_opportunities where territory = 'EMEA' group by substr(close_date, 1, 7)`,
      )
    ).map((m) => ({ month: m.month, n: Number(m.n), total: Number(m.total) }));
    expect(answer.groups.length).toBeGreaterThan(1);
    for (const group of answer.groups) {
      const truth = months.find((m) => m.month === group['close_date:month']);
      expect(group['close_date:month']).toMatch(/^\d{4}-\d{2}$/);
      expect(group.count).toBe(truth?.n);
      expect(group.sum_amount).toBeCloseTo(truth?.total as number, 2);
    }
    const [row] = await auditEventsOf(demo, carol, requestIdOf(response));
    expect(row?.event.reason).toMatch(/^group_by close_date:month; \d+ groups returned/);
    for (const path of [
      '/crm/v1/opportunities/aggregate?group_by=close_date',
      `/crm/v1/opportunities/aggregate?group_by=close_date:month&filter=${encodeURIComponent("close_date ge '2025-01-01'")}`,
    ]) {
      await expectProblem(await demo.get(path, dashboard), 422, 'INVALID_INPUT');
    }
  });

  it('every filter an aggregate is sent is in its audit event, with the fields it named', async () => {
    const filter = "stage ne 'Closed Lost'";
    const response = await demo.get(
      `/crm/v1/opportunities/aggregate?group_by=stage&metric=sum(amount)&filter=${encodeURIComponent(filter)}`,
      dashboard,
    );
    expect(response.status).toBe(200);
    const [row] = await auditEventsOf(demo, carol, requestIdOf(response));
    expect(row?.event.reason).toContain(`group_by stage; filter ${filter}; `);
    expect(row?.event.fields).toBe('amount,stage');
  });

  it('groups smaller than the minimum are suppressed and counted', async () => {
    const answer = await json<{ groups: Row[]; suppressed_groups: number }>(
      await demo.get('/crm/v1/opportunities/aggregate?group_by=amount', dashboard),
    );
    expect(answer.suppressed_groups).toBeGreaterThan(0);
    for (const group of answer.groups) expect(group.count).toBeGreaterThanOrEqual(5);
  });

  it('an aggregate cannot be narrowed by a filter on a measure to a group of one (422, nothing revealed)', async () => {
    const single = (await db.get<{ amount: number }>(
      `select amount from crm_opportunities where territory = 'EMEA'
       group by amount having count(*) = 1 order by amount limit 1`,
    )) as { amount: number };
    const filter = encodeURIComponent(`amount eq ${single.amount}`);
    for (const path of [
      `/crm/v1/opportunities/aggregate?group_by=stage&metric=sum(amount)&filter=${filter}`,
      `/crm/v1/opportunities/aggregate?metric=avg(amount)&filter=${filter}`,
    ]) {
      const problem = await expectProblem(await demo.get(path, dashboard), 422, 'INVALID_INPUT');
      expect(problem.field).toBe('amount');
      expect(JSON.stringify(problem)).not.toContain(String(single.amount));
    }
  });

  it('avg always; min and max only when at least k opportunities hold that amount', async () => {
    const answer = await json<{ groups: Row[] }>(
      await demo.get(
        '/crm/v1/opportunities/aggregate?metric=avg(amount)&metric=min(amount)&metric=max(amount)',
        dashboard,
      ),
    );
    expect(answer.groups).toHaveLength(1);
    const [all] = answer.groups;
    const extremes = (await db.get<{ low: number; high: number; lows: number; highs: number }>(
      `select min(amount) as low, max(amount) as high,
         (select count(*) from crm_opportunities where territory = 'EMEA' and amount = (select min(amount) from crm_opportunities where territory = 'EMEA')) as lows,
         (select count(*) from crm_opportunities where territory = 'EMEA' and amount = (select max(amount) from crm_opportunities where territory = 'EMEA')) as highs
       from crm_opportunities where territory = 'EMEA'`,
    )) as { low: number; high: number; lows: number; highs: number };
    expect(all?.min_amount).toBe(extremes.lows >= 5 ? extremes.low : null);
    expect(all?.max_amount).toBe(extremes.highs >= 5 ? extremes.high : null);
    expect(Number(all?.avg_amount)).toBeGreaterThan(0);
  });

  it('a masked field cannot be grouped by (422), a field outside the aggregate scope is 403', async () => {
    const maskedField = await expectProblem(
      await demo.get('/crm/v1/opportunities/aggregate?group_by=owner', dashboard),
      422,
      'INVALID_INPUT',
    );
    expect(maskedField.fields).toEqual(['owner']);
    const outside = await expectProblem(
      await demo.get('/crm/v1/opportunities/aggregate?group_by=name', dashboard),
      403,
      'FIELD_NOT_ALLOWED',
    );
    expect(outside.fields).toEqual(['name']);
    await expectProblem(
      await demo.get('/crm/v1/opportunities/aggregate?metric=drop(amount)', dashboard),
      422,
      'INVALID_INPUT',
    );
  });

  it('an aggregate scope opens no raw record, and aggregates need one', async () => {
    await expectProblem(await demo.get('/crm/v1/opportunities?limit=1', dashboard), 403, 'SCOPE_MISSING');
    await expectProblem(
      await demo.get('/crm/v1/contacts/aggregate?group_by=title', alice),
      403,
      'SCOPE_MISSING',
    );
  });
});
