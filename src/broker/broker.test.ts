import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import formbody from '@fastify/formbody';
import Fastify, { type FastifyInstance } from 'fastify';
import {
  base64url,
  calculateJwkThumbprint,
  createRemoteJWKSet,
  decodeJwt,
  decodeProtectedHeader,
  generateKeyPair,
  importJWK,
  jwtVerify,
  SignJWT,
  type CryptoKey,
  type JWK,
  type JWTPayload,
} from 'jose';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../config/index.js';
import { createDevIdp, mintDevIdToken, signInAtDevIdp, type DevIdp } from '../devidp/index.js';
import { openLocalSecretStore, type SecretStore } from '../secrets/index.js';
import { openGatehouseStore } from '../database/index.js';
import type { Store } from '../store/index.js';
import type { AuditEvent } from '../audit/index.js';
import { createBroker, registerBrokerRoutes, type Broker, type ClientInfo } from './index.js';
import { testDatabase } from '../../test/support/database.js';

const exchangeGrant = 'urn:ietf:params:oauth:grant-type:token-exchange';
const idTokenType = 'urn:ietf:params:oauth:token-type:id_token';

const clients: Record<string, ClientInfo> = {
  'call-notes': {
    appId: 'app-call-notes',
    clientId: 'call-notes',
    name: 'Call notes',
    status: 'approved',
    scopes: [
      'read:account.basic',
      'read:contact.basic',
      'read:contact.reach',
      'read:note.basic',
      'write:contact.note',
    ],
  },
  'pipeline-dashboard': {
    appId: 'app-pipeline-dashboard',
    clientId: 'pipeline-dashboard',
    name: 'Pipeline dashboard',
    status: 'approved',
    scopes: [
      'read:account.basic',
      'read:opportunity.basic',
      'read:opportunity.financial',
      'read:opportunity.aggregate',
    ],
  },
  console: {
    appId: 'app-console',
    clientId: 'console',
    name: 'Console',
    status: 'approved',
    scopes: ['audit:read', 'admin', 'review'],
    redirectUris: ['http://127.0.0.1:8080/console/callback'],
  },
  'suspended-app': {
    appId: 'app-suspended',
    clientId: 'suspended-app',
    name: 'Suspended',
    status: 'suspended',
    scopes: ['read:account.basic'],
  },
};

let dataDir: string;
let config: Config;
let secrets: SecretStore;
let store: Store;
let app: FastifyInstance;
let idp: DevIdp;
let broker: Broker;
let url: string;
let idpIssuer: string;
/** How many times the broker asked the catalog (here: `clients`) for a client. */
let clientLookups = 0;
/** The broker's clock: real time unless a test freezes it. */
let frozen: Date | undefined;
/** The broker's audit sink: grants are refused (503) without one, so the unit tests keep what it records. */
const recorded: AuditEvent[] = [];
const grantEvents = { append: async (event: AuditEvent) => void recorded.push(event) };

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-broker-'));
  config = loadConfig({
    env: {},
    overrides: { dataDir, demo: true, logLevel: 'silent', ...(await testDatabase(dataDir)) },
  });
  secrets = openLocalSecretStore(dataDir);
  store = await openGatehouseStore(config);
  // The issuer must carry the real port: pick a free one, build everything, then listen on it.
  const port = await freePort();
  url = `http://127.0.0.1:${port}`;
  idpIssuer = `${url}/idp`;
  idp = await createDevIdp({ config, secrets, issuer: idpIssuer });
  broker = await createBroker({
    config,
    secrets,
    db: store.db,
    issuer: url,
    lookupClient: async (clientId) => {
      clientLookups++;
      // A catalog read takes an I/O turn, as the store's does.
      await new Promise((resolve) => setImmediate(resolve));
      return Object.hasOwn(clients, clientId) ? clients[clientId] : undefined;
    },
    now: () => frozen ?? new Date(),
    audit: grantEvents,
  });
  app = Fastify();
  await app.register(formbody);
  idp.mount(app);
  registerBrokerRoutes(app, broker);
  await app.listen({ host: '127.0.0.1', port });
});

