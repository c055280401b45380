import { createServer, type Server } from 'node:http';
import {
  base64url,
  decodeJwt,
  exportJWK,
  generateKeyPair,
  importJWK,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  Browser,
  consoleRedirectUri,
  dpopKey,
  dpopProof,
  pkce,
  redeemCodeFlow,
  signIn,
  type DpopKey,
} from './support/broker.js';
import { startDemo, type Demo } from './support/demo.js';

/**
 * Attacks on the token broker and on token verification, one test each, through real HTTP against a
 * real demo server (SQLite, the development IdP, the gateway).
 */

const redirectUri = 'http://localhost:5173/callback';
const scope = 'read:account.basic read:contact.basic';

let demo: Demo;
let brokerJwk: JWK;
let brokerKey: CryptoKey;

beforeAll(async () => {
  // rita (reviewer) also reads accounts and may be elevated to opportunity amounts, and reviews contact
  // PII only: the elevation attacks below need a requester who reviews, and a reviewer without the duty.
  demo = await startDemo({
    config: {
      'roles.reviewer.scopes': ['review', 'maker', 'read:account.basic'],
      'roles.reviewer.elevate': ['read:opportunity.financial'],
      'roles.reviewer.reviews': ['read:contact.pii'],
    },
  });
  const secrets = demo.secrets;
  brokerJwk = JSON.parse(
    Buffer.from((await secrets.get('broker/signing-key')) as Uint8Array).toString('utf8'),
  ) as JWK;
  brokerKey = (await importJWK(brokerJwk, 'EdDSA')) as CryptoKey;
});

afterAll(async () => {
  await demo?.stop();
});

const now = () => Math.floor(Date.now() / 1000);

function claims(overrides: JWTPayload = {}): JWTPayload {
  return {
    iss: demo.url,
    aud: 'gatehouse-gateway',
    sub: 'alice',
    client_id: 'call-notes',
    app_id: 'call-notes',
    scope: 'read:account.basic',
    role: 'sales_rep',
    email: 'alice@example.com',
    territory: 'EMEA',
    jti: `attack-${Math.random()}`,
    iat: now(),
    exp: now() + 300,
    ...overrides,
  };
}

/** Signed with the broker's real key: only the one thing a test changes is wrong. */
function withBrokerKey(payload: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  return new SignJWT(payload)
    .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: brokerJwk.kid, ...header } as never)
    .sign(brokerKey);
}

const part = (value: unknown) => base64url.encode(JSON.stringify(value));

async function refused(token: string, code?: string): Promise<void> {
  const response = await demo.get('/crm/v1/accounts?limit=1', token);
  expect(response.status).toBe(401);
  if (code) expect(((await response.json()) as { code: string }).code).toBe(code);
}

