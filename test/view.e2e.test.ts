import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
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
import './support/fast-check-seed.js';

/**
 * The caller's view over real HTTP (DESIGN.md "The caller's view"), attacked as issue 15 attacked it:
 * a redacted phone recovered by bisecting a filter, a withheld note named by a cursor or read one bit at
 * a time, a filter run on the real values of contacts without consent, one opportunity rebuilt from
 * aggregates, a note created off no record, and a notes rule that held for one app only. One demo runs
 * consent in exclude mode, one in mask mode.
 */

const quietDetection = { 'detect.enabled': false };
// The property test and the paging tests make hundreds of requests; limits have suites of their own.
const unlimited = { burst: 1_000_000, ratePerSecond: 1_000_000 };
const relaxedGuard = {
  'limits.bulkExport': { minimum: 100_000, maxTracked: 100_000 },
  'limits.perUser': unlimited,
  'limits.perApp': unlimited,
  'limits.global': unlimited,
};
const purposes = { 'gateway.consent.appPurposes': { 'call-notes': 'sales_outreach' } };
const callNotes =
  'read:account.basic read:contact.basic read:contact.reach read:note.basic write:contact.note';
/** gateway.aggregate.minGroupSize: k. */
const k = 5;

let demo: Demo;
let masked: Demo;
let db: TestSql;
let alice: string;
let bob: string;
let carol: string;
let dashboard: string;

beforeAll(async () => {
  [demo, masked] = await Promise.all([
    startDemo({ config: { ...quietDetection, ...relaxedGuard, ...purposes } }),
    startDemo({
      config: { ...quietDetection, ...relaxedGuard, ...purposes, 'gateway.consent.mode': 'mask' },
    }),
  ]);
  db = await openTestSql(demo.dataDir);
  [alice, bob, carol, dashboard] = await Promise.all([
    demo.accessToken('alice', 'call-notes', callNotes),
    demo.accessToken('bob', 'call-notes', callNotes),
    demo.accessToken('carol', 'console', 'audit:read'),
    demo.accessToken('bob', 'pipeline-dashboard', 'read:opportunity.aggregate'),
  ]);
});

afterAll(async () => {
  await db?.close();
  await Promise.all([demo?.stop(), masked?.stop()]);
});

const q = (text: string) => encodeURIComponent(text);
const consented = (flags: string | null) =>
  flags !== null && (JSON.parse(flags) as string[]).includes('sales_outreach');

interface Note {
  id: string;
  author: string;
  contact_id: string | null;
  allowed: boolean;
}

/** EMEA notes in id order, with whether alice may see each (its contact, if any, consented). */
async function emeaNotes(): Promise<Note[]> {
  const rows = await db.all<{
    id: string;
    author: string;
    contact_id: string | null;
    consent: string | null;
  }>(
    `select n.id, n.author, n.contact_id, c.consent from crm_notes n
     left join crm_contacts c on c.id = n.contact_id where n.territory = 'EMEA' order by n.id`,
  );
  return rows.map(({ consent, ...n }) => ({ ...n, allowed: n.contact_id === null || consented(consent) }));
}

