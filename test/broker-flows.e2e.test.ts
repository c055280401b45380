import { decodeJwt } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { revokeAll } from '../src/broker/index.js';
import { openGatehouseStore } from '../src/database/index.js';
import type { Store } from '../src/store/index.js';
import {
  Browser,
  clientAssertion,
  consoleRedirectUri,
  dpopKey,
  dpopProof,
  insertConfidentialApp,
  insertDpopApp,
  pkce,
  redeemCodeFlow,
  signIn,
  type DpopKey,
} from './support/broker.js';
import { startDemo, type Demo } from './support/demo.js';

const redirectUri = 'http://localhost:5173/callback';
const scope = 'read:account.basic read:contact.basic';

let demo: Demo;
let store: Store;
let appKey: DpopKey;

beforeAll(async () => {
  demo = await startDemo();
  store = await openGatehouseStore(demo.config);
  await insertDpopApp(store.db, [redirectUri]);
  appKey = await dpopKey();
  await insertConfidentialApp(store.db, appKey.publicJwk);
});

afterAll(async () => {
  await store?.close();
  await demo?.stop();
});

function postForm(path: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  return fetch(`${demo.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
}

function postJson(path: string, token: string, body: unknown = {}, headers: Record<string, string> = {}) {
  return fetch(`${demo.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify(body),
  });
}

interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type: string;
  scope: string;
  expires_in: number;
}

async function codeFlow(user = 'alice'): Promise<Tokens> {
  const response = await redeemCodeFlow({ base: demo.url, redirectUri, scope, user });
  expect(response.status).toBe(200);
  return (await response.json()) as Tokens;
}