function postForm(path: string, form: Record<string, string>, headers: Record<string, string> = {}) {
  return fetch(`${demo.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...headers },
    body: new URLSearchParams(form),
  });
}

describe('forged and malformed access tokens at the gateway', () => {
  it('control: a genuine token signed the same way is accepted', async () => {
    expect((await demo.get('/crm/v1/accounts?limit=1', await withBrokerKey(claims()))).status).toBe(200);
  });

  it('alg none, in any casing', async () => {
    for (const alg of ['none', 'None', 'NONE', 'nOnE']) {
      await refused(`${part({ alg, typ: 'at+jwt' })}.${part(claims())}.`, 'TOKEN_INVALID');
    }
  });

  it('empty signature on a genuine header and payload', async () => {
    const [header, payload] = (await withBrokerKey(claims())).split('.');
    await refused(`${header}.${payload}.`, 'TOKEN_INVALID');
  });

  it("HS256 signed with the broker's public key", async () => {
    const publicJwk = { kty: brokerJwk.kty, crv: brokerJwk.crv, x: brokerJwk.x };
    for (const secret of [
      base64url.decode(brokerJwk.x as string),
      new TextEncoder().encode(JSON.stringify(publicJwk)),
    ]) {
      const token = await new SignJWT(claims())
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid: brokerJwk.kid })
        .sign(secret);
      await refused(token, 'TOKEN_INVALID');
    }
  });

  it("embedded jwk: signed by the attacker's key, which the header carries", async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const token = await new SignJWT(claims())
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', jwk: await exportJWK(publicKey) })
      .sign(privateKey);
    await refused(token, 'TOKEN_INVALID');
  });

  it('jku (and x5u) pointing at a local server: never fetched', async () => {
    const { privateKey, publicKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    const jwk = { ...(await exportJWK(publicKey)), kid: 'evil', alg: 'EdDSA' };
    let hits = 0;
    const server: Server = createServer((_request, response) => {
      hits += 1;
      response.setHeader('content-type', 'application/json');
      response.end(JSON.stringify({ keys: [jwk] }));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as { port: number };
    try {
      const token = await new SignJWT(claims())
        .setProtectedHeader({
          alg: 'EdDSA',
          typ: 'at+jwt',
          kid: 'evil',
          jku: `http://127.0.0.1:${port}/jwks.json`,
          x5u: `http://127.0.0.1:${port}/cert.pem`,
        } as never)
        .sign(privateKey);
      await refused(token, 'TOKEN_INVALID');
      expect(hits).toBe(0);
    } finally {
      server.close();
    }
  });

  it('kid with path traversal', async () => {
    const { privateKey } = await generateKeyPair('EdDSA', { crv: 'Ed25519' });
    for (const kid of [
      '../../secrets/broker__signing-key.json',
      '../../../../etc/passwd',
      '/dev/null',
      "' OR 1=1 --",
    ]) {
      const token = await new SignJWT(claims())
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid })
        .sign(privateKey);
      await refused(token, 'TOKEN_INVALID');
    }
  });

  it('unknown crit header, even correctly signed', async () => {
    // jose will not even sign this: build the JWS by hand with the broker's real key.
    const header = part({
      alg: 'EdDSA',
      typ: 'at+jwt',
      kid: brokerJwk.kid,
      crit: ['gh-skip'],
      'gh-skip': true,
    });
    const payload = part(claims());
    const signature = new Uint8Array(
      await globalThis.crypto.subtle.sign(
        'Ed25519',
        brokerKey,
        new TextEncoder().encode(`${header}.${payload}`),
      ),
    );
    await refused(`${header}.${payload}.${base64url.encode(signature)}`, 'TOKEN_INVALID');
  });

  it('expired', async () => {
    await refused(await withBrokerKey(claims({ iat: now() - 3600, exp: now() - 600 })), 'TOKEN_EXPIRED');
    await refused(
      await demo.expiredAccessToken('alice', 'call-notes', 'read:account.basic'),
      'TOKEN_EXPIRED',
    );
  });

  it('not yet valid (nbf in the future)', async () => {
    await refused(await withBrokerKey(claims({ nbf: now() + 600 })));
  });

  it('wrong iss', async () => {
    await refused(await withBrokerKey(claims({ iss: 'https://evil.example' })), 'TOKEN_INVALID');
  });

  it('wrong aud', async () => {
    await refused(await withBrokerKey(claims({ aud: 'some-other-api' })), 'TOKEN_INVALID');
  });

  it('ID token as access token', async () => {
    await refused(await demo.idToken('alice'), 'TOKEN_INVALID');
  });

  it('JWE (five parts) instead of a JWS', async () => {
    const fake = [part({ alg: 'dir', enc: 'A256GCM' }), '', 'aXY', 'Y2lwaGVy', 'dGFn'].join('.');
    await refused(fake, 'TOKEN_INVALID');
  });

  it('oversized token, refused before parsing', async () => {
    await refused(await withBrokerKey(claims({ padding: 'x'.repeat(10_000) })), 'TOKEN_INVALID');
  });
});