describe('filters see only what the view shows whole (item 1)', () => {
  it('a rep shown [redacted:phone] in a note cannot bisect the text: ranges and equality on it are 422, audited', async () => {
    const note = (await db.get<{ id: string; body: string }>(
      "select id, body from crm_notes where territory = 'EMEA' and body like '%Prefers to be called on +%' order by id limit 1",
    )) as { id: string; body: string };
    const shown = await json<Row>(await demo.get(`/crm/v1/notes/${note.id}`, alice));
    expect(String(shown.body)).toContain('[redacted:phone]');
    const prefix = note.body.slice(0, note.body.indexOf('+') + 4);
    for (const filter of [
      `id eq '${note.id}' and body ge '${prefix}'`,
      `id eq '${note.id}' and body lt '${prefix}~'`,
      `body eq '${note.body}'`,
    ]) {
      const response = await demo.get(`/crm/v1/notes?filter=${q(filter)}`, alice);
      const problem = await expectProblem(response, 422, 'INVALID_INPUT');
      expect(problem.field).toBe('body');
      expect(JSON.stringify(problem)).not.toContain(prefix);
      const [row] = await auditEventsOf(demo, carol, requestIdOf(response));
      expect(row?.event).toMatchObject({ outcome: 'deny', action: 'crm.list' });
    }
  });

  it('order comparisons only on numbers and dates: text by order is 422, dates by order and text by equality are answered', async () => {
    const byName = await demo.get(`/crm/v1/contacts?filter=${q("last_name ge 'M'")}`, alice);
    expect((await expectProblem(byName, 422, 'INVALID_INPUT')).field).toBe('last_name');
    const phone = await demo.get(`/crm/v1/contacts?filter=${q("phone eq '+44 20 7946 0000'")}`, alice);
    expect((await expectProblem(phone, 422, 'INVALID_INPUT')).field).toBe('phone');
    expect(
      (await demo.get(`/crm/v1/notes?limit=2&filter=${q("created_at ge '2025-01-01'")}`, alice)).status,
    ).toBe(200);
    expect(
      (await demo.get(`/crm/v1/contacts?limit=2&filter=${q("last_name eq 'Smith'")}`, alice)).status,
    ).toBe(200);
  });
});