/** Polls until the gateway answers `status` for this token (revocation holds within a second). */
async function gatewayStatusWithin(token: string, status: number, ms: number): Promise<number> {
  const started = Date.now();
  for (;;) {
    const response = await demo.get('/crm/v1/accounts?limit=1', token);
    if (response.status === status || Date.now() - started > ms) return response.status;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function auditActions(): Promise<string[]> {
  const rows = await store.db.selectFrom('audit_events').select('event').execute();
  return rows.map((row) => (JSON.parse(row.event) as { action: string }).action);
}

describe('authorization code flow with PKCE through the development IdP', () => {
  it('signs a user in end to end: authorize → IdP login → consent → code → tokens → gateway', async () => {
    const { verifier, challenge } = pkce();
    const browser = new Browser();
    const { back, consentHtml, consentPolicy } = await signIn(browser, {
      base: demo.url,
      clientId: 'call-notes',
      redirectUri,
      scope,
      user: 'alice',
      challenge,
      state: 'xyz-123',
    });
    // The consent screen says what the app may do in plain words.
    expect(consentHtml).toContain('See accounts: name, industry, territory, owner');
    expect(consentHtml).toContain('See contacts: first name, last name, title, account id');
    // Who asks and why, and where to take the access back later.
    expect(consentHtml).toContain('<dt>Purpose</dt><dd>log call notes on my accounts</dd>');
    expect(consentHtml).toContain('href="/console/my-apps"');
    // Browsers apply form-action to the 303 after the POST: the app's redirect origin must be admitted.
    expect(consentPolicy).toMatch(/form-action 'self' http:\/\/localhost:5173;/);
    expect(consentPolicy).toContain("frame-ancestors 'none'");
    expect(`${back.origin}${back.pathname}`).toBe(redirectUri);
    expect(back.searchParams.get('state')).toBe('xyz-123');
    expect(back.searchParams.get('iss')).toBe(demo.url);
    const response = await postForm('/oauth/token', {
      grant_type: 'authorization_code',
      client_id: 'call-notes',
      code: back.searchParams.get('code') ?? '',
      redirect_uri: redirectUri,
      code_verifier: verifier,
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const tokens = (await response.json()) as Tokens;
    expect(tokens).toMatchObject({ token_type: 'Bearer', scope });
    expect(tokens.refresh_token).toMatch(/^ghr_/);
    expect(decodeJwt(tokens.access_token)).toMatchObject({ sub: 'alice', client_id: 'call-notes', scope });
    expect((await demo.get('/crm/v1/accounts?limit=1', tokens.access_token)).status).toBe(200);
    // Refresh tokens are stored hashed, never in plain.
    const stored = await store.db
      .selectFrom('broker_refresh_tokens' as never)
      .selectAll()
      .execute();
    expect(JSON.stringify(stored)).not.toContain(tokens.refresh_token.slice(4));
  });

  it('the user can deny consent: the app gets access_denied and its state', async () => {
    const { challenge } = pkce();
    const browser = new Browser();
    const authorize = new URL(`${demo.url}/oauth/authorize`);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'call-notes',
      redirect_uri: redirectUri,
      scope,
      state: 's1',
      code_challenge: challenge,
      code_challenge_method: 'S256',
    }).toString();
    let next = await browser.step(await browser.step(authorize));
    const submit = (fields: Record<string, string>) =>
      browser.step(next, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(fields).toString(),
      });
    next = await browser.step(await submit({ prompt: 'login', login: 'bob', password: 'x' }));
    while (!next.pathname.endsWith('/oauth/callback')) {
      next = next.pathname.includes('/interaction/')
        ? await browser.step(await submit({ prompt: 'consent' }))
        : await browser.step(next);
    }
    const html = await (await browser.fetch(next)).text();
    const login = /name="login" value="([^"]+)"/.exec(html)?.[1] ?? '';
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
    const answer = await browser.post(`${demo.url}/oauth/consent`, { login, csrf, decision: 'deny' });
    const back = new URL(answer.headers.get('location') ?? '');
    expect(back.searchParams.get('error')).toBe('access_denied');
    expect(back.searchParams.get('state')).toBe('s1');
    expect(back.searchParams.has('code')).toBe(false);
  });

  it('rotates the refresh token on every use and keeps the grant', async () => {
    const first = await codeFlow();
    const response = await postForm('/oauth/token', {
      grant_type: 'refresh_token',
      client_id: 'call-notes',
      refresh_token: first.refresh_token,
    });
    expect(response.status).toBe(200);
    const second = (await response.json()) as Tokens;
    expect(second.refresh_token).not.toBe(first.refresh_token);
    expect(second.scope).toBe(scope);
    expect(decodeJwt(second.access_token).sid).toBe(decodeJwt(first.access_token).sid);
    expect((await demo.get('/crm/v1/accounts?limit=1', second.access_token)).status).toBe(200);
  });
});