describe('a sign-in is bound to the app it was given to', () => {
  it("control: alice's ID token for call-notes buys a call-notes token", async () => {
    expect((await demo.exchange('alice', 'call-notes', scope)).status).toBe(200);
  });

  it("alice's ID token given to call-notes is refused at another app and at the console", async () => {
    for (const [clientId, asked] of [
      ['pipeline-dashboard', 'read:account.basic'],
      ['console', 'maker'],
    ] as const) {
      const response = await demo.exchange('alice', clientId, asked, { idTokenFor: 'call-notes' });
      expect(response.status, clientId).toBe(400);
      expect(((await response.json()) as { error: string }).error).toMatch(/invalid_(grant|scope)/);
    }
  });

  it('an ID token issued to Gatehouse itself (its sign-in) or to no app buys nothing by exchange', async () => {
    const response = await demo.exchange('alice', 'call-notes', scope, { idTokenFor: null });
    expect(response.status).toBe(400);
    expect(await response.json()).toMatchObject({ error: 'invalid_grant' });
  });

  it('platform scopes are never had by exchange, even with an ID token issued to the console', async () => {
    for (const [user, asked] of [
      ['dave', 'admin'],
      ['rita', 'review'],
      ['carol', 'audit:read'],
      ['alice', 'maker'],
    ] as const) {
      const response = await demo.exchange(user, 'console', asked);
      expect(response.status, asked).toBe(400);
      const body = (await response.json()) as { error: string; error_description: string };
      expect(body.error).toBe('invalid_scope');
      expect(body.error_description).toContain("only through the console's sign-in");
    }
    // dave present at the console's sign-in (authorization code flow) gets admin.
    const signedIn = await redeemCodeFlow({
      base: demo.url,
      clientId: 'console',
      redirectUri: consoleRedirectUri,
      scope: 'admin',
      user: 'dave',
    });
    expect(signedIn.status).toBe(200);
    expect(decodeJwt(((await signedIn.json()) as { access_token: string }).access_token)).toMatchObject({
      sub: 'dave',
      scope: 'admin',
      client_id: 'console',
    });
  });
});