describe('records withheld for consent leak through neither cursors nor filters (item 2)', () => {
  /**
   * A contact without consent and one with it whose notes, taken together in id order, start with a
   * withheld note: a page of one over them ended on that withheld note before.
   */
  async function hiddenFirst(): Promise<{ hidden: Note; filter: string }> {
    const notes = await emeaNotes();
    const about = (contact: string) => notes.filter((n) => n.contact_id === contact);
    for (const hidden of notes.filter((n) => !n.allowed)) {
      const visible = notes.find(
        (n) =>
          n.allowed && n.contact_id !== null && n.id > hidden.id && about(n.contact_id)[0]!.id > hidden.id,
      );
      const own = about(hidden.contact_id as string);
      if (visible && own[0]?.id === hidden.id) {
        return { hidden, filter: `contact_id in ('${hidden.contact_id}', '${visible.contact_id}')` };
      }
    }
    throw new Error('the seed has no withheld note before a visible one');
  }

  it('a page never ends on a withheld note: the cursor names no hidden record and a page is never empty with a cursor', async () => {
    const { filter } = await hiddenFirst();
    const page = await json<Page>(await demo.get(`/crm/v1/notes?limit=1&filter=${q(filter)}`, alice));
    expect(page.records).toHaveLength(1);
    expect((await emeaNotes()).find((n) => n.id === page.records[0]?.id)?.allowed).toBe(true);
  });

  it('guessing a withheld note one bit at a time answers the same whether the guess is right or wrong', async () => {
    const { hidden, filter } = await hiddenFirst();
    const visibleContact = /, '([^']+)'\)$/.exec(filter)?.[1] as string;
    const answers = [];
    for (const guess of [hidden.author, 'nobody@example.com']) {
      const probe = `${filter} and (author eq '${guess}' or contact_id eq '${visibleContact}')`;
      const page = await json<Page>(await demo.get(`/crm/v1/notes?limit=1&filter=${q(probe)}`, alice));
      // The cursor itself is bound to the filter text; whether there is one is what could leak.
      answers.push({ records: page.records, more: page.next_cursor !== null });
    }
    expect(answers[0]).toEqual(answers[1]);
  });

  it('paging every note: full pages until the last, no withheld note, no cursor that decodes to one', async () => {
    const notes = await emeaNotes();
    const hidden = notes.filter((n) => !n.allowed).map((n) => n.id);
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const page: Page = await json<Page>(
        await demo.get(`/crm/v1/notes?limit=40${cursor ? `&cursor=${cursor}` : ''}`, alice),
      );
      seen.push(...page.records.map((r) => String(r.id)));
      cursor = page.next_cursor;
      if (cursor) {
        expect(page.records).toHaveLength(40);
        const decoded = Buffer.from(cursor, 'base64url').toString('latin1');
        for (const id of hidden) expect(decoded).not.toContain(id);
      }
    } while (cursor);
    expect(seen).toEqual(notes.filter((n) => n.allowed).map((n) => n.id));
  });

  it('a cursor is bound to its caller, app, object and filter, and cannot be altered (422)', async () => {
    const first = await json<Page>(await demo.get('/crm/v1/notes?limit=2', alice));
    const cursor = first.next_cursor as string;
    expect(cursor).toEqual(expect.any(String));
    expect((await demo.get(`/crm/v1/notes?limit=2&cursor=${cursor}`, alice)).status).toBe(200);
    const elsewhere = [
      demo.get(`/crm/v1/notes?limit=2&cursor=${cursor}`, bob),
      demo.get(`/crm/v1/notes?limit=2&cursor=${cursor}&filter=${q("author eq 'alice@example.com'")}`, alice),
      demo.get(`/crm/v1/contacts?limit=2&cursor=${cursor}`, alice),
      demo.get(
        `/crm/v1/notes?limit=2&cursor=${cursor.slice(0, -1)}${cursor.endsWith('A') ? 'B' : 'A'}`,
        alice,
      ),
    ];
    for (const response of await Promise.all(elsewhere)) {
      expect((await expectProblem(response, 422, 'INVALID_INPUT')).parameter).toBe('cursor');
    }
  });

  it('in mask mode a filter does not run on the real values of a contact without consent', async () => {
    const token = await masked.accessToken('alice', 'call-notes', callNotes);
    const maskedDb = await openTestSql(masked.dataDir);
    const contacts = await maskedDb.all<{ id: string; email: string; consent: string }>(
      "select id, email, consent from crm_contacts where territory = 'EMEA' and email is not null order by id",
    );
    await maskedDb.close();
    const refuser = contacts.find((c) => !consented(c.consent)) as { id: string; email: string };
    const giver = contacts.find((c) => consented(c.consent)) as { id: string; email: string };
    const guess = await json<Page>(
      await masked.get(`/crm/v1/contacts?filter=${q(`email eq '${refuser.email}'`)}`, token),
    );
    expect(guess).toEqual({ records: [], next_cursor: null });
    const byId = await json<Row>(await masked.get(`/crm/v1/contacts/${refuser.id}`, token));
    expect(byId.email).toBeNull();
    const found = await json<Page>(
      await masked.get(`/crm/v1/contacts?filter=${q(`email eq '${giver.email}'`)}`, token),
    );
    expect(found.records.map((r) => r.id)).toEqual([giver.id]);
  });
});

describe('property: what a list returns is exactly what the view allows (real HTTP)', () => {
  it('random filters over the fields alice may filter, paged with random page sizes', async () => {
    const everything = new Map<string, Row>();
    let cursor: string | null = null;
    do {
      const page: Page = await json<Page>(
        await demo.get(`/crm/v1/contacts?limit=100${cursor ? `&cursor=${cursor}` : ''}`, alice),
      );
      for (const record of page.records) everything.set(String(record.id), record);
      cursor = page.next_cursor;
    } while (cursor);
    const sample = [...everything.values()].slice(0, 30);
    const accounts = [...new Set(sample.map((r) => String(r.account_id)))];
    const valueOf = (field: string) => fc.constantFrom(...sample.map((r) => String(r[field] ?? 'none')));
    const comparison = fc.oneof(
      valueOf('last_name').map((v) => `last_name eq '${v.replaceAll("'", "''")}'`),
      valueOf('account_id').map((v) => `account_id eq '${v}'`),
      valueOf('title').map((v) => `title ne '${v.replaceAll("'", "''")}'`),
      valueOf('email').map((v) => `email eq '${v.replaceAll("'", "''")}'`),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(comparison, { minLength: 1, maxLength: 3 }),
        fc.constantFrom('and', 'or'),
        fc.integer({ min: 1, max: 25 }),
        fc.subarray(accounts, { minLength: 1, maxLength: 3 }),
        async (parts, joiner, limit, within) => {
          // Within a few accounts, so that a page of one over a wide `ne` stays a few requests.
          const filter = `account_id in (${within.map((a) => `'${a}'`).join(', ')}) and (${parts.join(` ${joiner} `)})`;
          const seen: Row[] = [];
          let next: string | null = null;
          do {
            const response = await demo.get(
              `/crm/v1/contacts?limit=${limit}&filter=${q(filter)}${next ? `&cursor=${next}` : ''}`,
              alice,
            );
            expect(response.status).toBe(200);
            const page = await json<Page>(response);
            if (page.next_cursor) expect(page.records).toHaveLength(limit);
            seen.push(...page.records);
            next = page.next_cursor;
          } while (next);
          // Every record returned is one alice may see, exactly as she sees it, never a masked value.
          for (const record of seen) expect(record).toEqual(everything.get(String(record.id)));
          expect(new Set(seen.map((r) => r.id)).size).toBe(seen.length);
        },
      ),
      { numRuns: 12 },
    );
  });
});