describe('revocation and introspection', () => {
  it('RFC 7009: a revoked access token is refused by the gateway within a second', async () => {
    const token = await demo.accessToken('alice', 'call-notes', scope);
    expect((await demo.get('/crm/v1/accounts?limit=1', token)).status).toBe(200);
    const response = await postForm('/oauth/revoke', { token, client_id: 'call-notes' });
    expect(response.status).toBe(200);
    expect(await gatewayStatusWithin(token, 401, 1000)).toBe(401);
    const problem = (await (await demo.get('/crm/v1/accounts?limit=1', token)).json()) as { code: string };
    expect(problem.code).toBe('TOKEN_REVOKED');
  });

  it('RFC 7009: revoking a refresh token ends its sign-in, access tokens included', async () => {
    const tokens = await codeFlow();
    expect(
      (await postForm('/oauth/revoke', { token: tokens.refresh_token, client_id: 'call-notes' })).status,
    ).toBe(200);
    expect(await gatewayStatusWithin(tokens.access_token, 401, 1000)).toBe(401);
    const again = await postForm('/oauth/token', {
      grant_type: 'refresh_token',
      client_id: 'call-notes',
      refresh_token: tokens.refresh_token,
    });
    expect(again.status).toBe(400);
  });

  it('revokeAll from another process handle (the CLI) holds on the running server within a second', async () => {
    const erin = await demo.accessToken('erin', 'call-notes', scope);
    const bob = await demo.accessToken('bob', 'call-notes', scope);
    const tokens = await codeFlow('erin');
    const cli = await openGatehouseStore(demo.config);
    try {
      const result = await revokeAll(cli.db, {
        userId: 'erin@example.com',
        reason: 'offboarding',
        actor: 'cli',
      });
      expect(result.refreshTokens).toBeGreaterThanOrEqual(1);
    } finally {
      await cli.close();
    }
    expect(await gatewayStatusWithin(erin, 401, 1000)).toBe(401);
    expect(await gatewayStatusWithin(tokens.access_token, 401, 1000)).toBe(401);
    expect((await demo.get('/crm/v1/accounts?limit=1', bob)).status).toBe(200);
    const refresh = await postForm('/oauth/token', {
      grant_type: 'refresh_token',
      client_id: 'call-notes',
      refresh_token: tokens.refresh_token,
    });
    expect(refresh.status).toBe(400);
    // A token issued after the revocation works again.
    await new Promise((resolve) => setTimeout(resolve, 1100));
    const fresh = await demo.accessToken('erin', 'call-notes', scope);
    expect((await demo.get('/crm/v1/accounts?limit=1', fresh)).status).toBe(200);
  });

  it('a token already in use (its verification and revocation keys cached) is refused once its user is revoked in its app', async () => {
    const erin = await demo.accessToken('erin', 'call-notes', scope);
    const other = await demo.accessToken('erin', 'pipeline-dashboard', 'read:account.basic');
    for (const token of [erin, erin, other]) {
      expect((await demo.get('/crm/v1/accounts?limit=1', token)).status).toBe(200);
    }
    const cli = await openGatehouseStore(demo.config);
    try {
      await revokeAll(cli.db, {
        appId: 'call-notes',
        userId: 'erin@example.com',
        reason: 'one app',
        actor: 'cli',
      });
    } finally {
      await cli.close();
    }
    expect(await gatewayStatusWithin(erin, 401, 1000)).toBe(401);
    expect((await demo.get('/crm/v1/accounts?limit=1', other)).status).toBe(200);
  });

  it('RFC 7662: introspection needs a token with admin or audit:read', async () => {
    const alice = await demo.accessToken('alice', 'call-notes', scope);
    const carol = await demo.accessToken('carol', 'console', 'audit:read');
    const ask = (caller: string | undefined, token: string) =>
      postForm('/oauth/introspect', { token }, caller ? { authorization: `Bearer ${caller}` } : {});
    expect((await ask(undefined, alice)).status).toBe(401);
    expect((await ask(alice, alice)).status).toBe(403);
    const answer = await ask(carol, alice);
    expect(answer.status).toBe(200);
    expect(await answer.json()).toMatchObject({ active: true, sub: 'alice', client_id: 'call-notes', scope });
    expect(await (await ask(carol, 'not-a-token')).json()).toEqual({ active: false });
    await postForm('/oauth/revoke', { token: alice, client_id: 'call-notes' });
    expect(await (await ask(carol, alice)).json()).toEqual({ active: false });
  });
});

describe('DPoP (RFC 9449)', () => {
  it('an app that requires DPoP gets no token without a proof', async () => {
    const response = await demo.exchange('alice', 'dpop-notes', 'read:account.basic');
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_dpop_proof' });
  });

  it('binds the token to the proof key (cnf.jkt) and the broker checks proofs of bound tokens', async () => {
    const key = await dpopKey();
    // Platform scopes come only from the console's sign-in, never by exchange.
    const response = await redeemCodeFlow({
      base: demo.url,
      clientId: 'console',
      redirectUri: consoleRedirectUri,
      scope: 'review',
      user: 'rita',
      dpop: key,
    });
    expect(response.status).toBe(200);
    const { access_token: token, token_type } = (await response.json()) as Tokens;
    expect(token_type).toBe('DPoP');
    expect(decodeJwt(token).cnf).toMatchObject({ jkt: expect.any(String) });
    const url = `${demo.url}/oauth/elevations`;
    const ok = await fetch(url, {
      headers: {
        authorization: `DPoP ${token}`,
        dpop: await dpopProof(key, 'GET', url, { accessToken: token }),
      },
    });
    expect(ok.status).toBe(200);
    const asBearer = await fetch(url, { headers: { authorization: `Bearer ${token}` } });
    expect(asBearer.status).toBe(401);
  });
});

