import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tarArchive } from '../src/scan/test-support.js';
import { openGatehouseStore } from '../src/database/index.js';
import type { Store } from '../src/store/index.js';
import { startDemo, type Demo } from './support/demo.js';
import { auditEventsOf, expectProblem, json, requestIdOf } from './support/http.js';

/**
 * The app lifecycle through the admin API on a real server: registration judged by the admission
 * policy, the reviewer queue, separation of duties, plan changes, suspension, lapsed approvals,
 * retirement, the inventory and scope suggestions.
 */

let demo: Demo;
let store: Store;
const tokens = new Map<string, string>();

interface AppView {
  id: string;
  client_id: string;
  owner: string;
  state: string;
  scopes: string[];
  data_classes: string[];
  risk: string | null;
  constraints: { daily_quota: number; requests_per_minute: number } | null;
  approved_by: string | null;
  approved_until: string | null;
  requested_by: string;
  pending_change: { scopes: string[] } | null;
  admission: { decision: string; rules: { id: string }[] } | null;
  history?: { action: string; from_state: string; to_state: string; actor: string }[];
  change?: string;
  archive?: { file: string; events: number };
}

const base = {
  owner: 'alice@example.com',
  purpose: 'see the accounts of my territory',
  scopes: ['read:account.basic'],
  data_classes: ['internal'],
  retention_days: 30,
  expected_users: 12,
  telemetry: true,
  redirect_uris: ['http://localhost:5173/callback'],
};
/** A plan the admission policy approves at once. */
const plain = (name: string, extra: Record<string, unknown> = {}) => ({ ...base, name, ...extra });
/** A plan that reads pii: the policy sends it to a reviewer. */
const sensitive = (name: string, extra: Record<string, unknown> = {}) =>
  plain(name, {
    purpose: 'call and email the customers of my accounts',
    scopes: ['read:account.basic', 'read:contact.basic', 'read:contact.reach'],
    data_classes: ['internal', 'pii'],
    ...extra,
  });

/** A console token: `maker` for anyone, plus `review` for rita, `admin` for dave, `audit:read` for carol. */
async function consoleToken(user: string): Promise<string> {
  const scope = { rita: 'maker review', dave: 'maker admin', carol: 'audit:read' }[user] ?? 'maker';
  const key = `${user}:${scope}`;
  if (!tokens.has(key)) tokens.set(key, await demo.accessToken(user, 'console', scope));
  return tokens.get(key) as string;
}

async function register(user: string, manifest: unknown): Promise<Response> {
  return demo.send('POST', '/admin/v1/apps', await consoleToken(user), { json: manifest });
}

async function registered(user: string, manifest: unknown): Promise<AppView> {
  const response = await register(user, manifest);
  expect(response.status).toBe(201);
  return json<AppView>(response);
}

async function decide(user: string, appId: string, step: string, reason = 'looked at the plan') {
  return demo.send('POST', `/admin/v1/apps/${appId}/${step}`, await consoleToken(user), { json: { reason } });
}

async function show(appId: string): Promise<AppView> {
  const response = await demo.get(`/admin/v1/apps/${appId}`, await consoleToken('dave'));
  expect(response.status).toBe(200);
  return json<AppView>(response);
}

