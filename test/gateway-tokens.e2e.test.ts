import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openGatehouseStore } from '../src/database/index.js';
import type { Store } from '../src/store/index.js';
import { dpopKey, dpopProof, insertDpopApp, type DpopKey } from './support/broker.js';
import { startDemo, tokenExchangeGrant, idTokenType, type Demo } from './support/demo.js';
import { auditEventsOf, requestIdOf } from './support/http.js';

type Page = { records: Record<string, string | number | null>[]; next_cursor: string | null };

let demo: Demo;
let store: Store;

beforeAll(async () => {
  demo = await startDemo();
  store = await openGatehouseStore(demo.config);
  await insertDpopApp(store.db);
});

afterAll(async () => {
  await store?.close();
  await demo?.stop();
});

async function exchange(user: string, clientId: string, scope: string, extra: Record<string, string> = {}) {
  return fetch(`${demo.url}/oauth/token`, {
    method: 'POST',
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      ...(extra.dpop ? { dpop: extra.dpop } : {}),
    },
    body: new URLSearchParams({
      grant_type: tokenExchangeGrant,
      subject_token: await demo.idToken(user, clientId),
      subject_token_type: idTokenType,
      client_id: clientId,
      scope,
      ...Object.fromEntries(Object.entries(extra).filter(([key]) => key !== 'dpop')),
    }),
  });
}

describe('capability tokens narrow every gateway read to their accounts', () => {
  it('lists only the named accounts and the contacts under them; other accounts of the territory are 404', async () => {
    const alice = await demo.accessToken('alice', 'call-notes', 'read:account.basic read:contact.basic');
    const all = (await (await demo.get('/crm/v1/accounts?limit=5', alice)).json()) as Page;
    const [first, second, other] = all.records.map((r) => String(r.id));
    const response = await exchange('alice', 'call-notes', 'read:account.basic read:contact.basic', {
      authorization_details: JSON.stringify([{ type: 'crm_accounts', account_ids: [first, second] }]),
    });
    const { access_token: narrowed } = (await response.json()) as { access_token: string };

    const accounts = (await (await demo.get('/crm/v1/accounts?limit=50', narrowed)).json()) as Page;
    expect(accounts.records.map((r) => r.id).sort()).toEqual([first, second].sort());
    const contacts = (await (await demo.get('/crm/v1/contacts?limit=100', narrowed)).json()) as Page;
    expect(contacts.records.length).toBeGreaterThan(0);
    for (const contact of contacts.records) expect([first, second]).toContain(contact.account_id);
    expect((await demo.get(`/crm/v1/accounts/${other}`, narrowed)).status).toBe(404);
    expect((await demo.get(`/crm/v1/accounts/${other}`, alice)).status).toBe(200);
  });
});

describe('DPoP-bound tokens at the gateway (RFC 9449)', () => {
  let key: DpopKey;
  let token: string;
  const accounts = () => `${demo.url}/crm/v1/accounts?limit=1`;

  beforeAll(async () => {
    key = await dpopKey();
    const response = await exchange('alice', 'dpop-notes', 'read:account.basic', {
      dpop: await dpopProof(key, 'POST', `${demo.url}/oauth/token`),
    });
    token = ((await response.json()) as { access_token: string }).access_token;
  });

  it('reads with the token and a fresh proof for this request', async () => {
    const response = await fetch(accounts(), {
      headers: {
        authorization: `DPoP ${token}`,
        dpop: await dpopProof(key, 'GET', accounts(), { accessToken: token }),
      },
    });
    expect(response.status).toBe(200);
  });

  it('refuses the bound token sent as a plain bearer token', async () => {
    const response = await fetch(accounts(), { headers: { authorization: `Bearer ${token}` } });
    expect(response.status).toBe(401);
  });

  it('refuses a replayed proof', async () => {
    const proof = await dpopProof(key, 'GET', accounts(), { accessToken: token });
    const headers = { authorization: `DPoP ${token}`, dpop: proof };
    expect((await fetch(accounts(), { headers })).status).toBe(200);
    expect((await fetch(accounts(), { headers })).status).toBe(401);
  });

  it('refuses a proof made for another URL or by another key', async () => {
    const elsewhere = await dpopProof(key, 'GET', `${demo.url}/crm/v1/contacts`, { accessToken: token });
    expect(
      (await fetch(accounts(), { headers: { authorization: `DPoP ${token}`, dpop: elsewhere } })).status,
    ).toBe(401);
    const stranger = await dpopProof(await dpopKey(), 'GET', accounts(), { accessToken: token });
    expect(
      (await fetch(accounts(), { headers: { authorization: `DPoP ${token}`, dpop: stranger } })).status,
    ).toBe(401);
  });
});