describe('aggregates single out no opportunity (item 3)', () => {
  const aggregate = async (query: string) => {
    const response = await demo.get(`/crm/v1/opportunities/aggregate?${query}`, dashboard);
    return {
      response,
      answer: response.status === 200 ? await json<{ groups: Row[] }>(response) : undefined,
    };
  };

  it('the differencing attack of the issue: max(amount) and max by stage never name one record', async () => {
    const overall = (await aggregate('metric=max(amount)&metric=min(amount)')).answer;
    const byStage = (await aggregate('group_by=stage&metric=max(amount)&metric=min(amount)')).answer;
    const released = [...(overall?.groups ?? []), ...(byStage?.groups ?? [])]
      .flatMap((g) => [g.max_amount, g.min_amount])
      .filter((v) => v !== null && v !== undefined);
    for (const value of released) {
      const holders = await db.get<{ n: number }>(
        "select count(*) as n from crm_opportunities where territory = 'EMEA' and amount = ?",
        value,
      );
      expect(Number(holders?.n)).toBeGreaterThanOrEqual(k);
    }
    // Where the attack would have found its record, the answer is null.
    const top = await db.get<{ amount: number }>(
      "select max(amount) as amount from crm_opportunities where territory = 'EMEA'",
    );
    expect(JSON.stringify([overall, byStage])).not.toContain(String(top?.amount));
  });

  it('the total less the shown groups, or less a filtered total, is never fewer than k records', async () => {
    const total = Number((await aggregate('metric=count')).answer?.groups[0]?.count);
    const stages = await db.all<{ stage: string; n: number }>(
      "select stage, count(*) as n from crm_opportunities where territory = 'EMEA' group by stage order by n",
    );
    const shown = (await aggregate('group_by=stage')).answer?.groups ?? [];
    const residual = total - shown.reduce((n, g) => n + Number(g.count), 0);
    expect(residual === 0 || residual >= k).toBe(true);
    for (const { stage } of stages) {
      const { response, answer } = await aggregate(`filter=${q(`stage ne '${stage}'`)}`);
      if (response.status === 200) {
        const difference = total - Number(answer?.groups[0]?.count ?? 0);
        expect(difference === 0 || difference >= k).toBe(true);
      } else {
        expect((await expectProblem(response, 422, 'INVALID_INPUT')).field).toBe('stage');
      }
    }
  });

  it('filters only on the dimensions the scope declares: a measure is 422; a filter with group_by only on that field', async () => {
    const { response } = await aggregate(`metric=count&filter=${q('amount gt 100000')}`);
    expect((await expectProblem(response, 422, 'INVALID_INPUT')).field).toBe('amount');
    const grouped = await demo.get(
      `/crm/v1/opportunities/aggregate?group_by=owner&filter=${q("stage eq 'Closed Won'")}`,
      dashboard,
    );
    expect((await expectProblem(grouped, 422, 'INVALID_INPUT')).field).toBe('stage');
  });
});