/** The status the gateway answers for `token`, polled until it is `status` or `ms` have passed. */
async function gatewayStatusWithin(token: string, status: number, ms: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const response = await demo.get('/crm/v1/accounts?limit=1', token);
    if (response.status === status || Date.now() - started > ms) return response.status;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * The token endpoint's answer once a lifecycle change holds: the broker reads an app's state at most
 * half a second old, so a change holds within a second.
 */
async function exchangeWithin(user: string, clientId: string, scope: string, ok: boolean): Promise<Response> {
  const started = Date.now();
  for (;;) {
    const response = await demo.exchange(user, clientId, scope);
    if (response.ok === ok || Date.now() - started > 1000) return response;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function tokenWithin(user: string, clientId: string, scope: string): Promise<string> {
  const response = await exchangeWithin(user, clientId, scope, true);
  expect(response.status).toBe(200);
  return (await json<{ access_token: string }>(response)).access_token;
}

beforeAll(async () => {
  demo = await startDemo();
  store = await openGatehouseStore(demo.config);
});

afterAll(async () => {
  await store?.close();
  await demo?.stop();
});

describe('registration', () => {
  it('a maker registers their own app; an approved plan gets a public client and constraints at once', async () => {
    const app = await registered('alice', plain('territory-view'));
    expect(app).toMatchObject({
      id: 'territory-view',
      client_id: 'territory-view',
      owner: 'alice@example.com',
      state: 'approved',
      approved_by: 'policy',
      requested_by: 'alice@example.com',
      scopes: ['read:account.basic'],
      constraints: { daily_quota: 12_000, requests_per_minute: 240 },
    });
    const days = (Date.parse(app.approved_until ?? '') - Date.now()) / 86_400_000;
    expect(days).toBeGreaterThan(179);
    expect(days).toBeLessThanOrEqual(180);

    const token = await demo.accessToken('alice', 'territory-view', 'read:account.basic');
    const read = await demo.get('/crm/v1/accounts?limit=1', token);
    expect(read.status).toBe(200);
    // The plan's constraints are the app's limits at once: 240/min narrows the configured 600 burst
    // at 10/s, and the daily quota is the plan's 12,000, not the configured 100,000.
    const policy = read.headers.get('ratelimit-policy') ?? '';
    expect(policy).toContain('"app";q=240;w=60');
    expect(policy).toContain('"quota";q=12000;w=86400');
    // Exactly the approved scopes: anything else is invalid_scope, not a silent drop.
    const wider = await demo.exchange('alice', 'territory-view', 'read:account.basic read:contact.basic');
    expect((await json<{ error: string }>(wider)).error).toBe('invalid_scope');
    // The authorization code flow matches the manifest's redirect URI exactly.
    const authorize = new URL(`${demo.url}/oauth/authorize`);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'territory-view',
      redirect_uri: 'http://localhost:5173/callback/../evil',
      scope: 'read:account.basic',
      state: 's',
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    }).toString();
    expect((await fetch(authorize, { redirect: 'manual' })).status).toBe(400);
  });

  it('a plan with require_dpop is accepted, and the broker then issues its tokens only with a DPoP proof', async () => {
    const app = await registered('alice', plain('dpop-plan', { require_dpop: true }));
    expect(app.state).toBe('approved');
    const bearer = await exchangeWithin('alice', 'dpop-plan', 'read:account.basic', false);
    expect(bearer.status).toBe(400);
    expect((await json<{ error: string }>(bearer)).error).toBe('invalid_dpop_proof');
  });

  it('an audit hook at an IP literal, loopback or internal name is refused, and an unverified one is no telemetry', async () => {
    for (const hook of [
      'https://169.254.169.254/latest/meta-data/',
      'https://0xa9fea9fe/hook',
      'https://[::1]/hook',
      'https://localhost/hook',
      'https://metadata.google.internal/hook',
    ]) {
      const response = await register('alice', plain('hooked-app', { telemetry: false, audit_hook: hook }));
      const problem = await expectProblem(response, 422, 'INVALID_INPUT');
      expect(problem.detail, hook).toContain('audit_hook: must name a public host');
    }
    // A public name, not yet verified by a signed challenge, does not stand in for telemetry.
    const unverified = await register(
      'alice',
      plain('hooked-app', { telemetry: false, audit_hook: 'https://hooks.example.com/audit' }),
    );
    const view = await json<{ state: string }>(unverified);
    expect(view.state).not.toBe('approved');
    expect(JSON.stringify(view)).toContain('telemetry');
  });

  it('a maker may not register an app for someone else; an admin may', async () => {
    const refused = await register('erin', plain('erins-proxy'));
    const problem = await expectProblem(refused, 403, 'APP_NOT_OWNER');
    expect(problem.detail).toContain('erin@example.com');
    const forAlice = await registered('dave', plain('dave-for-alice'));
    expect(forAlice).toMatchObject({ owner: 'alice@example.com', requested_by: 'dave@example.com' });
  });

  it('without the maker or admin scope registration is refused, and the refusal is audited', async () => {
    const carol = await consoleToken('carol');
    const response = await demo.send('POST', '/admin/v1/apps', carol, { json: plain('carols-app') });
    await expectProblem(response, 403, 'SCOPE_MISSING');
    const [row] = await auditEventsOf(demo, carol, requestIdOf(response));
    expect(row?.event).toMatchObject({
      action: 'admin.apps.register',
      actor_id: 'carol@example.com',
      outcome: 'deny',
    });
  });

  it('an invalid manifest is 422 naming each problem; a taken name is 409', async () => {
    const invalid = await register('alice', {
      ...plain('bad'),
      scopes: ['read:contact.*'],
      telemetry: 'yes',
    });
    const problem = await expectProblem(invalid, 422, 'INVALID_INPUT');
    expect(problem.detail).toMatch(/scopes\[0\]/);
    expect(problem.detail).toMatch(/telemetry/);
    await expectProblem(await register('alice', plain('territory-view')), 409, 'APP_EXISTS');
  });

  it('a plan the policy denies is kept as a draft that gets no token', async () => {
    const app = await registered('alice', plain('no-telemetry', { telemetry: false }));
    expect(app.state).toBe('draft');
    expect(app.admission?.decision).toBe('deny');
    expect(app.admission?.rules.map((r) => r.id)).toContain('admission.telemetry-required');
    const exchange = await demo.exchange('alice', 'no-telemetry', 'read:account.basic');
    expect((await json<{ error: string }>(exchange)).error).toBe('invalid_client');
    // A draft is not in the reviewer queue: the maker fixes the plan first.
    await expectProblem(await decide('rita', 'no-telemetry', 'approve'), 409, 'APP_STATE');
  });
});

describe('review and separation of duties', () => {
  it('a plan reading pii waits in the reviewer queue and gets no token meanwhile', async () => {
    const app = await registered('alice', sensitive('contact-finder'));
    expect(app.state).toBe('in_review');
    expect(app.admission?.rules.map((r) => r.id)).toContain('admission.sensitive-data-review');
    const exchange = await demo.exchange('alice', 'contact-finder', 'read:account.basic');
    expect((await json<{ error: string }>(exchange)).error).toBe('invalid_client');

    const queue = await demo.get('/admin/v1/apps?state=in_review', await consoleToken('rita'));
    expect((await json<{ records: AppView[] }>(queue)).records.map((r) => r.id)).toContain('contact-finder');
  });

  it('a maker approving their own app is refused (no review scope)', async () => {
    await expectProblem(await decide('alice', 'contact-finder', 'approve'), 403, 'SCOPE_MISSING');
  });

  it('a reviewer can never approve an app they own or registered: 403 naming the rule, audited', async () => {
    const own = await registered('rita', sensitive('rita-reports', { owner: 'rita@example.com' }));
    const refused = await decide('rita', own.id, 'approve');
    const problem = await expectProblem(refused, 403, 'SEPARATION_OF_DUTIES');
    expect(problem.rule).toBe('separation-of-duties');
    expect(problem.detail).toContain('rita@example.com owns rita-reports');
    const [row] = await auditEventsOf(demo, await consoleToken('carol'), requestIdOf(refused));
    expect(row?.event).toMatchObject({ action: 'admin.apps.approve', outcome: 'deny' });
    expect(row?.event.reason).toContain('SEPARATION_OF_DUTIES');

    // Registered by dave for rita: neither the owner nor the one who asked may approve it.
    const forRita = await registered('dave', sensitive('rita-dashboard', { owner: 'rita@example.com' }));
    expect(
      (await expectProblem(await decide('dave', forRita.id, 'approve'), 403, 'SEPARATION_OF_DUTIES')).detail,
    ).toContain('dave@example.com registered rita-dashboard');
    await expectProblem(await decide('rita', forRita.id, 'approve'), 403, 'SEPARATION_OF_DUTIES');
    expect((await show(forRita.id)).state).toBe('in_review');
  });

  it('another reviewer approves with a reason; the client works at once; history and audit say who and why', async () => {
    const approved = await decide('rita', 'contact-finder', 'approve', 'pii is needed to call customers');
    expect(approved.status).toBe(200);
    expect(await json<AppView>(approved)).toMatchObject({
      state: 'approved',
      approved_by: 'rita@example.com',
    });
    const token = await tokenWithin('alice', 'contact-finder', 'read:account.basic read:contact.reach');
    expect(await gatewayStatusWithin(token, 200, 0)).toBe(200);

    const view = await show('contact-finder');
    expect(view.history?.map((h) => [h.action, h.from_state, h.to_state, h.actor])).toEqual([
      ['register', 'none', 'in_review', 'alice@example.com'],
      ['approve', 'in_review', 'approved', 'rita@example.com'],
    ]);
    const events = await demo.get(
      '/audit/v1/events?app_id=contact-finder&limit=1000',
      await consoleToken('carol'),
    );
    const approvals = (await json<{ records: { event: Record<string, string> }[] }>(events)).records.filter(
      (r) => r.event.action === 'app.approve',
    );
    expect(approvals).toHaveLength(1);
    expect(approvals[0]?.event).toMatchObject({ actor_id: 'rita@example.com', actor_role: 'reviewer' });
    expect(approvals[0]?.event.reason).toBe('in_review -> approved: pii is needed to call customers');
  });

  it('a reviewer denies with a reason: back to draft; a reason is required', async () => {
    const app = await registered('erin', sensitive('erin-leads', { owner: 'erin@example.com' }));
    await expectProblem(
      await demo.send('POST', `/admin/v1/apps/${app.id}/deny`, await consoleToken('rita'), { json: {} }),
      422,
      'INVALID_INPUT',
    );
    const denied = await decide('rita', app.id, 'deny', 'use read:contact.basic only');
    expect(await json<AppView>(denied)).toMatchObject({ state: 'draft' });
  });
});

describe('plan changes', () => {
  it('a wider plan waits for review while the approved scopes stay in force; approval applies it', async () => {
    await registered('alice', plain('notes-reader'));
    const wider = await demo.send(
      'PUT',
      '/admin/v1/apps/notes-reader/manifest',
      await consoleToken('alice'),
      {
        json: sensitive('notes-reader'),
      },
    );
    expect(wider.status).toBe(200);
    expect(await json<AppView>(wider)).toMatchObject({
      state: 'approved',
      change: 'pending',
      scopes: ['read:account.basic'],
      pending_change: { scopes: ['read:account.basic', 'read:contact.basic', 'read:contact.reach'] },
    });
    const early = await demo.exchange('alice', 'notes-reader', 'read:contact.basic');
    expect((await json<{ error: string }>(early)).error).toBe('invalid_scope');
    expect((await demo.exchange('alice', 'notes-reader', 'read:account.basic')).status).toBe(200);
    const queue = await demo.get('/admin/v1/apps?needs_review=true', await consoleToken('rita'));
    expect((await json<{ records: AppView[] }>(queue)).records.map((r) => r.id)).toContain('notes-reader');

    expect((await decide('rita', 'notes-reader', 'approve', 'the calls need phones')).status).toBe(200);
    await tokenWithin('alice', 'notes-reader', 'read:contact.basic');
    expect((await show('notes-reader')).pending_change).toBeNull();
  });

  it('a narrower plan applies at once and revokes the tokens that carry the dropped scopes', async () => {
    const token = await tokenWithin('alice', 'notes-reader', 'read:account.basic read:contact.basic');
    expect(await gatewayStatusWithin(token, 200, 0)).toBe(200);
    const narrower = await demo.send(
      'PUT',
      '/admin/v1/apps/notes-reader/manifest',
      await consoleToken('alice'),
      {
        json: sensitive('notes-reader', { scopes: ['read:account.basic', 'read:contact.basic'] }),
      },
    );
    expect(await json<AppView>(narrower)).toMatchObject({
      change: 'applied',
      scopes: ['read:account.basic', 'read:contact.basic'],
    });
    expect(await gatewayStatusWithin(token, 401, 1000)).toBe(401);
  });

  it("only the owner or an admin changes a plan; someone else's app is not even visible to a maker", async () => {
    const response = await demo.send(
      'PUT',
      '/admin/v1/apps/notes-reader/manifest',
      await consoleToken('erin'),
      {
        json: sensitive('notes-reader', { owner: 'erin@example.com' }),
      },
    );
    await expectProblem(response, 404, 'NOT_FOUND');
    await expectProblem(
      await demo.get('/admin/v1/apps/notes-reader', await consoleToken('erin')),
      404,
      'NOT_FOUND',
    );
  });
});

describe('suspension, lapsed approvals and retirement', () => {
  it('suspending revokes every token of the app within a second; restoring lets new ones through', async () => {
    await registered('alice', plain('pipeline-peek'));
    const token = await demo.accessToken('alice', 'pipeline-peek', 'read:account.basic');
    expect(await gatewayStatusWithin(token, 200, 0)).toBe(200);

    const suspended = await decide('dave', 'pipeline-peek', 'suspend', 'incident 42: unusual reads');
    expect(await json<AppView>(suspended)).toMatchObject({ state: 'suspended' });
    expect(await gatewayStatusWithin(token, 401, 1000)).toBe(401);
    const exchange = await exchangeWithin('alice', 'pipeline-peek', 'read:account.basic', false);
    expect((await json<{ error: string }>(exchange)).error).toBe('invalid_client');
    // Only an admin suspends.
    await expectProblem(await decide('rita', 'pipeline-peek', 'restore'), 403, 'SCOPE_MISSING');

    const restored = await decide('dave', 'pipeline-peek', 'restore', 'false alarm');
    expect(await json<AppView>(restored)).toMatchObject({ state: 'approved' });
    // The suspension revoked every token issued up to its second: a sign-in after it works.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const fresh = await tokenWithin('alice', 'pipeline-peek', 'read:account.basic');
    expect(await gatewayStatusWithin(fresh, 200, 1000)).toBe(200);
  });

  it('a token minted in the instant before suspension is refused too (the app must still be approved)', async () => {
    await registered('alice', plain('race-app'));
    const suspend = decide('dave', 'race-app', 'suspend', 'race');
    const token = await demo.accessToken('alice', 'race-app', 'read:account.basic').catch(() => undefined);
    expect((await suspend).status).toBe(200);
    if (token) expect(await gatewayStatusWithin(token, 401, 1000)).toBe(401);
  });

  it('a lapsed approval stops tokens and the gateway until a reviewer approves again', async () => {
    await registered('alice', plain('lapsing-app'));
    const token = await demo.accessToken('alice', 'lapsing-app', 'read:account.basic');
    expect(await gatewayStatusWithin(token, 200, 0)).toBe(200);
    await store.db
      .updateTable('apps')
      .set({ approved_until: new Date(Date.now() - 1000).toISOString() })
      .where('id', '=', 'lapsing-app')
      .execute();
    expect(await gatewayStatusWithin(token, 401, 1000)).toBe(401);
    expect((await show('lapsing-app')).state).toBe('in_review');
    const queue = await demo.get('/admin/v1/apps?state=in_review', await consoleToken('rita'));
    expect((await json<{ records: AppView[] }>(queue)).records.map((r) => r.id)).toContain('lapsing-app');

    expect((await decide('rita', 'lapsing-app', 'approve', 're-reviewed')).status).toBe(200);
    const fresh = await tokenWithin('alice', 'lapsing-app', 'read:account.basic');
    expect(await gatewayStatusWithin(fresh, 200, 1000)).toBe(200);
  });

  it('the owner retires their app: tokens stop, the events are archived, nothing more can be done to it', async () => {
    await registered('alice', plain('old-report'));
    const token = await demo.accessToken('alice', 'old-report', 'read:account.basic');
    expect(await gatewayStatusWithin(token, 200, 0)).toBe(200);
    const retired = await decide('alice', 'old-report', 'retire', 'replaced by territory-view');
    expect(retired.status).toBe(200);
    const view = await json<AppView>(retired);
    expect(view.state).toBe('retired');
    expect(view.archive?.events).toBeGreaterThanOrEqual(3);
    // Named inside the data dir: an answer never carries the server's absolute paths.
    expect(view.archive?.file).toMatch(/^archives\/retire-[\w.-]+\.json$/);
    expect(JSON.stringify(view)).not.toContain(demo.dataDir);
    expect(await gatewayStatusWithin(token, 401, 1000)).toBe(401);
    await expectProblem(await decide('dave', 'old-report', 'restore'), 409, 'APP_STATE');
    await expectProblem(await register('alice', plain('old-report')), 409, 'APP_EXISTS');
    // A maker retires only their own apps.
    await expectProblem(await decide('erin', 'territory-view', 'retire'), 404, 'NOT_FOUND');
  });
});

describe('inventory', () => {
  it('filters by owner, state, data class and risk, and pages with next_cursor', async () => {
    const dave = await consoleToken('dave');
    const page = async (query: string) =>
      json<{ records: AppView[]; next_cursor: string | null }>(
        await demo.get(`/admin/v1/apps?${query}`, dave),
      );
    const pii = await page('class=pii');
    expect(pii.records.length).toBeGreaterThan(0);
    expect(pii.records.every((r) => r.data_classes.includes('pii'))).toBe(true);
    expect(pii.records.map((r) => r.id)).toContain('call-notes');
    const low = await page('risk=low&state=approved');
    expect(low.records.every((r) => r.risk === 'low' && r.state === 'approved')).toBe(true);
    expect((await page('owner=bob@example.com')).records.map((r) => r.id)).toEqual(['pipeline-dashboard']);

    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const next: { records: AppView[]; next_cursor: string | null } = await page(
        `limit=2${cursor ? `&cursor=${cursor}` : ''}`,
      );
      seen.push(...next.records.map((r) => r.id));
      cursor = next.next_cursor;
    } while (cursor);
    const all = await page('limit=500');
    expect(seen).toEqual(all.records.map((r) => r.id));
    await expectProblem(await demo.get('/admin/v1/apps?cursor=bm9wZQ', dave), 422, 'INVALID_INPUT');
    await expectProblem(await demo.get('/admin/v1/apps?state=gone', dave), 422, 'INVALID_INPUT');
  });

  it("a maker's inventory holds only their own apps", async () => {
    const mine = await demo.get('/admin/v1/apps?owner=alice@example.com', await consoleToken('erin'));
    const records = (await json<{ records: AppView[] }>(mine)).records;
    expect(records.length).toBeGreaterThan(0);
    expect(records.every((r) => r.owner === 'erin@example.com')).toBe(true);
  });
});

