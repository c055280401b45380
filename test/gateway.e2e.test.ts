import { generateKeyPair, SignJWT, decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorRegistry } from '../src/errors/index.js';
import { startDemo, type Demo } from './support/demo.js';

interface Problem {
  status: number;
  code: string;
  title: string;
  detail: string;
  [key: string]: unknown;
}
interface Page {
  records: Record<string, string | number | null>[];
  next_cursor: string | null;
}
interface AuditRow {
  index: number;
  leaf_hash: string;
  event: Record<string, string>;
}

const contactRead = 'read:account.basic read:contact.basic read:contact.reach';

let demo: Demo;
let alice: string;
let erin: string;
let bob: string;
let carol: string;

beforeAll(async () => {
  // These tests page through a whole territory to check the row filter, which is exactly what the
  // bulk-export guard stops by default; the guard has its own suite (gateway-protect.e2e.test.ts).
  demo = await startDemo({ config: { 'limits.bulkExport': { minimum: 100_000, maxTracked: 100_000 } } });
  [alice, erin, bob, carol] = await Promise.all([
    demo.accessToken('alice', 'call-notes', contactRead),
    demo.accessToken('erin', 'call-notes', contactRead),
    demo.accessToken('bob', 'call-notes', contactRead),
    demo.accessToken('carol', 'console', 'audit:read'),
  ]);
});

afterAll(async () => {
  await demo?.stop();
});

async function json<T>(response: Response): Promise<T> {
  return (await response.json()) as T;
}

async function auditEventsOf(requestId: string): Promise<AuditRow[]> {
  const response = await demo.get(`/audit/v1/events?request_id=${requestId}`, carol);
  expect(response.status).toBe(200);
  return (await json<{ records: AuditRow[] }>(response)).records;
}

async function expectProblem(response: Response, status: number, code: string): Promise<Problem> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(response.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
  const problem = await json<Problem>(response);
  expect(problem.code).toBe(code);
  return problem;
}

describe('the whole flow: ID token → token exchange → governed read', () => {
  it('issues an RFC 9068 access token with the granted scopes only', async () => {
    const claims = decodeJwt(alice);
    expect(claims).toMatchObject({ client_id: 'call-notes', app_id: 'call-notes', scope: contactRead });
    expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(900);
  });

  it('lists contacts with exactly the fields the scopes allow, and an x-request-id', async () => {
    const response = await demo.get('/crm/v1/contacts?limit=5', alice);
    expect(response.status).toBe(200);
    expect(response.headers.get('x-request-id')).toBeTruthy();
    const page = await json<Page>(response);
    expect(page.records).toHaveLength(5);
    expect(page.next_cursor).toBeTruthy();
    for (const record of page.records) {
      expect(Object.keys(record).sort()).toEqual(
        ['id', 'first_name', 'last_name', 'title', 'account_id', 'email', 'phone'].sort(),
      );
    }
  });

  it('reads one record with only the named fields', async () => {
    const page = await json<Page>(await demo.get('/crm/v1/contacts?limit=1', alice));
    const id = page.records[0]?.id as string;
    const response = await demo.get(`/crm/v1/contacts/${id}?fields=first_name,last_name`, alice);
    expect(response.status).toBe(200);
    expect(Object.keys(await json<Record<string, unknown>>(response)).sort()).toEqual([
      'first_name',
      'id',
      'last_name',
    ]);
  });
});