describe('capability tokens', () => {
  it('narrows a token to named accounts with RFC 9396 authorization_details', async () => {
    const response = await postForm('/oauth/token', {
      grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
      subject_token: await demo.idToken('alice', 'call-notes'),
      subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
      client_id: 'call-notes',
      scope,
      authorization_details: JSON.stringify([{ type: 'crm_accounts', account_ids: ['acc_2', 'acc_1'] }]),
    });
    expect(response.status).toBe(200);
    const body = (await response.json()) as Tokens & { authorization_details: unknown };
    expect(body.authorization_details).toEqual([{ type: 'crm_accounts', account_ids: ['acc_1', 'acc_2'] }]);
    expect(decodeJwt(body.access_token).cap).toEqual({ account_ids: ['acc_1', 'acc_2'] });
  });

  it('RFC 9396 on the code flow: authorization_details at /oauth/authorize narrows the code, its token and every refresh', async () => {
    const alice = await demo.accessToken('alice', 'call-notes', 'read:account.basic');
    const page = (await (await demo.get('/crm/v1/accounts?limit=3', alice)).json()) as {
      records: { id: string }[];
    };
    const [first, second, other] = page.records.map((record) => record.id);
    const details = JSON.stringify([{ type: 'crm_accounts', account_ids: [second, first] }]);
    const { verifier, challenge } = pkce();
    const { back, consentHtml } = await signIn(new Browser(), {
      base: demo.url,
      clientId: 'call-notes',
      redirectUri,
      scope,
      user: 'alice',
      challenge,
      authorizationDetails: details,
    });
    // The user is told what the capability narrows the app to before allowing it.
    expect(consentHtml).toContain(`<code>${first}</code>`);
    const redeemed = await postForm('/oauth/token', {
      grant_type: 'authorization_code',
      client_id: 'call-notes',
      code: back.searchParams.get('code') ?? '',
      redirect_uri: redirectUri,
      code_verifier: verifier,
    });
    expect(redeemed.status).toBe(200);
    const tokens = (await redeemed.json()) as Tokens & { authorization_details: unknown };
    const expected = { account_ids: [first, second].sort() };
    expect(tokens.authorization_details).toEqual([{ type: 'crm_accounts', ...expected }]);
    expect(decodeJwt(tokens.access_token).cap).toEqual(expected);
    const seen = (await (await demo.get('/crm/v1/accounts?limit=50', tokens.access_token)).json()) as {
      records: { id: string }[];
    };
    expect(seen.records.map((record) => record.id).sort()).toEqual(expected.account_ids);
    expect((await demo.get(`/crm/v1/accounts/${other}`, tokens.access_token)).status).toBe(404);
    const refreshed = await postForm('/oauth/token', {
      grant_type: 'refresh_token',
      client_id: 'call-notes',
      refresh_token: tokens.refresh_token,
    });
    expect(decodeJwt(((await refreshed.json()) as Tokens).access_token).cap).toEqual(expected);
  });

  it('RFC 9396 on refresh: narrows a sign-in to named accounts, never widens the capability, and a refused widening burns nothing', async () => {
    const tokens = await codeFlow();
    const page = (await (await demo.get('/crm/v1/accounts?limit=3', tokens.access_token)).json()) as {
      records: { id: string }[];
    };
    const [first, second, third] = page.records.map((record) => record.id);
    const details = (ids: (string | undefined)[]) =>
      JSON.stringify([{ type: 'crm_accounts', account_ids: ids }]);
    const narrowed = await postForm('/oauth/token', {
      grant_type: 'refresh_token',
      client_id: 'call-notes',
      refresh_token: tokens.refresh_token,
      authorization_details: details([first, second]),
    });
    expect(narrowed.status).toBe(200);
    const next = (await narrowed.json()) as Tokens;
    expect(decodeJwt(next.access_token).cap).toEqual({ account_ids: [first, second].sort() });
    const wider = await postForm('/oauth/token', {
      grant_type: 'refresh_token',
      client_id: 'call-notes',
      refresh_token: next.refresh_token,
      authorization_details: details([first, third]),
    });
    expect(wider.status).toBe(400);
    expect(await wider.json()).toMatchObject({ error: 'invalid_authorization_details' });
    const kept = await postForm('/oauth/token', {
      grant_type: 'refresh_token',
      client_id: 'call-notes',
      refresh_token: next.refresh_token,
    });
    expect(kept.status).toBe(200);
    expect(decodeJwt(((await kept.json()) as Tokens).access_token).cap).toEqual({
      account_ids: [first, second].sort(),
    });
  });

  it('refuses malformed authorization_details at /oauth/authorize, back to the app, before any sign-in', async () => {
    const authorize = new URL(`${demo.url}/oauth/authorize`);
    authorize.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'call-notes',
      redirect_uri: redirectUri,
      scope,
      state: 's1',
      code_challenge: pkce().challenge,
      code_challenge_method: 'S256',
      authorization_details: '[{"type":"crm_accounts","account_ids":[]}]',
    }).toString();
    const response = await fetch(authorize, { redirect: 'manual' });
    const location = new URL(response.headers.get('location') ?? '');
    expect(location.origin + location.pathname).toBe(redirectUri);
    expect(location.searchParams.get('error')).toBe('invalid_authorization_details');
    expect(location.searchParams.get('state')).toBe('s1');
  });

  it('refuses malformed authorization_details', async () => {
    for (const details of [
      'not json',
      '[]',
      '[{"type":"crm_accounts","account_ids":[]}]',
      '[{"type":"other"}]',
    ]) {
      const response = await postForm('/oauth/token', {
        grant_type: 'urn:ietf:params:oauth:grant-type:token-exchange',
        subject_token: await demo.idToken('alice', 'call-notes'),
        subject_token_type: 'urn:ietf:params:oauth:token-type:id_token',
        client_id: 'call-notes',
        scope,
        authorization_details: details,
      });
      expect(response.status).toBe(400);
      expect(await response.json()).toMatchObject({ error: 'invalid_authorization_details' });
    }
  });
});

