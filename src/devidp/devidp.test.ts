import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Fastify, { type FastifyInstance } from 'fastify';
import formbody from '@fastify/formbody';
import { createRemoteJWKSet, decodeProtectedHeader, jwtVerify } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../config/index.js';
import { openLocalSecretStore, type SecretStore } from '../secrets/index.js';
import { createDevIdp, mintDevIdToken, type DevIdp } from './index.js';

let dataDir: string;
let config: Config;
let secrets: SecretStore;
let app: FastifyInstance;
let idp: DevIdp;
let issuer: string;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'gatehouse-devidp-'));
  config = loadConfig({ env: {}, overrides: { dataDir, demo: true, logLevel: 'silent' } });
  secrets = openLocalSecretStore(dataDir);
  const port = await freePort();
  issuer = `http://127.0.0.1:${port}/idp`;
  idp = await createDevIdp({ config, secrets, issuer });
  app = Fastify();
  // As in the server: a form parser at the root must not eat the bodies the provider reads itself.
  await app.register(formbody);
  idp.mount(app);
  app.get('/healthz', async () => ({ status: 'ok' }));
  await app.listen({ host: '127.0.0.1', port });
});

afterAll(async () => {
  await app?.close();
  await idp?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Discovery {
  issuer: string;
  jwks_uri: string;
  token_endpoint: string;
  authorization_endpoint: string;
  id_token_signing_alg_values_supported: string[];
  claims_supported: string[];
}

async function discovery(headers: Record<string, string> = {}): Promise<Discovery> {
  const response = await fetch(`${issuer}/.well-known/openid-configuration`, { headers });
  expect(response.status).toBe(200);
  return (await response.json()) as Discovery;
}

describe('development IdP discovery', () => {
  it('serves OpenID discovery under the issuer path, with URLs under the same path', async () => {
    const metadata = await discovery();
    expect(metadata.issuer).toBe(issuer);
    expect(metadata.jwks_uri.startsWith(`${issuer}/`)).toBe(true);
    expect(metadata.token_endpoint.startsWith(`${issuer}/`)).toBe(true);
    expect(metadata.authorization_endpoint.startsWith(`${issuer}/`)).toBe(true);
    expect(metadata.id_token_signing_alg_values_supported).toEqual(['ES256']);
    expect(metadata.claims_supported).toEqual(
      expect.arrayContaining(['gatehouse_role', 'territory', 'email']),
    );
  });

  it('publishes URLs from the configured issuer, not from a client-chosen Host or X-Forwarded-Host', async () => {
    const metadata = await discovery({ 'x-forwarded-host': 'evil.example', 'x-forwarded-proto': 'https' });
    expect(metadata.jwks_uri.startsWith(`${issuer}/`)).toBe(true);
  });

  it('serves only public signing keys in its JWKS', async () => {
    const { jwks_uri } = await discovery();
    const response = await fetch(jwks_uri);
    expect(response.status).toBe(200);
    const { keys } = (await response.json()) as { keys: Record<string, unknown>[] };
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig' });
    expect(keys[0]).not.toHaveProperty('d');
  });

  it('reads form bodies itself although the app has a root form parser', async () => {
    const { token_endpoint } = await discovery();
    const response = await fetch(token_endpoint, {
      method: 'POST',
      body: new URLSearchParams({ grant_type: 'authorization_code', code: 'nope', client_id: 'gatehouse' }),
    });
    expect(response.status).toBe(400);
    expect(((await response.json()) as { error: string }).error).toBe('invalid_grant');
  });

  it('starts a login for the gatehouse client and keeps the /idp prefix in its redirects', async () => {
    const { authorization_endpoint } = await discovery();
    const authorize = new URL(authorization_endpoint);
    authorize.search = new URLSearchParams({
      client_id: 'gatehouse',
      response_type: 'code',
      scope: 'openid email gatehouse',
      redirect_uri: `${issuer.replace(/\/idp$/, '')}/oauth/callback`,
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    }).toString();
    const response = await fetch(authorize, { redirect: 'manual' });
    expect(response.status).toBe(303);
    const location = new URL(response.headers.get('location') ?? '', authorize);
    expect(location.pathname).toMatch(/^\/idp\/interaction\//);
    const login = await fetch(location, { headers: { cookie: cookiesOf(response) } });
    expect(login.status).toBe(200);
    expect(await login.text()).toContain('<form');
  });

  it('signs in a demo user through the code flow with PKCE and issues an ID token with role and territory', async () => {
    const verifier = 'dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk';
    const redirectUri = `${issuer.replace(/\/idp$/, '')}/oauth/callback`;
    const authorize = new URL((await discovery()).authorization_endpoint);
    authorize.search = new URLSearchParams({
      client_id: 'gatehouse',
      response_type: 'code',
      scope: 'openid email profile gatehouse',
      redirect_uri: redirectUri,
      code_challenge: 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM',
      code_challenge_method: 'S256',
    }).toString();

    const jar = new Map<string, string>();
    const step = async (target: URL, init: RequestInit = {}): Promise<URL> => {
      const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
      const response = await fetch(target, {
        ...init,
        redirect: 'manual',
        headers: { ...init.headers, cookie },
      });
      for (const set of response.headers.getSetCookie()) {
        const [pair = ''] = set.split(';');
        const at = pair.indexOf('=');
        jar.set(pair.slice(0, at), pair.slice(at + 1));
      }
      expect([302, 303]).toContain(response.status);
      return new URL(response.headers.get('location') ?? '', target);
    };
    const submit = (interaction: URL, form: Record<string, string>) =>
      step(interaction, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      });

    let next = await step(authorize);
    next = await step(await submit(next, { prompt: 'login', login: 'bob', password: 'any' }));
    next = await step(await submit(next, { prompt: 'consent' }));
    expect(`${next.origin}${next.pathname}`).toBe(redirectUri);
    const code = next.searchParams.get('code');
    expect(code).toBeTruthy();

    const tokenResponse = await fetch((await discovery()).token_endpoint, {
      method: 'POST',
      body: new URLSearchParams({
        grant_type: 'authorization_code',
        code: code ?? '',
        code_verifier: verifier,
        redirect_uri: redirectUri,
        client_id: 'gatehouse',
      }),
    });
    expect(tokenResponse.status).toBe(200);
    const { id_token } = (await tokenResponse.json()) as { id_token: string };
    const { payload } = await jwtVerify(id_token, createRemoteJWKSet(new URL((await discovery()).jwks_uri)), {
      issuer,
      audience: 'gatehouse',
      algorithms: ['ES256'],
    });
    expect(payload).toMatchObject({
      sub: 'bob',
      email: 'bob@example.com',
      gatehouse_role: 'sales_manager',
      territory: 'EMEA',
    });
  });

  it('leaves the rest of the app alone', async () => {
    expect((await fetch(`http://127.0.0.1:${new URL(issuer).port}/healthz`)).status).toBe(200);
  });
});

describe('mintDevIdToken', () => {
  it('signs an ID token that verifies against the JWKS the running IdP publishes', async () => {
    const token = await mintDevIdToken({ config, secrets, user: 'alice', issuer });
    const { jwks_uri } = await discovery();
    const { payload, protectedHeader } = await jwtVerify(token, createRemoteJWKSet(new URL(jwks_uri)), {
      issuer,
      audience: 'gatehouse',
      algorithms: ['ES256'],
    });
    expect(protectedHeader.alg).toBe('ES256');
    expect(payload).toMatchObject({
      sub: 'alice',
      email: 'alice@example.com',
      name: 'Alice Adams',
      gatehouse_role: 'sales_rep',
      territory: 'EMEA',
    });
    expect((payload.exp ?? 0) - (payload.iat ?? 0)).toBe(600);
    expect(payload.auth_time).toBe(payload.iat);
  });

  it('works without a server: the same key from a second handle on the data dir', async () => {
    const token = await mintDevIdToken({
      config,
      secrets: openLocalSecretStore(dataDir),
      user: 'carol',
      issuer,
    });
    const { keys } = (await (await fetch((await discovery()).jwks_uri)).json()) as {
      keys: { kid: string }[];
    };
    expect(decodeProtectedHeader(token).kid).toBe(keys[0]?.kid);
  });

  it('omits territory for a user without one and honours a frozen clock', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const token = await idp.mintDevIdToken({ user: 'carol', now });
    const { payload } = await jwtVerify(token, createRemoteJWKSet(new URL((await discovery()).jwks_uri)), {
      currentDate: now,
    });
    expect(payload.iat).toBe(now.getTime() / 1000);
    expect(payload.gatehouse_role).toBe('auditor');
    expect(payload).not.toHaveProperty('territory');
  });

  it('refuses an unknown user, including names inherited from Object.prototype', async () => {
    for (const user of ['mallory', 'constructor', '__proto__']) {
      await expect(mintDevIdToken({ config, secrets, user, issuer })).rejects.toMatchObject({
        code: 'USER_UNKNOWN',
      });
    }
  });
});

function cookiesOf(response: Response): string {
  return response.headers
    .getSetCookie()
    .map((cookie) => cookie.split(';')[0])
    .join('; ');
}

function freePort(): Promise<number> {
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
