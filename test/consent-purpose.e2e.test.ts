import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { gatehouseAsync } from './support/cli.js';
import { openTestSql, type TestSql } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';
import { auditEventsOf, expectProblem, json, requestIdOf, type Page, type Row } from './support/http.js';

/**
 * The consent purpose of an app's plan, end to end: a maker names it in the manifest, the catalog
 * approves it, and the gateway lets the app see only the contacts who consented to it; a change of
 * purpose waits for a reviewer while the approved one stays in force; a plan with none sees no contact
 * and says so; a purpose outside the vocabulary is refused naming the allowed ones. Configuration names
 * a purpose for `lead-caller` too, which its approved plan overrides.
 */

let demo: Demo;
let db: TestSql;
let dir: string;
const tokens = new Map<string, string>();

interface AppView {
  id: string;
  state: string;
  consent_purpose: string | null;
  warnings: string[];
  pending_change: { manifest: { consent_purpose?: string } } | null;
  change?: string;
  history?: { action: string; reason: string }[];
}

const manifest = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  owner: 'alice@example.com',
  purpose: 'call the leads of my territory',
  scopes: ['read:account.basic', 'read:contact.basic', 'read:note.basic'],
  data_classes: ['internal'],
  retention_days: 30,
  expected_users: 12,
  telemetry: true,
  redirect_uris: ['http://localhost:5173/callback'],
  ...extra,
});

/** A console token: `maker` for anyone, plus `review` for rita, `audit:read` for carol. */
async function consoleToken(user: string): Promise<string> {
  const scope = { rita: 'maker review', carol: 'audit:read' }[user] ?? 'maker';
  if (!tokens.has(user)) tokens.set(user, await demo.accessToken(user, 'console', scope));
  return tokens.get(user) as string;
}

async function show(appId: string): Promise<AppView> {
  const response = await demo.get(`/admin/v1/apps/${appId}`, await consoleToken('rita'));
  expect(response.status).toBe(200);
  return json<AppView>(response);
}

async function everyRecord(path: string, token: string): Promise<Row[]> {
  const out: Row[] = [];
  let cursor: string | null = null;
  do {
    const response = await demo.get(`${path}?limit=100${cursor ? `&cursor=${cursor}` : ''}`, token);
    expect(response.status).toBe(200);
    const page = await json<Page>(response);
    out.push(...page.records);
    cursor = page.next_cursor;
  } while (cursor);
  return out;
}

/** Ids of the EMEA contacts (alice's territory) whose consent holds `purpose`, from the store itself. */
async function consenting(purpose: string): Promise<string[]> {
  const rows = await db.all<{ id: string; consent: string }>(
    "select id, consent from crm_contacts where territory = 'EMEA' order by id",
  );
  return rows.filter((r) => (JSON.parse(r.consent) as string[]).includes(purpose)).map((r) => r.id);
}

const idsOf = (records: readonly Row[]) => records.map((r) => String(r.id)).sort();