describe('authorization code flow attacks', () => {
  const authorizeUrl = (params: Record<string, string>) => {
    const url = new URL(`${demo.url}/oauth/authorize`);
    url.search = new URLSearchParams({
      response_type: 'code',
      client_id: 'call-notes',
      redirect_uri: redirectUri,
      scope,
      state: 'st',
      ...params,
    }).toString();
    return url;
  };

  it('PKCE plain is refused', async () => {
    const response = await fetch(
      authorizeUrl({ code_challenge: pkce().verifier, code_challenge_method: 'plain' }),
      {
        redirect: 'manual',
      },
    );
    expect(response.status).toBe(303);
    const back = new URL(response.headers.get('location') ?? '');
    expect(`${back.origin}${back.pathname}`).toBe(redirectUri);
    expect(back.searchParams.get('error')).toBe('invalid_request');
    expect(back.searchParams.get('state')).toBe('st');
  });

  it('PKCE missing is refused', async () => {
    const cases: Record<string, string>[] = [
      {},
      { code_challenge_method: 'S256' },
      { code_challenge: pkce().challenge },
    ];
    for (const params of cases) {
      const response = await fetch(authorizeUrl(params), { redirect: 'manual' });
      expect(new URL(response.headers.get('location') ?? '').searchParams.get('error')).toBe(
        'invalid_request',
      );
    }
  });

  it('PKCE wrong verifier: invalid_grant, and the code is used up', async () => {
    const { verifier, challenge } = pkce();
    const { back } = await signIn(new Browser(), {
      base: demo.url,
      clientId: 'call-notes',
      redirectUri,
      scope,
      user: 'alice',
      challenge,
    });
    const code = back.searchParams.get('code') ?? '';
    const redeem = (codeVerifier: string) =>
      postForm('/oauth/token', {
        grant_type: 'authorization_code',
        client_id: 'call-notes',
        code,
        redirect_uri: redirectUri,
        code_verifier: codeVerifier,
      });
    const wrong = await redeem(pkce().verifier);
    expect(wrong.status).toBe(400);
    expect(await wrong.json()).toMatchObject({ error: 'invalid_grant' });
    expect((await redeem(verifier)).status).toBe(400);
  });

  it('redirect URI mismatch: an error page, never a redirect', async () => {
    const { challenge } = pkce();
    for (const uri of [
      'http://localhost:5173/callback/../evil',
      'http://localhost:5173/callback?x=1',
      'http://localhost:5173/Callback',
      'https://evil.example/callback',
      'http://localhost:5173.evil.example/callback',
    ]) {
      const response = await fetch(
        authorizeUrl({ redirect_uri: uri, code_challenge: challenge, code_challenge_method: 'S256' }),
        {
          redirect: 'manual',
        },
      );
      expect(response.status).toBe(400);
      expect(response.headers.get('location')).toBeNull();
    }
  });

  it('redirect URI at the token endpoint differs from the one the code was issued for', async () => {
    const { verifier, challenge } = pkce();
    const { back } = await signIn(new Browser(), {
      base: demo.url,
      clientId: 'call-notes',
      redirectUri,
      scope,
      user: 'alice',
      challenge,
    });
    const response = await postForm('/oauth/token', {
      grant_type: 'authorization_code',
      client_id: 'call-notes',
      code: back.searchParams.get('code') ?? '',
      redirect_uri: 'http://localhost:5173/other',
      code_verifier: verifier,
    });
    expect(response.status).toBe(400);
  });

  it('authorization code replayed: refused, and the tokens issued from it are revoked', async () => {
    const { verifier, challenge } = pkce();
    const { back } = await signIn(new Browser(), {
      base: demo.url,
      clientId: 'call-notes',
      redirectUri,
      scope,
      user: 'alice',
      challenge,
    });
    const form = {
      grant_type: 'authorization_code',
      client_id: 'call-notes',
      code: back.searchParams.get('code') ?? '',
      redirect_uri: redirectUri,
      code_verifier: verifier,
    };
    const first = (await (await postForm('/oauth/token', form)).json()) as { access_token: string };
    expect((await postForm('/oauth/token', form)).status).toBe(400);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await refused(first.access_token, 'TOKEN_REVOKED');
  });

  it('authorization code replayed: the revocation and its audit event name the user the code was issued to, not the app', async () => {
    const { verifier, challenge } = pkce();
    const { back } = await signIn(new Browser(), {
      base: demo.url,
      clientId: 'call-notes',
      redirectUri,
      scope,
      user: 'bob',
      challenge,
    });
    const form = {
      grant_type: 'authorization_code',
      client_id: 'call-notes',
      code: back.searchParams.get('code') ?? '',
      redirect_uri: redirectUri,
      code_verifier: verifier,
    };
    const first = (await (await postForm('/oauth/token', form)).json()) as { access_token: string };
    expect((await postForm('/oauth/token', form)).status).toBe(400);
    const carol = await demo.accessToken('carol', 'console', 'audit:read');
    const events = (await (
      await demo.get('/audit/v1/events?app_id=call-notes&limit=1000', carol)
    ).json()) as { records: { event: { action: string; resource_id: string; actor_id: string } }[] };
    const sid = decodeJwt(first.access_token).sid;
    const revoked = events.records.find(
      (r) => r.event.action === 'token.family_revoked' && r.event.resource_id === sid,
    );
    // User-level detection and containment key on the user: the replay is theirs to look into.
    expect(revoked?.event.actor_id).toBe('bob@example.com');
  });

  it('consent posted from another browser (login CSRF): refused', async () => {
    const { challenge } = pkce();
    const victim = new Browser();
    const attacker = new Browser();
    let consentHtml = '';
    try {
      ({ consentHtml } = await signIn(victim, {
        base: demo.url,
        clientId: 'call-notes',
        redirectUri,
        scope,
        user: 'alice',
        challenge,
      }));
    } catch {
      consentHtml = '';
    }
    // Replaying the form from a browser without the victim's cookie.
    const login = /name="login" value="([^"]+)"/.exec(consentHtml)?.[1] ?? 'x';
    const csrf = /name="csrf" value="([^"]+)"/.exec(consentHtml)?.[1] ?? 'x';
    const response = await attacker.post(`${demo.url}/oauth/consent`, { login, csrf, decision: 'allow' });
    expect(response.status).toBe(400);
  });

  it('refresh-token reuse revokes the whole family and is audited', async () => {
    const tokens = (await (await redeemCodeFlow({ base: demo.url, redirectUri, scope })).json()) as {
      access_token: string;
      refresh_token: string;
    };
    const refresh = (token: string) =>
      postForm('/oauth/token', {
        grant_type: 'refresh_token',
        client_id: 'call-notes',
        refresh_token: token,
      });
    const rotated = (await (await refresh(tokens.refresh_token)).json()) as {
      access_token: string;
      refresh_token: string;
    };
    // The thief replays the first refresh token.
    const reuse = await refresh(tokens.refresh_token);
    expect(reuse.status).toBe(400);
    expect(await reuse.json()).toMatchObject({ error: 'invalid_grant' });
    // The whole family is gone: the rotated refresh token and every access token of the sign-in.
    expect((await refresh(rotated.refresh_token)).status).toBe(400);
    await new Promise((resolve) => setTimeout(resolve, 100));
    await refused(rotated.access_token, 'TOKEN_REVOKED');
    await refused(tokens.access_token, 'TOKEN_REVOKED');
    const carol = await demo.accessToken('carol', 'console', 'audit:read');
    const events = (await (
      await demo.get('/audit/v1/events?app_id=call-notes&limit=1000', carol)
    ).json()) as {
      records: { event: { action: string; resource_id: string } }[];
    };
    const sid = decodeJwt(tokens.access_token).sid;
    expect(
      events.records.some((r) => r.event.action === 'token.family_revoked' && r.event.resource_id === sid),
    ).toBe(true);
  });

  it('a refused refresh (wider scope) does not use the token up: the next honest refresh works', async () => {
    const tokens = (await (
      await redeemCodeFlow({ base: demo.url, redirectUri, scope: 'read:account.basic' })
    ).json()) as { access_token: string; refresh_token: string };
    const refresh = (extra: Record<string, string> = {}) =>
      postForm('/oauth/token', {
        grant_type: 'refresh_token',
        client_id: 'call-notes',
        refresh_token: tokens.refresh_token,
        ...extra,
      });
    const wider = await refresh({ scope: 'read:account.basic read:contact.basic' });
    expect(wider.status).toBe(400);
    expect(await wider.json()).toMatchObject({ error: 'invalid_scope' });
    // Before, the refused request had burnt the token and this one was taken for theft.
    const honest = await refresh();
    expect(honest.status).toBe(200);
    const rotated = (await honest.json()) as { access_token: string };
    expect((await demo.get('/crm/v1/accounts?limit=1', rotated.access_token)).status).toBe(200);
    expect((await demo.get('/crm/v1/accounts?limit=1', tokens.access_token)).status).toBe(200);
  });

  it('a refresh token of another client is refused', async () => {
    const tokens = (await (await redeemCodeFlow({ base: demo.url, redirectUri, scope })).json()) as {
      refresh_token: string;
    };
    const response = await postForm('/oauth/token', {
      grant_type: 'refresh_token',
      client_id: 'pipeline-dashboard',
      refresh_token: tokens.refresh_token,
    });
    expect(response.status).toBe(400);
  });
});

