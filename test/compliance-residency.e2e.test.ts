import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTestSql, type TestSql } from './support/database.js';
import { startDemo, type Demo } from './support/demo.js';
import { auditEventsOf, expectProblem, json, requestIdOf, type Page } from './support/http.js';

/**
 * Residency end to end over real HTTP: EMEA records reside in the EU (the default
 * `compliance.residency`), Gatehouse's home region is the EU, and the default library's
 * `runtime.residency-eu-transfer` keeps EU-resident records from an app that runs in the US unless its
 * plan declares that transfer with its mechanism. Refused records are invisible (the row filter), a
 * single one is 404 as a hidden record is; an allowed transfer is recorded in the audit event.
 */

let demo: Demo;
let db: TestSql;
const tokens = new Map<string, string>();

const manifest = (name: string, extra: Record<string, unknown> = {}) => ({
  name,
  owner: 'alice@example.com',
  purpose: 'call the leads of my territory',
  scopes: ['read:account.basic'],
  data_classes: ['internal'],
  retention_days: 30,
  expected_users: 12,
  telemetry: true,
  redirect_uris: ['http://localhost:5173/callback'],
  ...extra,
});

async function consoleToken(user: string): Promise<string> {
  const scope = { rita: 'maker review', carol: 'audit:read' }[user] ?? 'maker';
  if (!tokens.has(user)) tokens.set(user, await demo.accessToken(user, 'console', scope));
  return tokens.get(user) as string;
}

async function register(body: unknown): Promise<Response> {
  return demo.send('POST', '/admin/v1/apps', await consoleToken('alice'), { json: body });
}

async function firstAccount(territory: string): Promise<string> {
  const [row] = await db.all<{ id: string }>(
    `select id from crm_accounts where territory = '${territory}' order by id limit 1`,
  );
  return String(row?.id);
}

beforeAll(async () => {
  demo = await startDemo();
  db = await openTestSql(demo.dataDir);
  const us = await register(manifest('us-dialer', { residency: { region: 'US' } }));
  expect(us.status).toBe(201);
  const scc = await register(
    manifest('us-dialer-scc', {
      residency: { region: 'US', transfers: ['EU'], transfer_mechanism: 'SCC 2021/914 module 2' },
    }),
  );
  expect(scc.status).toBe(201);
});

afterAll(async () => {
  await db?.close();
  await demo?.stop();
});

describe('EU-resident records and an app outside the EU', () => {
  it('are invisible to an app in the US whose plan declares no transfer, and one of them is 404', async () => {
    const token = await demo.accessToken('alice', 'us-dialer', 'read:account.basic');
    const list = await demo.get('/crm/v1/accounts?limit=50', token);
    expect(list.status).toBe(200);
    // alice's territory is EMEA: every record she could read resides in the EU.
    expect((await json<Page>(list)).records).toEqual([]);
    await expectProblem(
      await demo.get(`/crm/v1/accounts/${await firstAccount('EMEA')}`, token),
      404,
      'NOT_FOUND',
    );
    const [event] = await auditEventsOf(demo, await consoleToken('carol'), requestIdOf(list));
    expect(event?.event).toMatchObject({ outcome: 'allow', app_id: 'us-dialer', record_count: 0 });
    expect(event?.event).not.toHaveProperty('transfer');
  });

  it('stay invisible in aggregates and filters that name them', async () => {
    const token = await demo.accessToken('alice', 'us-dialer', 'read:account.basic');
    const filtered = await demo.get(
      `/crm/v1/accounts?filter=${encodeURIComponent("territory eq 'EMEA'")}&limit=5`,
      token,
    );
    expect(filtered.status).toBe(200);
    expect((await json<Page>(filtered)).records).toEqual([]);
  });

  it('do not hide records of the app’s own region', async () => {
    const token = await demo.accessToken('erin', 'us-dialer', 'read:account.basic');
    const page = await json<Page>(await demo.get('/crm/v1/accounts?limit=5', token));
    expect(page.records.length).toBeGreaterThan(0);
    expect(new Set(page.records.map((r) => r.territory))).toEqual(new Set(['NA']));
    const one = await demo.get(`/crm/v1/accounts/${await firstAccount('NA')}`, token);
    expect(one.status).toBe(200);
  });
});

describe('a transfer the plan declares', () => {
  it('serves EU-resident records to the US app and records the transfer in the audit event', async () => {
    const token = await demo.accessToken('alice', 'us-dialer-scc', 'read:account.basic');
    const list = await demo.get('/crm/v1/accounts?limit=5', token);
    expect(list.status).toBe(200);
    const records = (await json<Page>(list)).records;
    expect(records.length).toBe(5);
    expect(new Set(records.map((r) => r.territory))).toEqual(new Set(['EMEA']));
    const one = await demo.get(`/crm/v1/accounts/${await firstAccount('EMEA')}`, token);
    expect(one.status).toBe(200);
    const carol = await consoleToken('carol');
    for (const response of [list, one]) {
      const [event] = await auditEventsOf(demo, carol, requestIdOf(response));
      expect(event?.event).toMatchObject({ outcome: 'allow', app_id: 'us-dialer-scc', transfer: 'EU>US' });
    }
  });

  it('is no transfer for an app at home in the EU (the demo apps)', async () => {
    const token = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const list = await demo.get('/crm/v1/accounts?limit=5', token);
    expect((await json<Page>(list)).records.length).toBe(5);
    const [event] = await auditEventsOf(demo, await consoleToken('carol'), requestIdOf(list));
    expect(event?.event).not.toHaveProperty('transfer');
  });

  it('needs its legal mechanism: a plan naming transfers without one is not a valid manifest', async () => {
    const response = await register(
      manifest('eu-leaker', { residency: { region: 'US', transfers: ['EU'] } }),
    );
    const problem = await expectProblem(response, 422, 'INVALID_INPUT');
    expect(JSON.stringify(problem)).toContain('transfer_mechanism');
  });
});

describe('a plan change that adds a transfer', () => {
  it('waits for a reviewer while the approved residency stays in force, then holds once approved', async () => {
    const token = await demo.accessToken('alice', 'us-dialer', 'read:account.basic');
    const change = await demo.send('PUT', '/admin/v1/apps/us-dialer/manifest', await consoleToken('alice'), {
      json: manifest('us-dialer', {
        residency: { region: 'US', transfers: ['EU'], transfer_mechanism: 'SCC 2021/914 module 2' },
      }),
    });
    expect(change.status).toBe(200);
    // The admission policy approves the plan; the residency change alone sends it to a reviewer.
    expect(await json<{ change: string }>(change)).toMatchObject({ change: 'pending' });
    const [event] = await auditEventsOf(demo, await consoleToken('carol'), requestIdOf(change));
    expect(event?.event.reason).toContain('residency US< -> US<EU');

    // Past the server's one-second plan cache: still the approved residency, never the pending one.
    await new Promise((resolve) => setTimeout(resolve, 1200));
    expect((await json<Page>(await demo.get('/crm/v1/accounts?limit=5', token))).records).toEqual([]);

    const approval = await demo.send('POST', '/admin/v1/apps/us-dialer/approve', await consoleToken('rita'), {
      json: { reason: 'SCCs signed with the US processor' },
    });
    expect(approval.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 1200));
    const list = await demo.get('/crm/v1/accounts?limit=5', token);
    expect((await json<Page>(list)).records).toHaveLength(5);
    const [served] = await auditEventsOf(demo, await consoleToken('carol'), requestIdOf(list));
    expect(served?.event).toMatchObject({ app_id: 'us-dialer', transfer: 'EU>US' });
  });
});