describe('just-in-time elevation', () => {
  it('request → another reviewer approves → one short-lived elevated token, every step audited', async () => {
    const alice = await demo.accessToken('alice', 'pipeline-dashboard', 'read:account.basic');
    const rita = await demo.accessToken('rita', 'console', 'review');
    const created = await postJson('/oauth/elevations', alice, {
      scope: 'read:opportunity.financial',
      justification: 'quarter-end forecast review with finance',
    });
    expect(created.status).toBe(201);
    const { id, status } = (await created.json()) as { id: string; status: string };
    expect(status).toBe('pending');
    // Not approved yet: no token.
    expect((await postJson(`/oauth/elevations/${id}/token`, alice)).status).toBe(409);
    // alice is no reviewer.
    expect((await postJson(`/oauth/elevations/${id}/approve`, alice)).status).toBe(403);
    const listed = await fetch(`${demo.url}/oauth/elevations?status=pending`, {
      headers: { authorization: `Bearer ${rita}` },
    });
    expect(((await listed.json()) as { records: { id: string }[] }).records.map((r) => r.id)).toContain(id);
    const approved = await postJson(`/oauth/elevations/${id}/approve`, rita);
    expect(approved.status).toBe(200);
    expect(await approved.json()).toMatchObject({ status: 'approved', reviewer: 'rita@example.com' });
    const issued = await postJson(`/oauth/elevations/${id}/token`, alice);
    expect(issued.status).toBe(200);
    const { access_token: elevated, expires_in } = (await issued.json()) as Tokens;
    const claims = decodeJwt(elevated);
    expect(claims).toMatchObject({
      sub: 'alice',
      elev: id,
      scope: 'read:account.basic read:opportunity.financial',
    });
    expect(expires_in).toBeLessThanOrEqual(900);
    expect((claims.exp as number) - (claims.iat as number)).toBeLessThanOrEqual(900);
    expect((await demo.get('/crm/v1/accounts?limit=1', elevated)).status).toBe(200);
    // Once only.
    expect((await postJson(`/oauth/elevations/${id}/token`, alice)).status).toBe(409);
    expect(await auditActions()).toEqual(
      expect.arrayContaining(['elevation.request', 'elevation.approve', 'elevation.token_issued']),
    );
  });

  it('a refused request gives no token', async () => {
    const alice = await demo.accessToken('alice', 'pipeline-dashboard', 'read:account.basic');
    const rita = await demo.accessToken('rita', 'console', 'review');
    const created = await postJson('/oauth/elevations', alice, {
      scope: 'read:opportunity.financial',
      justification: 'I would like to see the amounts please',
    });
    const { id } = (await created.json()) as { id: string };
    expect((await postJson(`/oauth/elevations/${id}/refuse`, rita)).status).toBe(200);
    expect((await postJson(`/oauth/elevations/${id}/token`, alice)).status).toBe(409);
    expect((await postJson(`/oauth/elevations/${id}/approve`, rita)).status).toBe(409);
  });

  it('refuses a scope the role already allows, one the app was never approved for, and no justification', async () => {
    const alice = await demo.accessToken('alice', 'call-notes', scope);
    const ask = (body: unknown) => postJson('/oauth/elevations', alice, body);
    expect((await ask({ scope: 'read:contact.reach', justification: 'already have it anyway' })).status).toBe(
      400,
    );
    expect((await ask({ scope: 'read:contact.pii', justification: 'not in the security plan' })).status).toBe(
      400,
    );
    expect((await ask({ scope: 'read:contact.pii' })).status).toBe(422);
  });
});