afterAll(async () => {
  await app?.close();
  await idp?.close();
  broker?.close();
  await store?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

beforeEach(() => {
  frozen = undefined;
});

// ---- helpers ---------------------------------------------------------------------------------------

interface TokenAnswer {
  access_token: string;
  issued_token_type: string;
  token_type: string;
  expires_in: number;
  scope: string;
}

interface ProblemAnswer {
  type: string;
  status: number;
  code: string;
  error: string;
  error_description: string;
}

function postToken(form: Record<string, string>): Promise<Response> {
  return fetch(`${url}/oauth/token`, { method: 'POST', body: new URLSearchParams(form) });
}

async function exchange(subjectToken: string, clientId: string, scope: string): Promise<Response> {
  return postToken({
    grant_type: exchangeGrant,
    subject_token: subjectToken,
    subject_token_type: idTokenType,
    client_id: clientId,
    scope,
  });
}

/** An ID token issued to `app`'s own IdP client (call-notes unless named). */
const idToken = (user: string, now?: Date, app = 'call-notes') =>
  mintDevIdToken({ config, secrets, user, issuer: idpIssuer, now, audience: app });

async function accessToken(user: string, clientId: string, scope: string): Promise<string> {
  // Platform scopes come only from the console's sign-in at the IdP, never by exchange.
  if (clientId === 'console') {
    const redirectUri = clients.console?.redirectUris?.[0] ?? '';
    return (await signInAtDevIdp({ base: url, clientId, redirectUri, scope, user })).access_token as string;
  }
  const response = await exchange(await idToken(user, undefined, clientId), clientId, scope);
  expect(response.status).toBe(200);
  return ((await response.json()) as TokenAnswer).access_token;
}

/** Asserts an OAuth error (RFC 6749 §5.2: application/json) with the problem members, and answers it. */
async function expectOAuthError(response: Response, status: number, error: string): Promise<ProblemAnswer> {
  expect(response.status).toBe(status);
  expect(response.headers.get('content-type')).toMatch(/^application\/json/);
  expect(response.headers.get('cache-control')).toBe('no-store');
  const body = (await response.json()) as ProblemAnswer;
  expect(body).toMatchObject({ status, error, code: `OAUTH_${error.toUpperCase()}` });
  expect(typeof body.error_description).toBe('string');
  return body;
}

async function storedPrivateJwk(name: string): Promise<JWK> {
  return JSON.parse(Buffer.from((await secrets.get(name)) as Uint8Array).toString('utf8')) as JWK;
}

/** A JWT signed with the development IdP's own key, with any claims and header a test wants. */
async function signWithIdpKey(claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const jwk = await storedPrivateJwk('devidp/signing-key');
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'ES256', kid: jwk.kid, typ: 'JWT', ...header })
    .sign(await importJWK(jwk, 'ES256'));
}

function idTokenClaims(overrides: JWTPayload = {}): JWTPayload {
  const iat = Math.floor(Date.now() / 1000);
  return {
    iss: idpIssuer,
    // Issued to the call-notes app's own IdP client, as the exchange below requires.
    aud: 'call-notes',
    sub: 'alice',
    email: 'alice@example.com',
    email_verified: true,
    gatehouse_role: 'sales_rep',
    territory: 'EMEA',
    iat,
    exp: iat + 600,
    ...overrides,
  };
}

/** A JWT signed with the broker's own key, with any claims and header a test wants. */
async function signWithBrokerKey(claims: JWTPayload, header: Record<string, unknown> = {}): Promise<string> {
  const jwk = await storedPrivateJwk('broker/signing-key');
  return new SignJWT(claims)
    .setProtectedHeader({ alg: 'EdDSA', kid: jwk.kid, typ: 'at+jwt', ...header })
    .sign(await importJWK(jwk, 'EdDSA'));
}

function accessTokenClaims(overrides: JWTPayload = {}): JWTPayload {
  const iat = Math.floor(Date.now() / 1000);
  return {
    iss: url,
    aud: 'gatehouse-gateway',
    sub: 'alice',
    client_id: 'call-notes',
    app_id: 'app-call-notes',
    scope: 'read:account.basic',
    jti: `test-${Math.random()}`,
    role: 'sales_rep',
    email: 'alice@example.com',
    iat,
    exp: iat + 300,
    ...overrides,
  };
}

function unsigned(header: Record<string, unknown>, claims: JWTPayload): string {
  const part = (value: unknown) => base64url.encode(JSON.stringify(value));
  return `${part(header)}.${part(claims)}.`;
}