describe('writes take the same decision as reads (items 6 and 7)', () => {
  it('a note hanging off no record is 422, not created outside every record-level decision', async () => {
    const before = await db.get<{ n: number }>('select count(*) as n from crm_notes');
    const response = await demo.send('POST', '/crm/v1/notes', alice, { json: { body: 'orphan note' } });
    expect((await expectProblem(response, 422, 'INVALID_INPUT')).fields).toEqual([
      'contact_id',
      'opportunity_id',
      'account_id',
    ]);
    expect(await db.get<{ n: number }>('select count(*) as n from crm_notes')).toEqual(before);
  });

  it('a self-registered app holding a note write scope is held to notes-on-assigned-accounts', async () => {
    const maker = await demo.accessToken('alice', 'console', 'maker');
    const registered = await demo.send('POST', '/admin/v1/apps', maker, {
      json: {
        name: 'field-notes',
        owner: 'alice@example.com',
        purpose: 'log field visit notes on my accounts',
        scopes: ['read:account.basic', 'read:contact.basic', 'read:note.basic', 'write:contact.note'],
        data_classes: ['internal'],
        retention_days: 30,
        expected_users: 12,
        telemetry: true,
        consent_purpose: 'sales_outreach',
        redirect_uris: ['http://localhost:5173/callback'],
      },
    });
    expect(registered.status).toBe(201);
    expect(await json<Row>(registered)).toMatchObject({ id: 'field-notes', state: 'approved' });
    const token = await demo.accessToken(
      'alice',
      'field-notes',
      'read:account.basic read:contact.basic write:contact.note',
    );
    // A contact of bob's account in alice's territory: visible to her, not assigned to her.
    const bobs = await ownAccountContact(demo, bob, 'bob@example.com');
    const theirs = await demo.send('POST', '/crm/v1/notes', token, {
      json: { body: 'visited', contact_id: bobs.id },
    });
    const problem = await expectProblem(theirs, 403, 'POLICY_DENIED');
    expect(problem.rule).toBe('runtime.notes-on-assigned-accounts');
    const own = await ownAccountContact(demo, alice, 'alice@example.com');
    const mine = await demo.send('POST', '/crm/v1/notes', token, {
      json: { body: 'visited', contact_id: own.id },
    });
    expect(mine.status).toBe(201);
  });

  it('a capability token creates notes only on its accounts (its `in` condition): outside is refused and nothing is stored', async () => {
    const owner = encodeURIComponent("owner eq 'alice@example.com'");
    const accounts = await json<Page>(
      await demo.get(`/crm/v1/accounts?limit=2&fields=owner&filter=${owner}`, alice),
    );
    const [inside, outside] = accounts.records.map((r) => String(r.id));
    const response = await demo.exchange('alice', 'call-notes', callNotes, {
      authorizationDetails: [{ type: 'crm_accounts', account_ids: [inside] }],
    });
    expect(response.status).toBe(200);
    const { access_token: narrowed } = await json<{ access_token: string }>(response);
    const before = await db.get<{ n: number }>('select count(*) as n from crm_notes');

    const refused = await demo.send('POST', '/crm/v1/notes', narrowed, {
      json: { body: 'visited', account_id: outside },
    });
    // The account the note would hang off lies outside the capability, so the caller cannot see it:
    // refused as any reference to a record out of view, before the row filter of the write is reached.
    const problem = await expectProblem(refused, 422, 'INVALID_INPUT');
    expect(problem).toMatchObject({
      field: 'account_id',
      detail: 'account_id does not name a record you can see',
    });
    expect(await db.get<{ n: number }>('select count(*) as n from crm_notes')).toEqual(before);

    const created = await demo.send('POST', '/crm/v1/notes', narrowed, {
      json: { body: 'visited', account_id: inside },
    });
    expect(created.status).toBe(201);
    expect(await json<Row>(created)).toMatchObject({ account_id: inside });
  });
});