describe('least privilege from usage', () => {
  it('suggest-scopes proposes only what the app used, and what it can drop', async () => {
    await registered('dave', sensitive('wide-app'));
    await decide('rita', 'wide-app', 'approve', 'ok');
    const token = await demo.accessToken('alice', 'wide-app', 'read:account.basic read:contact.basic');
    expect((await demo.get('/crm/v1/accounts?limit=3&fields=name,territory', token)).status).toBe(200);
    expect((await demo.get('/crm/v1/accounts?limit=1&fields=name', token)).status).toBe(200);
    const answer = await demo.get(
      '/admin/v1/apps/wide-app/suggest-scopes?since=1d',
      await consoleToken('alice'),
    );
    expect(answer.status).toBe(200);
    const suggestion = await json<{
      held: string[];
      suggested: string[];
      drop: string[];
      usage: { object: string; used_fields: string[]; unused_fields: string[] }[];
    }>(answer);
    expect(suggestion.held).toEqual(['read:account.basic', 'read:contact.basic', 'read:contact.reach']);
    expect(suggestion.suggested).toEqual(['read:account.basic']);
    expect(suggestion.drop).toEqual(['read:contact.basic', 'read:contact.reach']);
    expect(suggestion.usage).toEqual([
      {
        object: 'account',
        access: 'read',
        used_fields: ['name', 'territory'],
        unused_fields: ['industry', 'owner'],
      },
    ]);
  });
});