async function otherKey(alg: 'ES256' | 'EdDSA'): Promise<CryptoKey> {
  return (await generateKeyPair(alg, alg === 'EdDSA' ? { crv: 'Ed25519' } : {})).privateKey;
}

// ---- discovery -------------------------------------------------------------------------------------

describe('discovery', () => {
  it('serves RFC 8414 authorization server metadata', async () => {
    const response = await fetch(`${url}/.well-known/oauth-authorization-server`);
    expect(response.status).toBe(200);
    const metadata = (await response.json()) as Record<string, unknown>;
    expect(metadata).toMatchObject({
      issuer: url,
      token_endpoint: `${url}/oauth/token`,
      jwks_uri: `${url}/.well-known/jwks.json`,
      token_endpoint_auth_methods_supported: ['none', 'private_key_jwt'],
      code_challenge_methods_supported: ['S256'],
    });
    expect(metadata.grant_types_supported).toContain(exchangeGrant);
    expect(metadata.scopes_supported).toEqual(expect.arrayContaining(['read:contact.basic', 'audit:read']));
  });

  it('serves the public Ed25519 key, kid = its RFC 7638 thumbprint, never the private part', async () => {
    const response = await fetch(`${url}/.well-known/jwks.json`);
    expect(response.status).toBe(200);
    const { keys } = (await response.json()) as { keys: JWK[] };
    expect(keys).toHaveLength(1);
    const [key] = keys as [JWK];
    expect(key).toMatchObject({ kty: 'OKP', crv: 'Ed25519', alg: 'EdDSA', use: 'sig' });
    expect(key).not.toHaveProperty('d');
    expect(key.kid).toBe(await calculateJwkThumbprint(key));
  });

  it('keeps the signing key across a restart on the same data dir', async () => {
    const again = await createBroker({
      config,
      secrets: openLocalSecretStore(dataDir),
      db: store.db,
      issuer: url,
      lookupClient: async () => undefined,
    });
    expect(again.jwks.keys[0]?.kid).toBe(broker.jwks.keys[0]?.kid);
  });
});

// ---- token exchange --------------------------------------------------------------------------------