describe('each role sees its own view', () => {
  it('alice (EMEA) and erin (NA) see disjoint sets of accounts, each only of their territory', async () => {
    const [a, e] = await Promise.all([
      json<Page>(await demo.get('/crm/v1/accounts?limit=100', alice)),
      json<Page>(await demo.get('/crm/v1/accounts?limit=100', erin)),
    ]);
    expect(a.records.length).toBeGreaterThan(0);
    expect(e.records.length).toBeGreaterThan(0);
    expect(new Set(a.records.map((r) => r.territory))).toEqual(new Set(['EMEA']));
    expect(new Set(e.records.map((r) => r.territory))).toEqual(new Set(['NA']));
    const aliceIds = new Set(a.records.map((r) => r.id));
    expect(e.records.some((r) => aliceIds.has(r.id))).toBe(false);
  });

  it('paging through every contact alice may see never yields a record of another territory', async () => {
    const accounts = new Set<string | number | null>();
    let cursor: string | null = null;
    let seen = 0;
    do {
      const page: Page = await json<Page>(
        await demo.get(`/crm/v1/accounts?limit=100${cursor ? `&cursor=${cursor}` : ''}`, alice),
      );
      for (const record of page.records) {
        expect(record.territory).toBe('EMEA');
        expect(accounts.has(record.id)).toBe(false);
        accounts.add(record.id);
      }
      seen += page.records.length;
      cursor = page.next_cursor;
    } while (cursor);
    expect(seen).toBe(accounts.size);
  });

  it('a sales rep sees phones masked to the last four digits; a manager sees them whole', async () => {
    const repPage = await json<Page>(await demo.get('/crm/v1/contacts?limit=1&fields=phone', alice));
    const id = repPage.records[0]?.id as string;
    const repPhone = repPage.records[0]?.phone as string;
    const managerRecord = await json<Record<string, string>>(
      await demo.get(`/crm/v1/contacts/${id}?fields=phone`, bob),
    );
    expect(repPhone).toMatch(/^\*\*\*[0-9]{4}$/);
    expect(managerRecord.phone).toMatch(/^\+[0-9 ()-]{8,}$/);
    expect(managerRecord.phone?.replace(/[^0-9]/g, '').endsWith(repPhone.slice(3))).toBe(true);
  });

  it('a masked field cannot be used as a filter to guess its value', async () => {
    const response = await demo.get('/crm/v1/contacts?filter=phone%3D%2B44', alice);
    await expectProblem(response, 422, 'INVALID_INPUT');
  });
});

describe('authentication attacks are refused with 401', () => {
  it('no token', async () => {
    await expectProblem(await demo.get('/crm/v1/contacts'), 401, 'TOKEN_MISSING');
  });

  it('a malformed token', async () => {
    await expectProblem(await demo.get('/crm/v1/contacts', 'not-a-jwt'), 401, 'TOKEN_INVALID');
    const response = await fetch(`${demo.url}/crm/v1/contacts`, {
      headers: { authorization: 'Basic YWxpY2U6cHc=' },
    });
    await expectProblem(response, 401, 'TOKEN_INVALID');
  });

  it('a token signed by another key, with otherwise perfect claims', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const claims = decodeJwt(alice);
    const forged = await new SignJWT({ ...claims, territory: 'NA' })
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt' })
      .sign(privateKey);
    await expectProblem(await demo.get('/crm/v1/contacts', forged), 401, 'TOKEN_INVALID');
  });

  it('a token whose claims were edited after signing', async () => {
    const [header, , signature] = alice.split('.');
    const payload = Buffer.from(JSON.stringify({ ...decodeJwt(alice), territory: 'NA' })).toString(
      'base64url',
    );
    await expectProblem(
      await demo.get('/crm/v1/contacts', `${header}.${payload}.${signature}`),
      401,
      'TOKEN_INVALID',
    );
  });

  it('an ID token presented as an access token', async () => {
    await expectProblem(
      await demo.get('/crm/v1/contacts', await demo.idToken('alice')),
      401,
      'TOKEN_INVALID',
    );
  });

  it('an expired access token signed with the real key', async () => {
    const expired = await demo.expiredAccessToken('alice', 'call-notes', contactRead);
    await expectProblem(await demo.get('/crm/v1/contacts', expired), 401, 'TOKEN_EXPIRED');
  });
});

describe('a 401 tells the client what to do (RFC 6750 §3, RFC 9449 §7.1)', () => {
  it('no token: a Bearer and a DPoP challenge without an error code', async () => {
    const response = await demo.get('/crm/v1/contacts');
    expect(response.status).toBe(401);
    const challenge = response.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer realm="gatehouse"/);
    expect(challenge).toMatch(/DPoP realm="gatehouse", algs="[^"]*ES256/);
    expect(challenge).not.toContain('error=');
  });

  it('an expired token: error="invalid_token" in both schemes, so the client refreshes', async () => {
    const expired = await demo.expiredAccessToken('alice', 'call-notes', contactRead);
    const response = await demo.get('/crm/v1/contacts', expired);
    expect(response.status).toBe(401);
    const challenge = response.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer realm="gatehouse", error="invalid_token"/);
    expect(challenge).toMatch(/DPoP realm="gatehouse", error="invalid_token"/);
  });
});