describe('bundles: Gatehouse scans what the maker uploads and the deploy gate checks its digest', () => {
  const bundles = fileURLToPath(new URL('./fixtures/bundles/', import.meta.url));
  /** A fixture folder as the gzipped tar a maker's build uploads. */
  const tarball = (name: string): Buffer => {
    const root = join(bundles, name);
    const files = readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((entry) => entry.isFile())
      .map((entry) => join(entry.parentPath, entry.name))
      .sort();
    return tarArchive(files.map((file) => ({ name: relative(root, file), data: readFileSync(file) })));
  };
  const digestOf = (bytes: Buffer) => `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
  const upload = async (user: string, appId: string, bytes: Buffer, type = 'application/gzip') =>
    fetch(`${demo.url}/admin/v1/apps/${appId}/bundle`, {
      method: 'POST',
      headers: { authorization: `Bearer ${await consoleToken(user)}`, 'content-type': type },
      body: new Uint8Array(bytes),
    });
  const deployCheck = async (appId: string, digest: string) =>
    demo.send('POST', `/admin/v1/apps/${appId}/deploy-check`, await consoleToken('alice'), {
      json: { digest },
    });
  const zeroed = {
    critical: 0,
    high: 0,
    medium: 0,
    low: 0,
    secrets: 0,
    bypass: false,
    unpinned: 0,
    lockfile_missing: false,
    unscanned: 0,
  };

  it('attack: a zeroed scan summary re-posted over HTTP no longer approves a draft with embedded keys', async () => {
    await registered('alice', sensitive('keyed-sync'));
    const dirty = tarball('dirty');
    const scanned = await upload('alice', 'keyed-sync', dirty);
    expect(scanned.status).toBe(200);
    const draft = await json<AppView & { bundle_digest: string; approved_digest: string | null }>(scanned);
    expect(draft.state).toBe('draft');
    expect(draft.bundle_digest).toBe(digestOf(dirty));
    expect(draft.approved_digest).toBeNull();
    expect(draft.admission?.rules.map((r) => r.id)).toContain('admission.scan-critical');

    const replayed = await demo.send(
      'PUT',
      '/admin/v1/apps/keyed-sync/manifest',
      await consoleToken('alice'),
      {
        json: { manifest: sensitive('keyed-sync'), scan: zeroed },
      },
    );
    const problem = await expectProblem(replayed, 422, 'INVALID_INPUT');
    expect(problem.detail).toMatch(/upload the bundle/);
    const resubmitted = await demo.send(
      'PUT',
      '/admin/v1/apps/keyed-sync/manifest',
      await consoleToken('alice'),
      {
        json: { manifest: sensitive('keyed-sync') },
      },
    );
    expect((await json<AppView>(resubmitted)).state).toBe('draft');
    expect((await show('keyed-sync')).state).toBe('draft');
    await expectProblem(await deployCheck('keyed-sync', digestOf(dirty)), 409, 'BUNDLE_NOT_APPROVED');
  });

  it('a clean bundle is approved for its digest only: the deploy gate refuses any other bundle', async () => {
    await registered('alice', plain('clean-notes'));
    const clean = tarball('clean');
    const scanned = await upload('alice', 'clean-notes', clean);
    expect(scanned.status).toBe(200);
    const view = await json<AppView & { approved_digest: string }>(scanned);
    expect(view.state).toBe('approved');
    expect(view.approved_digest).toBe(digestOf(clean));

    const allowed = await deployCheck('clean-notes', digestOf(clean));
    expect(allowed.status).toBe(200);
    expect(await json(allowed)).toEqual({ app_id: 'clean-notes', digest: digestOf(clean), approved: true });
    await expectProblem(
      await deployCheck('clean-notes', digestOf(tarball('dirty'))),
      409,
      'BUNDLE_NOT_APPROVED',
    );

    // A bundle with keys is refused for an approved app, and the approved one stays the deploy gate's reference.
    await expectProblem(await upload('alice', 'clean-notes', tarball('dirty')), 403, 'POLICY_DENIED');
    expect((await deployCheck('clean-notes', digestOf(clean))).status).toBe(200);
  });

  it('an upload that is not a zip or gzip tar is refused before it is scanned', async () => {
    await registered('alice', plain('odd-upload'));
    const response = await upload('alice', 'odd-upload', Buffer.from('not a bundle'), 'text/plain');
    await expectProblem(response, 422, 'BUNDLE_INVALID');
    const garbage = await upload('alice', 'odd-upload', Buffer.from('not a bundle'), 'application/zip');
    await expectProblem(garbage, 422, 'BUNDLE_INVALID');
  });
});