describe('DPoP proof attacks', () => {
  let key: DpopKey;
  let token: string;
  const url = () => `${demo.url}/oauth/elevations`;
  const call = (proof: string, target = url()) =>
    fetch(target, { headers: { authorization: `DPoP ${token}`, dpop: proof } });

  beforeAll(async () => {
    key = await dpopKey();
    const response = await redeemCodeFlow({
      base: demo.url,
      clientId: 'console',
      redirectUri: consoleRedirectUri,
      scope: 'review',
      user: 'rita',
      dpop: key,
    });
    token = ((await response.json()) as { access_token: string }).access_token;
  });

  it('control: a fresh proof is accepted', async () => {
    expect((await call(await dpopProof(key, 'GET', url(), { accessToken: token }))).status).toBe(200);
  });

  it('DPoP proof replayed', async () => {
    const proof = await dpopProof(key, 'GET', url(), { accessToken: token });
    expect((await call(proof)).status).toBe(200);
    const replay = await call(proof);
    expect(replay.status).toBe(401);
    expect(((await replay.json()) as { code: string }).code).toBe('TOKEN_DPOP_INVALID');
  });

  it('DPoP proof for another URL', async () => {
    const proof = await dpopProof(key, 'GET', `${demo.url}/crm/v1/accounts`, { accessToken: token });
    expect((await call(proof)).status).toBe(401);
    const post = await dpopProof(key, 'POST', url(), { accessToken: token });
    expect((await call(post)).status).toBe(401);
  });

  it('DPoP proof for another key', async () => {
    const other = await dpopKey();
    expect((await call(await dpopProof(other, 'GET', url(), { accessToken: token }))).status).toBe(401);
  });

  it('DPoP proof without ath, or for another access token, or too old', async () => {
    expect((await call(await dpopProof(key, 'GET', url()))).status).toBe(401);
    expect((await call(await dpopProof(key, 'GET', url(), { accessToken: 'other' }))).status).toBe(401);
    expect(
      (await call(await dpopProof(key, 'GET', url(), { accessToken: token, iat: now() - 600 }))).status,
    ).toBe(401);
  });

  it('a bound token presented without any proof', async () => {
    expect((await fetch(url(), { headers: { authorization: `DPoP ${token}` } })).status).toBe(401);
  });
});