describe('W3C trace context in the trail', () => {
  const traceOf = async (headers: Record<string, string>) => {
    const response = await fetch(`${demo.url}/crm/v1/accounts?limit=1`, {
      headers: { authorization: `Bearer ${alice}`, ...headers },
    });
    expect(response.status).toBe(200);
    const [row] = await auditEventsOf(response.headers.get('x-request-id') as string);
    return row?.event.trace_id;
  };

  it("records the caller's trace id from a valid traceparent", async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    expect(await traceOf({ traceparent: `00-${traceId}-00f067aa0ba902b7-01` })).toBe(traceId);
  });

  it('an all-zero trace or parent id, or version ff, is no trace: a fresh W3C trace id instead', async () => {
    const invalid = [
      '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
      '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
      'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
    ];
    for (const traceparent of [...invalid, undefined]) {
      const traceId = await traceOf(traceparent === undefined ? {} : { traceparent });
      expect(traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(traceId).not.toMatch(/^0+$/);
      expect(traceparent ?? '').not.toContain(traceId);
    }
  });
});

describe('authorization', () => {
  it('a field outside the granted scopes is 403 naming the field', async () => {
    const problem = await expectProblem(
      await demo.get('/crm/v1/contacts?fields=first_name,national_id', alice),
      403,
      'FIELD_NOT_ALLOWED',
    );
    expect(problem.fields).toEqual(['national_id']);
  });

  it('an object no scope opens is 403', async () => {
    await expectProblem(await demo.get('/crm/v1/opportunities', alice), 403, 'SCOPE_MISSING');
  });

  it('a record of another territory, asked for by id, is 404 exactly like a missing one', async () => {
    const naPage = await json<Page>(await demo.get('/crm/v1/contacts?limit=1', erin));
    const naId = naPage.records[0]?.id as string;
    const hidden = await expectProblem(await demo.get(`/crm/v1/contacts/${naId}`, alice), 404, 'NOT_FOUND');
    const missing = await expectProblem(
      await demo.get('/crm/v1/contacts/003DOESNOTEXIST', alice),
      404,
      'NOT_FOUND',
    );
    expect(hidden.detail).toBe(missing.detail);
  });

  it('a scope the app was never approved for is 400 invalid_scope, not a silent drop', async () => {
    const response = await demo.exchange(
      'alice',
      'call-notes',
      'read:contact.basic read:opportunity.financial',
    );
    expect(response.status).toBe(400);
    expect((await json<{ error: string }>(response)).error).toBe('invalid_scope');
  });

  it('unknown query parameters and oversized pages are 422', async () => {
    await expectProblem(await demo.get('/crm/v1/contacts?feilds=email', alice), 422, 'INVALID_INPUT');
    await expectProblem(await demo.get('/crm/v1/contacts?limit=100000', alice), 422, 'INVALID_INPUT');
    await expectProblem(await demo.get('/crm/v1/contacts?fields=email;drop', alice), 422, 'INVALID_INPUT');
  });
});