/** The contact ids `token` lists, polled until they are `expected` or `ms` have passed. */
async function contactsWithin(token: string, expected: readonly string[], ms: number): Promise<string[]> {
  const started = Date.now();
  for (;;) {
    const seen = idsOf(await everyRecord('/crm/v1/contacts', token));
    if (JSON.stringify(seen) === JSON.stringify(expected) || Date.now() - started > ms) return seen;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

beforeAll(async () => {
  demo = await startDemo({
    config: {
      // Whole contact lists are read here, which the bulk-export guard (tested on its own) would refuse.
      'limits.bulkExport': { minimum: 100_000, maxTracked: 100_000 },
      'gateway.consent.appPurposes': {
        'call-notes': 'sales_outreach',
        'pipeline-dashboard': 'analytics',
        // An operator's override for an app whose approved plan names a purpose of its own: the plan wins.
        'lead-caller': 'analytics',
      },
    },
  });
  db = await openTestSql(demo.dataDir);
  dir = mkdtempSync(join(tmpdir(), 'gatehouse-consent-purpose-'));
});

afterAll(async () => {
  await db?.close();
  await demo?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('an app whose plan names a consent purpose', () => {
  it('is approved through the catalog and sees exactly the contacts who consented to it', async () => {
    const response = await demo.send('POST', '/admin/v1/apps', await consoleToken('alice'), {
      json: manifest('lead-caller', { consent_purpose: 'sales_outreach' }),
    });
    expect(response.status).toBe(201);
    expect(await json<AppView>(response)).toMatchObject({
      id: 'lead-caller',
      state: 'approved',
      consent_purpose: 'sales_outreach',
      warnings: [],
    });

    const token = await demo.accessToken('alice', 'lead-caller', 'read:contact.basic');
    const expected = await consenting('sales_outreach');
    const all = await db.all<{ id: string }>("select id from crm_contacts where territory = 'EMEA'");
    // The seed leaves a share of contacts without that consent, so the filter is seen to work.
    expect(expected.length).toBeGreaterThan(0);
    expect(expected.length).toBeLessThan(all.length);
    expect(idsOf(await everyRecord('/crm/v1/contacts', token))).toEqual(expected);
    // Not configuration's `analytics` for this app: the approved plan's purpose wins.
    expect(expected).not.toEqual(await consenting('analytics'));

    const refuser = (
      await db.all<{ id: string; consent: string }>(
        "select id, consent from crm_contacts where territory = 'EMEA' order by id",
      )
    ).find((c) => !(JSON.parse(c.consent) as string[]).includes('sales_outreach'));
    await expectProblem(await demo.get(`/crm/v1/contacts/${refuser?.id}`, token), 404, 'NOT_FOUND');
  });

  it('a change of purpose waits for a reviewer while the approved purpose stays in force', async () => {
    const token = await demo.accessToken('alice', 'lead-caller', 'read:contact.basic');
    const change = await demo.send(
      'PUT',
      '/admin/v1/apps/lead-caller/manifest',
      await consoleToken('alice'),
      {
        json: manifest('lead-caller', { consent_purpose: 'marketing' }),
      },
    );
    expect(change.status).toBe(200);
    // The admission policy approves the new plan; the purpose change alone sends it to a reviewer.
    expect(await json<AppView>(change)).toMatchObject({
      state: 'approved',
      change: 'pending',
      consent_purpose: 'sales_outreach',
      pending_change: { manifest: { consent_purpose: 'marketing' } },
    });
    const [event] = await auditEventsOf(demo, await consoleToken('carol'), requestIdOf(change));
    expect(event?.event.reason).toContain('consent purpose sales_outreach -> marketing');

    // Past the server's one-second plan cache: still the approved purpose, never the pending one.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const outreach = await consenting('sales_outreach');
    expect(idsOf(await everyRecord('/crm/v1/contacts', token))).toEqual(outreach);

    const approval = await demo.send(
      'POST',
      '/admin/v1/apps/lead-caller/approve',
      await consoleToken('rita'),
      {
        json: { reason: 'the campaign mails only those who asked for marketing' },
      },
    );
    expect(approval.status).toBe(200);
    expect(await show('lead-caller')).toMatchObject({ consent_purpose: 'marketing', pending_change: null });
    const marketing = await consenting('marketing');
    expect(marketing).not.toEqual(outreach);
    // The same token: the purpose is the app's, read from its approved plan within a second.
    expect(await contactsWithin(token, marketing, 2000)).toEqual(marketing);
  });
});

describe('an app whose plan names no consent purpose', () => {
  it('is valid, is told why it will see no contact, and sees none, nor notes about one', async () => {
    const response = await demo.send('POST', '/admin/v1/apps', await consoleToken('alice'), {
      json: manifest('lead-lister'),
    });
    expect(response.status).toBe(201);
    const app = await json<AppView>(response);
    expect(app).toMatchObject({ state: 'approved', consent_purpose: null });
    expect(app.warnings).toEqual([
      'the plan opens contact and note fields but names no consent_purpose, so the app will see no contact (nor any note about one): add consent_purpose, one of analytics, marketing, sales_outreach',
    ]);
    expect((await show('lead-lister')).warnings).toEqual(app.warnings);

    const token = await demo.accessToken('alice', 'lead-lister', 'read:contact.basic read:note.basic');
    expect(await everyRecord('/crm/v1/contacts', token)).toEqual([]);
    const notes = await everyRecord('/crm/v1/notes', token);
    const withContact = await db.all<{ id: string }>(
      "select id from crm_notes where territory = 'EMEA' and contact_id is not null",
    );
    expect(withContact.length).toBeGreaterThan(0);
    const aboutContacts = new Set(withContact.map((n) => n.id));
    expect(notes.filter((n) => aboutContacts.has(String(n.id)))).toEqual([]);
    // Notes about no data subject are still there: only consent holds the others back.
    expect(notes.length).toBeGreaterThan(0);
  });

  it('the demo apps keep the purpose configuration gives them, with no warning', async () => {
    const callNotes = await show('call-notes');
    expect(callNotes).toMatchObject({ consent_purpose: null, warnings: [] });
    const token = await demo.accessToken('alice', 'call-notes', 'read:contact.basic');
    expect(idsOf(await everyRecord('/crm/v1/contacts', token))).toEqual(await consenting('sales_outreach'));
  });
});

describe('a consent purpose outside the vocabulary', () => {
  const allowed = 'use one of analytics, marketing, sales_outreach';

  it('is a 422 naming the purposes allowed, and nothing is registered', async () => {
    const response = await demo.send('POST', '/admin/v1/apps', await consoleToken('alice'), {
      json: manifest('lead-profiler', { consent_purpose: 'profiling' }),
    });
    const problem = await expectProblem(response, 422, 'INVALID_INPUT');
    expect(problem.detail).toContain(
      `consent_purpose: "profiling" is not a consent purpose here; ${allowed}`,
    );
    const missing = await demo.get('/admin/v1/apps/lead-profiler', await consoleToken('rita'));
    expect(missing.status).toBe(404);
  });

  it('as a plan change of an approved app is refused too, and the approved plan stays', async () => {
    const response = await demo.send(
      'PUT',
      '/admin/v1/apps/lead-caller/manifest',
      await consoleToken('alice'),
      {
        json: manifest('lead-caller', { consent_purpose: 'everything' }),
      },
    );
    expect((await expectProblem(response, 422, 'INVALID_INPUT')).detail).toContain(allowed);
    expect(await show('lead-caller')).toMatchObject({ consent_purpose: 'marketing', pending_change: null });
  });

  it('is a one-line CLI error naming the purposes allowed (register and policy check)', async () => {
    const file = join(dir, 'lead-profiler.json');
    writeFileSync(file, JSON.stringify(manifest('lead-profiler', { consent_purpose: 'profiling' })));
    const [register, check] = await Promise.all([
      gatehouseAsync(['app', 'register', file, '--as', 'alice@example.com', '--data-dir', demo.dataDir]),
      gatehouseAsync(['policy', 'check', file, '--data-dir', demo.dataDir]),
    ]);
    expect(register.code).not.toBe(0);
    expect(register.stderr.trim().split('\n')).toHaveLength(1);
    expect(register.stderr).toContain(allowed);
    expect(check.code).toBe(2);
    expect(`${check.stdout}${check.stderr}`).toContain(allowed);
  }, 180_000);
});