describe('a confidential app authenticates at token exchange with private_key_jwt (RFC 7523)', () => {
  const app = 'vault-notes';
  const asked = 'read:account.basic';
  const endpoint = () => `${demo.url}/oauth/token`;

  it('with an assertion signed by the key in its plan, the exchange succeeds', async () => {
    const assertion = await clientAssertion(appKey, app, endpoint());
    const response = await demo.exchange('alice', app, asked, { clientAssertion: assertion });
    expect(response.status).toBe(200);
    expect(decodeJwt(((await response.json()) as { access_token: string }).access_token)).toMatchObject({
      client_id: app,
      scope: asked,
    });
  });

  it("attack: alice's ID token for the app, without the app's assertion, buys nothing", async () => {
    const response = await demo.exchange('alice', app, asked);
    expect(response.status).toBe(401);
    expect(response.headers.get('content-type')).toMatch(/^application\/json/);
    expect(await response.json()).toMatchObject({ error: 'invalid_client' });
  });

  it('attack: an assertion signed by another key, for another audience, or replayed is invalid_client', async () => {
    const forged = await clientAssertion(await dpopKey(), app, endpoint());
    const elsewhere = await clientAssertion(appKey, app, 'https://idp.example.com/token');
    const longLived = await clientAssertion(appKey, app, endpoint(), { lifetimeSeconds: 3600 });
    for (const assertion of [forged, elsewhere, longLived]) {
      const response = await demo.exchange('alice', app, asked, { clientAssertion: assertion });
      expect(response.status).toBe(401);
      expect(await response.json()).toMatchObject({ error: 'invalid_client' });
    }
    const once = await clientAssertion(appKey, app, endpoint());
    expect((await demo.exchange('alice', app, asked, { clientAssertion: once })).status).toBe(200);
    const replayed = await demo.exchange('alice', app, asked, { clientAssertion: once });
    expect(replayed.status).toBe(401);
  });

  it('a public app that sends an assertion is refused: it has no keys to check it against', async () => {
    const assertion = await clientAssertion(appKey, 'call-notes', endpoint());
    const response = await demo.exchange('alice', 'call-notes', asked, { clientAssertion: assertion });
    expect(response.status).toBe(401);
  });
});