describe('every request leaves an audit event before its answer', () => {
  it('an allowed read records who, what, which scopes and the outcome, never record values', async () => {
    const response = await demo.get('/crm/v1/contacts?limit=2&fields=email', alice);
    const requestId = response.headers.get('x-request-id') as string;
    const page = await json<Page>(response);
    const rows = await auditEventsOf(requestId);
    expect(rows).toHaveLength(1);
    expect(rows[0]?.event).toMatchObject({
      actor_id: 'alice@example.com',
      actor_role: 'sales_rep',
      app_id: 'call-notes',
      action: 'crm.list',
      resource_type: 'contact',
      outcome: 'allow',
      request_id: requestId,
      scope: 'read:contact.reach',
    });
    const stored = JSON.stringify(rows[0]?.event);
    for (const record of page.records) expect(stored).not.toContain(String(record.email));
  });

  it('denials are recorded with their reason, and tokens never are', async () => {
    const forbidden = await demo.get('/crm/v1/contacts?fields=national_id', alice);
    const anonymous = await demo.get('/crm/v1/contacts', 'garbage.token.value');
    const [denied] = await auditEventsOf(forbidden.headers.get('x-request-id') as string);
    const [unauthenticated] = await auditEventsOf(anonymous.headers.get('x-request-id') as string);
    expect(denied?.event).toMatchObject({
      outcome: 'deny',
      reason: 'FIELD_NOT_ALLOWED',
      actor_id: 'alice@example.com',
    });
    expect(unauthenticated?.event).toMatchObject({
      outcome: 'deny',
      reason: 'TOKEN_INVALID',
      actor_id: 'anonymous',
    });
    expect(JSON.stringify(unauthenticated)).not.toContain('garbage.token.value');
  });

  it('the audit API itself is closed to anyone without audit:read', async () => {
    await expectProblem(await demo.get('/audit/v1/events', alice), 403, 'SCOPE_MISSING');
  });
});