describe('Cedar decides, and says which library decided', () => {
  it('records the policy version in every audit event', async () => {
    const alice = await demo.accessToken('alice', 'call-notes', 'read:contact.basic');
    const carol = await demo.accessToken('carol', 'console', 'audit:read');
    const response = await demo.get('/crm/v1/contacts?limit=1', alice);
    const requestId = response.headers.get('x-request-id') as string;
    const events = (await (await demo.get(`/audit/v1/events?request_id=${requestId}`, carol)).json()) as {
      records: { event: { policy_version?: string } }[];
    };
    expect(events.records[0]?.event.policy_version).toMatch(/^[0-9a-f]{12}$/);
  });

  it('keeps the filter language inside the row filter: an or cannot widen past the territory', async () => {
    const alice = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const filter = encodeURIComponent("territory eq 'NA' or territory eq 'EMEA'");
    const page = (await (await demo.get(`/crm/v1/accounts?limit=20&filter=${filter}`, alice)).json()) as Page;
    expect(page.records.length).toBeGreaterThan(0);
    expect(new Set(page.records.map((r) => r.territory))).toEqual(new Set(['EMEA']));
    const malformed = await demo.get(
      `/crm/v1/accounts?filter=${encodeURIComponent("name eq 'x' and (")}`,
      alice,
    );
    expect(malformed.status).toBe(422);
  });
});

describe('/openapi.json for low-code tools', () => {
  it('narrows the document to one app and refuses unknown apps', async () => {
    const whole = (await (await demo.get('/openapi.json')).json()) as { openapi: string; paths: object };
    expect(whole.openapi).toBe('3.1.0');
    expect(Object.keys(whole.paths)).toContain('/crm/v1/opportunities');
    const callNotes = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const narrowed = await demo.get('/openapi.json?app=call-notes', callNotes);
    const text = await narrowed.text();
    expect(Object.keys((JSON.parse(text) as { paths: object }).paths)).not.toContain('/crm/v1/opportunities');
    expect(text).not.toContain('national_id');
    const admin = await demo.accessToken('dave', 'console', 'admin');
    expect((await demo.get('/openapi.json?app=no-such-app', admin)).status).toBe(404);
    expect((await demo.get('/openapi.json?app=pipeline-dashboard', admin)).status).toBe(200);
  });

  it('an app document needs a token of that app: the catalog cannot be enumerated through it', async () => {
    expect((await demo.get('/openapi.json?app=call-notes')).status).toBe(401);
    const callNotes = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    // Another app's document answers exactly like an app that does not exist.
    const other = await demo.get('/openapi.json?app=pipeline-dashboard', callNotes);
    const missing = await demo.get('/openapi.json?app=no-such-app', callNotes);
    expect([other.status, missing.status]).toEqual([404, 404]);
    expect((await other.json()) as object).toMatchObject({ code: 'NOT_FOUND' });
    // The probe is on the audit trail, as any refused request.
    const carol = await demo.accessToken('carol', 'console', 'audit:read');
    const [probe] = await auditEventsOf(demo, carol, requestIdOf(other));
    expect(probe?.event).toMatchObject({
      action: 'openapi.read',
      outcome: 'deny',
      app_id: 'call-notes',
      resource_id: 'pipeline-dashboard',
      reason: 'NOT_FOUND',
    });
  });
});