describe('elevation attacks', () => {
  const poster =
    (token: string) =>
    (path: string, body: unknown = {}) =>
      fetch(`${demo.url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });

  it('a sales rep asks for admin through the console (platform scopes are never elevatable)', async () => {
    const alice = poster(await demo.accessToken('alice', 'console', 'maker'));
    for (const platform of ['admin', 'review', 'audit:read']) {
      const created = await alice('/oauth/elevations', {
        scope: platform,
        justification: 'incident response tonight',
      });
      expect(created.status).toBe(400);
      const body = (await created.json()) as { error: string; error_description: string };
      expect(body.error).toBe('invalid_scope');
      expect(body.error_description).toContain('cannot be had by elevation');
    }
    const rita = poster(await demo.accessToken('rita', 'console', 'review'));
    expect(
      (await rita('/oauth/elevations', { scope: 'admin', justification: 'need admin tonight' })).status,
    ).toBe(400);
    const events = await auditEvents(demo, (e) => e.action === 'elevation.request');
    expect(
      events.filter((e) => e.outcome === 'deny' && e.reason === 'ELEVATION_PLATFORM_SCOPE'),
    ).toHaveLength(4);
    expect(events.filter((e) => e.outcome === 'allow' && /admin|review|audit/.test(e.scope))).toHaveLength(0);
  });

  it('elevation approved by the requester', async () => {
    // In this file's configuration rita (reviewer) also reads accounts and may be elevated to amounts.
    const rita = poster(await demo.accessToken('rita', 'pipeline-dashboard', 'read:account.basic'));
    const created = await rita('/oauth/elevations', {
      scope: 'read:opportunity.financial',
      justification: 'incident response tonight',
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const reviewer = poster(await demo.accessToken('rita', 'console', 'review'));
    const approve = await reviewer(`/oauth/elevations/${id}/approve`);
    expect(approve.status).toBe(403);
    expect(((await approve.json()) as { code: string }).code).toBe('ELEVATION_SELF_REVIEW');
    expect((await rita(`/oauth/elevations/${id}/token`)).status).toBe(409);
  });

  it('elevation approved by a reviewer without the review duty for that data', async () => {
    // rita reviews contact PII only here; alice asks for opportunity amounts.
    const alice = poster(await demo.accessToken('alice', 'pipeline-dashboard', 'read:account.basic'));
    const created = await alice('/oauth/elevations', {
      scope: 'read:opportunity.financial',
      justification: 'quarter-end forecast review',
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const rita = poster(await demo.accessToken('rita', 'console', 'review'));
    const approve = await rita(`/oauth/elevations/${id}/approve`);
    expect(approve.status).toBe(403);
    expect(await approve.json()).toMatchObject({
      code: 'ELEVATION_NOT_REVIEWER',
      detail: expect.stringContaining('read:opportunity.financial'),
    });
    expect((await alice(`/oauth/elevations/${id}/token`)).status).toBe(409);
    const [event] = await auditEvents(demo, (e) => e.action === 'elevation.approve' && e.resource_id === id);
    expect(event).toMatchObject({
      outcome: 'deny',
      reason: 'ELEVATION_NOT_REVIEWER',
      actor_id: 'rita@example.com',
    });
  });
});

interface AuditEvent {
  action: string;
  outcome: string;
  reason: string;
  scope: string;
  resource_id: string;
  actor_id: string;
}

/** The audit events matching `keep`, read through the auditor's API. */
async function auditEvents(on: Demo, keep: (event: AuditEvent) => boolean): Promise<AuditEvent[]> {
  const carol = await on.accessToken('carol', 'console', 'audit:read');
  const response = await on.get('/audit/v1/events?limit=1000', carol);
  expect(response.status).toBe(200);
  const { records } = (await response.json()) as { records: { event: AuditEvent }[] };
  return records.map((r) => r.event).filter(keep);
}