describe('operations', () => {
  it('is alive, ready, and exports Prometheus metrics by route, status and app', async () => {
    expect((await demo.get('/healthz')).status).toBe(200);
    const ready = await demo.get('/readyz');
    expect(ready.status).toBe(200);
    expect(await json<{ checks: Record<string, { ok: boolean }> }>(ready)).toMatchObject({
      checks: { database: { ok: true }, idp: { ok: true } },
    });
    // The labels name every app and route: only an admin reads them on the main listener.
    await expectProblem(await demo.get('/metrics'), 401, 'TOKEN_MISSING');
    await expectProblem(await demo.get('/metrics', alice), 403, 'SCOPE_MISSING');
    const metrics = await (
      await demo.get('/metrics', await demo.accessToken('dave', 'console', 'admin'))
    ).text();
    expect(metrics).toMatch(
      /gatehouse_http_requests_total\{[^}]*route="\/crm\/v1\/:plural"[^}]*app="call-notes"/,
    );
    expect(metrics).toMatch(/gatehouse_decisions_total\{outcome="deny"/);
  });

  it('serves /metrics without a token only on its own listener (server.metricsPort)', async () => {
    const separate = await startDemo({ config: { 'server.metricsPort': 0 } });
    try {
      expect(separate.gatehouse.metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
      const scraped = await fetch(separate.gatehouse.metricsUrl ?? '');
      expect(scraped.status).toBe(200);
      expect(await scraped.text()).toContain('gatehouse_http_requests_total');
      // The main listener no longer serves it at all, token or not.
      const admin = await separate.accessToken('dave', 'console', 'admin');
      expect((await separate.get('/metrics', admin)).status).toBe(404);
    } finally {
      await separate.stop();
    }
  });

  it('CRM answers are never cached nor sniffed, refusals included', async () => {
    for (const response of [
      await demo.get('/crm/v1/contacts?limit=1', alice),
      await demo.get('/crm/v1/contacts/no-such-id', alice),
      await demo.get('/crm/v1/contacts'),
    ]) {
      expect(response.headers.get('cache-control')).toBe('no-store');
      expect(response.headers.get('x-content-type-options')).toBe('nosniff');
    }
  });

  it('a spoofed X-Forwarded-For is ignored when no proxy is trusted', async () => {
    const response = await fetch(`${demo.url}/crm/v1/contacts?limit=1`, {
      headers: { authorization: `Bearer ${alice}`, 'x-forwarded-for': '203.0.113.7' },
    });
    expect(response.status).toBe(200);
    const [row] = await auditEventsOf(response.headers.get('x-request-id') ?? '');
    expect(row?.event.client_network).toBe('127.0.0.0/24');
  });

  it('through a trusted proxy (server.trustedProxies) the client is the right-most untrusted hop', async () => {
    const proxied = await startDemo({ config: { 'server.trustedProxies': ['127.0.0.1/32', '10.0.0.0/8'] } });
    try {
      const [token, auditor] = await Promise.all([
        proxied.accessToken('alice', 'call-notes', contactRead),
        proxied.accessToken('carol', 'console', 'audit:read'),
      ]);
      const networkFor = async (forwardedFor: string) => {
        const response = await fetch(`${proxied.url}/crm/v1/contacts?limit=1`, {
          headers: { authorization: `Bearer ${token}`, 'x-forwarded-for': forwardedFor },
        });
        expect(response.status).toBe(200);
        const events = await proxied.get(
          `/audit/v1/events?request_id=${response.headers.get('x-request-id') ?? ''}`,
          auditor,
        );
        return (await json<{ records: AuditRow[] }>(events)).records[0]?.event.client_network;
      };
      expect(await networkFor('203.0.113.7')).toBe('203.0.113.0/24');
      // A client-written left-most entry is not believed; trusted hops after the client are skipped.
      expect(await networkFor('198.51.100.9, 203.0.113.7')).toBe('203.0.113.0/24');
      expect(await networkFor('203.0.113.7, 10.1.2.3')).toBe('203.0.113.0/24');
    } finally {
      await proxied.stop();
    }
  });

  it('answers unknown endpoints and oversized bodies with problem+json', async () => {
    await expectProblem(await demo.get('/nope'), 404, 'ROUTE_NOT_FOUND');
    const big = await fetch(`${demo.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: `subject_token=${'a'.repeat(200_000)}`,
    });
    await expectProblem(big, 413, 'PAYLOAD_TOO_LARGE');
  });
});

describe("a problem's type resolves to its code's documentation, served by Gatehouse", () => {
  const asJson = { accept: 'application/json' };

  it('the type of a refused read answers 200 with that code, status, title and what to do', async () => {
    const problem = await expectProblem(await demo.get('/crm/v1/opportunities', alice), 403, 'SCOPE_MISSING');
    expect(problem.type).toBe(`${demo.url}/problems/scope-missing`);
    const doc = await fetch(problem.type as string, { headers: asJson });
    expect(doc.status).toBe(200);
    expect(await doc.json()).toEqual({
      type: problem.type,
      code: 'SCOPE_MISSING',
      status: 403,
      title: problem.title,
      remedy: errorRegistry.SCOPE_MISSING.remedy,
    });
    const page = await fetch(problem.type as string);
    expect(page.status).toBe(200);
    expect(page.headers.get('content-type')).toMatch(/^text\/html/);
    expect(page.headers.get('content-security-policy')).toMatch(/default-src 'none'.*frame-ancestors 'none'/);
    expect(await page.text()).toContain('<code>SCOPE_MISSING</code>');
  });

  it("the type of an OAuth error resolves too, and the answer keeps RFC 6749's shape", async () => {
    const refused = await demo.exchange('alice', 'console', 'admin');
    expect(refused.status).toBe(400);
    expect(refused.headers.get('content-type')).toMatch(/^application\/json/);
    const problem = await json<Problem>(refused);
    expect(problem).toMatchObject({ error: 'invalid_scope', code: 'OAUTH_INVALID_SCOPE' });
    const doc = await fetch(problem.type as string, { headers: asJson });
    expect(doc.status).toBe(200);
    expect(await doc.json()).toMatchObject({ code: 'OAUTH_INVALID_SCOPE', status: 400 });
  });

  it('GET /problems lists every code, each row anchored by its slug, without a token', async () => {
    const all = await json<{ problems: { code: string; type: string }[] }>(
      await fetch(`${demo.url}/problems`, { headers: asJson }),
    );
    expect(all.problems.map((doc) => doc.code)).toEqual(Object.keys(errorRegistry));
    const table = await (await fetch(`${demo.url}/problems`)).text();
    for (const doc of all.problems) expect(table).toContain(`id="${doc.type.split('/').at(-1)}"`);
  });

  it('an unknown code is a 404 problem that does not echo what was asked', async () => {
    const asked = await demo.get(`/problems/${encodeURIComponent('<script>alert(1)</script>')}`);
    const problem = await expectProblem(asked, 404, 'NOT_FOUND');
    expect(JSON.stringify(problem)).not.toMatch(/script|alert/);
  });
});