describe('token exchange (RFC 8693)', () => {
  it('exchanges a demo ID token for an RFC 9068 access token', async () => {
    const response = await exchange(
      await idToken('alice'),
      'call-notes',
      'read:account.basic read:contact.basic write:contact.note',
    );
    expect(response.status).toBe(200);
    expect(response.headers.get('cache-control')).toBe('no-store');
    const answer = (await response.json()) as TokenAnswer;
    expect(answer).toMatchObject({
      issued_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      token_type: 'Bearer',
      scope: 'read:account.basic read:contact.basic write:contact.note',
    });
    expect(answer.expires_in).toBe(config.broker.accessTokenTtlSeconds);
    expect(answer.expires_in).toBeLessThanOrEqual(900);

    // A resource server holding only the published metadata can verify it.
    const { payload, protectedHeader } = await jwtVerify(
      answer.access_token,
      createRemoteJWKSet(new URL(`${url}/.well-known/jwks.json`)),
      { issuer: url, audience: 'gatehouse-gateway', typ: 'at+jwt', algorithms: ['EdDSA'] },
    );
    expect(protectedHeader).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt', kid: broker.jwks.keys[0]?.kid });
    expect(payload).toMatchObject({
      sub: 'alice',
      client_id: 'call-notes',
      app_id: 'app-call-notes',
      scope: answer.scope,
      email: 'alice@example.com',
      role: 'sales_rep',
      territory: 'EMEA',
    });
    expect(typeof payload.jti).toBe('string');
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(answer.expires_in);
  });

  it('gives every token its own jti', async () => {
    const [a, b] = await Promise.all(
      [1, 2].map(() => accessToken('alice', 'call-notes', 'read:account.basic')),
    );
    expect(decodeJwt(a as string).jti).not.toBe(decodeJwt(b as string).jti);
  });

  it("silently drops an approved scope the user's role does not allow", async () => {
    const token = await accessToken(
      'alice',
      'pipeline-dashboard',
      'read:opportunity.basic read:opportunity.financial',
    );
    expect(decodeJwt(token).scope).toBe('read:opportunity.basic');
    const managers = await accessToken(
      'bob',
      'pipeline-dashboard',
      'read:opportunity.basic read:opportunity.financial',
    );
    expect(decodeJwt(managers).scope).toBe('read:opportunity.basic read:opportunity.financial');
  });

  it('refuses with invalid_scope when the role allows none of the requested scopes', async () => {
    await expectOAuthError(
      await exchange(
        await idToken('alice', undefined, 'pipeline-dashboard'),
        'pipeline-dashboard',
        'read:opportunity.aggregate',
      ),
      400,
      'invalid_scope',
    );
  });

  it('gives carol audit:read through the console', async () => {
    const token = await accessToken('carol', 'console', 'audit:read');
    expect(decodeJwt(token)).toMatchObject({ sub: 'carol', scope: 'audit:read', role: 'auditor' });
    expect(decodeJwt(token)).not.toHaveProperty('territory');
  });

  it('refuses alice admin through the console (invalid_scope)', async () => {
    await expectOAuthError(await exchange(await idToken('alice'), 'console', 'admin'), 400, 'invalid_scope');
  });

  it('refuses a scope the app was never approved for, rather than dropping it', async () => {
    const response = await exchange(
      await idToken('bob'),
      'call-notes',
      'read:account.basic read:contact.pii',
    );
    const problem = await expectOAuthError(response, 400, 'invalid_scope');
    expect(problem.type).toBe(`${url}/problems/oauth-invalid-scope`);
  });

  it('refuses a request without scope (invalid_scope)', async () => {
    const response = await postToken({
      grant_type: exchangeGrant,
      subject_token: await idToken('alice'),
      subject_token_type: idTokenType,
      client_id: 'call-notes',
    });
    await expectOAuthError(response, 400, 'invalid_scope');
  });

  it('refuses an unknown client and a client that is not approved (invalid_client)', async () => {
    await expectOAuthError(
      await exchange(await idToken('alice'), 'no-such-app', 'read:account.basic'),
      401,
      'invalid_client',
    );
    await expectOAuthError(
      await exchange(await idToken('alice'), 'suspended-app', 'read:account.basic'),
      401,
      'invalid_client',
    );
    await expectOAuthError(
      await exchange(await idToken('alice'), 'constructor', 'read:account.basic'),
      401,
      'invalid_client',
    );
  });

  it('refuses other grant types (unsupported_grant_type)', async () => {
    await expectOAuthError(
      await postToken({ grant_type: 'password', client_id: 'call-notes' }),
      400,
      'unsupported_grant_type',
    );
  });

  it('refuses a subject token of another type (invalid_request)', async () => {
    const response = await postToken({
      grant_type: exchangeGrant,
      subject_token: await idToken('alice'),
      subject_token_type: 'urn:ietf:params:oauth:token-type:access_token',
      client_id: 'call-notes',
      scope: 'read:account.basic',
    });
    await expectOAuthError(response, 400, 'invalid_request');
  });

  it('refuses a repeated parameter (invalid_request)', async () => {
    const body = new URLSearchParams({
      grant_type: exchangeGrant,
      subject_token: await idToken('alice'),
      subject_token_type: idTokenType,
      client_id: 'call-notes',
    });
    body.append('scope', 'read:account.basic');
    body.append('scope', 'read:contact.basic');
    await expectOAuthError(
      await fetch(`${url}/oauth/token`, { method: 'POST', body }),
      400,
      'invalid_request',
    );
  });

  it('refuses a JSON token request (invalid_request)', async () => {
    const response = await fetch(`${url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        grant_type: exchangeGrant,
        subject_token: await idToken('alice'),
        subject_token_type: idTokenType,
        client_id: 'call-notes',
        scope: 'read:account.basic',
      }),
    });
    await expectOAuthError(response, 400, 'invalid_request');
  });
});

describe('token exchange refuses bad subject tokens (invalid_grant)', () => {
  const refuses = async (subjectToken: string) =>
    expectOAuthError(await exchange(subjectToken, 'call-notes', 'read:account.basic'), 400, 'invalid_grant');

  it('an ID token signed by another key with an unknown kid', async () => {
    const token = await new SignJWT(idTokenClaims())
      .setProtectedHeader({ alg: 'ES256', kid: 'other' })
      .sign(await otherKey('ES256'));
    await refuses(token);
  });

  it("an ID token signed by another key that claims the IdP's kid", async () => {
    const kid = decodeProtectedHeader(await idToken('alice')).kid as string;
    const token = await new SignJWT(idTokenClaims())
      .setProtectedHeader({ alg: 'ES256', kid })
      .sign(await otherKey('ES256'));
    await refuses(token);
  });

  it('an expired ID token', async () => {
    await refuses(await idToken('alice', new Date(Date.now() - 20 * 60_000)));
  });

  it('an unexpired ID token issued longer ago than idp.maxIdTokenAgeSeconds', async () => {
    const iat = Math.floor(Date.now() / 1000) - config.idp.maxIdTokenAgeSeconds - 60;
    await refuses(
      await signWithIdpKey(idTokenClaims({ iat, exp: iat + 2 * config.idp.maxIdTokenAgeSeconds })),
    );
  });

  it('an ID token for another audience', async () => {
    await refuses(await signWithIdpKey(idTokenClaims({ aud: 'some-other-client' })));
  });

  it('a control: the same claims, signed alike, are accepted', async () => {
    const response = await exchange(
      await signWithIdpKey(idTokenClaims()),
      'call-notes',
      'read:account.basic',
    );
    expect(response.status).toBe(200);
  });

  it("an ID token with email_verified false for bob's address, acting as bob", async () => {
    await refuses(
      await signWithIdpKey(
        idTokenClaims({
          sub: 'mallory',
          email: 'bob@example.com',
          email_verified: false,
          gatehouse_role: 'sales_manager',
        }),
      ),
    );
    await refuses(
      await signWithIdpKey(
        idTokenClaims({ sub: 'mallory', email: 'bob@example.com', email_verified: undefined }),
      ),
    );
  });

  it("another client's ID token that lists the app among its audiences (azp: other)", async () => {
    await refuses(
      await signWithIdpKey(idTokenClaims({ aud: ['other-app', 'call-notes'], azp: 'other-app' })),
    );
    // Several audiences and no azp: nothing says the token was issued to the app.
    await refuses(await signWithIdpKey(idTokenClaims({ aud: ['other-app', 'call-notes'] })));
  });

  it('a fresh ID token for a sign-in older than idp.maxIdTokenAgeSeconds (auth_time)', async () => {
    const authTime = Math.floor(Date.now() / 1000) - config.idp.maxIdTokenAgeSeconds - 60;
    await refuses(await signWithIdpKey(idTokenClaims({ auth_time: authTime })));
  });

  it("an ID token minted before the user's revocation buys nothing after it; a later sign-in does", async () => {
    const before = await idToken('bob');
    await broker.revokeAll({ userId: 'BOB@example.com', reason: 'containment' });
    await refuses(before);
    await new Promise((resolve) => setTimeout(resolve, 1100));
    expect((await exchange(await idToken('bob'), 'call-notes', 'read:account.basic')).status).toBe(200);
  });

  it('an ID token from another issuer', async () => {
    await refuses(await signWithIdpKey(idTokenClaims({ iss: 'https://idp.example' })));
  });

  it('an ID token without iat', async () => {
    await refuses(await signWithIdpKey(idTokenClaims({ iat: undefined })));
  });

  it('an ID token without the role claim', async () => {
    await refuses(await signWithIdpKey(idTokenClaims({ gatehouse_role: undefined })));
  });

  it('an ID token whose role claim is not a string', async () => {
    await refuses(await signWithIdpKey(idTokenClaims({ gatehouse_role: ['admin'] })));
  });

  it('an IdP access token (typ at+jwt) presented as an ID token', async () => {
    await refuses(await signWithIdpKey(idTokenClaims(), { typ: 'at+jwt' }));
  });

  it('an unsigned ID token (alg none)', async () => {
    await refuses(unsigned({ alg: 'none', typ: 'JWT' }, idTokenClaims()));
  });

  it("an HS256 ID token keyed with the IdP's public key", async () => {
    const jwk = await storedPrivateJwk('devidp/signing-key');
    const secret = new TextEncoder().encode(
      JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }),
    );
    await refuses(
      await new SignJWT(idTokenClaims()).setProtectedHeader({ alg: 'HS256', kid: jwk.kid }).sign(secret),
    );
  });

  it("the broker's own access token presented as an ID token", async () => {
    await refuses(await accessToken('alice', 'call-notes', 'read:account.basic'));
  });

  it('garbage', async () => {
    await refuses('not.a.jwt');
  });
});

// ---- access token verification ---------------------------------------------------------------------

describe('verifyAccessToken', () => {
  const rejects = (token: string, code: 'TOKEN_INVALID' | 'TOKEN_EXPIRED') =>
    expect(broker.verifyAccessToken(token)).rejects.toMatchObject({ code });

  it('answers the claims of a token it issued', async () => {
    const token = await accessToken('bob', 'pipeline-dashboard', 'read:opportunity.basic');
    await expect(broker.verifyAccessToken(token)).resolves.toMatchObject({
      iss: url,
      aud: 'gatehouse-gateway',
      sub: 'bob',
      client_id: 'pipeline-dashboard',
      app_id: 'app-pipeline-dashboard',
      scope: 'read:opportunity.basic',
      role: 'sales_manager',
      email: 'bob@example.com',
      territory: 'EMEA',
    });
  });

  it('requests arriving together after the client cache expired share one catalog read, not one each', async () => {
    const token = await accessToken('bob', 'pipeline-dashboard', 'read:opportunity.basic');
    // Past the client cache's 500 ms, so the next verification reads the catalog again.
    await new Promise((resolve) => setTimeout(resolve, 600));
    const before = clientLookups;
    await Promise.all(Array.from({ length: 20 }, () => broker.verifyAccessToken(token)));
    expect(clientLookups - before).toBe(1);
  });

  it('rejects an ID token presented as an access token', async () => {
    await rejects(await idToken('alice'), 'TOKEN_INVALID');
  });

  it("rejects a token signed with the broker's key but typ JWT instead of at+jwt", async () => {
    await rejects(await signWithBrokerKey(accessTokenClaims(), { typ: 'JWT' }), 'TOKEN_INVALID');
  });

  it('rejects a token signed by another Ed25519 key claiming our kid', async () => {
    const token = await new SignJWT(accessTokenClaims())
      .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', kid: broker.jwks.keys[0]?.kid })
      .sign(await otherKey('EdDSA'));
    await rejects(token, 'TOKEN_INVALID');
  });

  it('rejects alg none', async () => {
    await rejects(unsigned({ alg: 'none', typ: 'at+jwt' }, accessTokenClaims()), 'TOKEN_INVALID');
  });

  it('rejects HS256 keyed with the public key (algorithm confusion)', async () => {
    const publicJwk = broker.jwks.keys[0] as JWK;
    for (const secret of [
      base64url.decode(publicJwk.x as string),
      new TextEncoder().encode(JSON.stringify(publicJwk)),
    ]) {
      const token = await new SignJWT(accessTokenClaims())
        .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt' })
        .sign(secret);
      await rejects(token, 'TOKEN_INVALID');
    }
  });

  it('rejects an expired token with TOKEN_EXPIRED, even after it was cached', async () => {
    const token = await accessToken('alice', 'call-notes', 'read:account.basic');
    await broker.verifyAccessToken(token);
    frozen = new Date((decodeJwt(token).exp as number) * 1000 + 10_000);
    await rejects(token, 'TOKEN_EXPIRED');
  });

  it('allows 5 s of clock skew past exp, and no more', async () => {
    const iat = Math.floor(Date.now() / 1000) - 100;
    const token = await signWithBrokerKey(accessTokenClaims({ iat, exp: iat + 98 }));
    await expect(broker.verifyAccessToken(token)).resolves.toMatchObject({ sub: 'alice' });
    await rejects(await signWithBrokerKey(accessTokenClaims({ iat, exp: iat + 90 })), 'TOKEN_EXPIRED');
  });

  it('rejects a token for another audience', async () => {
    await rejects(await signWithBrokerKey(accessTokenClaims({ aud: 'someone-else' })), 'TOKEN_INVALID');
  });

  it('rejects a token from another issuer', async () => {
    await rejects(
      await signWithBrokerKey(accessTokenClaims({ iss: 'https://elsewhere.example' })),
      'TOKEN_INVALID',
    );
  });

  it('rejects a token missing a required claim', async () => {
    for (const claim of ['app_id', 'client_id', 'scope', 'role', 'jti', 'sub', 'exp']) {
      await rejects(await signWithBrokerKey(accessTokenClaims({ [claim]: undefined })), 'TOKEN_INVALID');
    }
  });

  it('rejects a token with a claim of the wrong type', async () => {
    await rejects(await signWithBrokerKey(accessTokenClaims({ scope: ['admin'] })), 'TOKEN_INVALID');
    await rejects(await signWithBrokerKey(accessTokenClaims({ territory: 1 })), 'TOKEN_INVALID');
  });

  it('rejects exp = Infinity (parsed from 1e400)', async () => {
    const jwk = await storedPrivateJwk('broker/signing-key');
    const header = base64url.encode(JSON.stringify({ alg: 'EdDSA', typ: 'at+jwt', kid: jwk.kid }));
    const payload = base64url.encode(JSON.stringify(accessTokenClaims()).replace(/"exp":\d+/, '"exp":1e400'));
    const { subtle } = globalThis.crypto;
    const key = (await importJWK(jwk, 'EdDSA')) as CryptoKey;
    const signature = new Uint8Array(
      await subtle.sign('Ed25519', key, new TextEncoder().encode(`${header}.${payload}`)),
    );
    await rejects(`${header}.${payload}.${base64url.encode(signature)}`, 'TOKEN_INVALID');
  });

  it('never puts the token in the error message', async () => {
    const token = await idToken('alice');
    const error: unknown = await broker.verifyAccessToken(token).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'TOKEN_INVALID' });
    expect((error as Error).message).not.toContain(token.split('.')[1]);
  });

  it('caches verified claims: the same frozen object until forget(jti)', async () => {
    const token = await accessToken('alice', 'call-notes', 'read:account.basic');
    const first = await broker.verifyAccessToken(token);
    expect(await broker.verifyAccessToken(token)).toBe(first);
    expect(Object.isFrozen(first)).toBe(true);
    broker.forget(first.jti);
    const again = await broker.verifyAccessToken(token);
    expect(again).not.toBe(first);
    expect(again).toEqual(first);
  });

  it('does not accept a tampered copy of a cached token', async () => {
    const token = await accessToken('alice', 'call-notes', 'read:account.basic');
    await broker.verifyAccessToken(token);
    const [header, payload, signature] = token.split('.') as [string, string, string];
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as JWTPayload;
    const widened = base64url.encode(
      JSON.stringify({ ...claims, scope: 'read:account.basic read:contact.pii' }),
    );
    await rejects(`${header}.${widened}.${signature}`, 'TOKEN_INVALID');
    const flipped = signature.startsWith('A') ? `B${signature.slice(1)}` : `A${signature.slice(1)}`;
    await rejects(`${header}.${payload}.${flipped}`, 'TOKEN_INVALID');
  });
});

describe('an unreachable IdP', () => {
  it('answers 503 DEPENDENCY_UNAVAILABLE, not invalid_grant, and retries discovery next time', async () => {
    const offline = loadConfig({
      env: {},
      overrides: { dataDir, demo: true, logLevel: 'silent', 'idp.issuer': 'http://127.0.0.1:9/idp' },
    });
    const isolated = await createBroker({
      config: offline,
      secrets,
      db: store.db,
      issuer: url,
      lookupClient: async (id) => clients[id],
      audit: grantEvents,
    });
    const params = {
      grant_type: exchangeGrant,
      subject_token: await idToken('alice'),
      subject_token_type: idTokenType,
      client_id: 'call-notes',
      scope: 'read:account.basic',
    };
    for (let attempt = 0; attempt < 2; attempt++) {
      await expect(isolated.exchangeToken(params)).rejects.toMatchObject({ code: 'DEPENDENCY_UNAVAILABLE' });
    }
  });
});

describe('routes without a form parser in the app', () => {
  it('bring their own', async () => {
    const bare = Fastify();
    registerBrokerRoutes(bare, broker);
    const response = await bare.inject({
      method: 'POST',
      url: '/oauth/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: new URLSearchParams({ grant_type: 'password' }).toString(),
    });
    expect(response.statusCode).toBe(400);
    expect(response.json()).toMatchObject({ error: 'unsupported_grant_type' });
    await bare.close();
  });
});

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = probe.address();
      probe.close(() =>
        typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port')),
      );
    });
  });
}
