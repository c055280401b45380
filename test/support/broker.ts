import { createHash, randomBytes } from 'node:crypto';
import type { Db } from '../../src/store/index.js';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

/** A browser without a browser: one cookie jar, redirects followed by hand. */
export class Browser {
  readonly jar = new Map<string, string>();

  async fetch(target: URL | string, init: RequestInit = {}): Promise<Response> {
    const cookie = [...this.jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(target, {
      ...init,
      redirect: 'manual',
      headers: { ...init.headers, cookie },
    });
    for (const set of response.headers.getSetCookie()) {
      const [pair = ''] = set.split(';');
      const at = pair.indexOf('=');
      const value = pair.slice(at + 1);
      if (value === '' || /max-age=0/i.test(set)) this.jar.delete(pair.slice(0, at));
      else this.jar.set(pair.slice(0, at), value);
    }
    return response;
  }

  /** Follows one redirect; answers where it points. */
  async step(target: URL | string, init: RequestInit = {}): Promise<URL> {
    const response = await this.fetch(target, init);
    if (![302, 303].includes(response.status)) {
      throw new Error(
        `expected a redirect from ${String(target)}, got ${response.status}: ${await response.text()}`,
      );
    }
    return new URL(response.headers.get('location') ?? '', target);
  }

  post(target: URL | string, form: Record<string, string>): Promise<Response> {
    return this.fetch(target, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams(form).toString(),
    });
  }
}

export function pkce(): { verifier: string; challenge: string } {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

export interface LoginOptions {
  base: string;
  clientId: string;
  redirectUri: string;
  scope: string;
  user: string;
  challenge: string;
  state?: string;
  /** RFC 9396 authorization_details, JSON. */
  authorizationDetails?: string;
}

/**
 * The whole browser sign-in: the broker's /oauth/authorize, the development IdP's login and consent
 * forms, the broker's callback and consent screen. Answers the URL the app is sent back to.
 */
export async function signIn(
  browser: Browser,
  options: LoginOptions,
): Promise<{ back: URL; consentHtml: string; consentPolicy: string }> {
  const authorize = new URL(`${options.base}/oauth/authorize`);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: options.clientId,
    redirect_uri: options.redirectUri,
    scope: options.scope,
    state: options.state ?? 'app-state-1',
    code_challenge: options.challenge,
    code_challenge_method: 'S256',
    ...(options.authorizationDetails === undefined
      ? {}
      : { authorization_details: options.authorizationDetails }),
  }).toString();
  let next = await browser.step(authorize);
  if (!next.pathname.startsWith('/idp/')) throw new Error(`expected the IdP, got ${next.toString()}`);
  next = await browser.step(next); // IdP authorize → login interaction
  next = await browser.step(await browser.step(next, loginForm(options.user)));
  // The IdP may ask for consent to its own client; the broker's callback is where it ends.
  while (!next.pathname.endsWith('/oauth/callback')) {
    if (next.pathname.includes('/interaction/'))
      next = await browser.step(await browser.step(next, form({ prompt: 'consent' })));
    else next = await browser.step(next);
  }
  const consent = await browser.fetch(next);
  if (consent.status !== 200)
    throw new Error(`consent page answered ${consent.status}: ${await consent.text()}`);
  const consentHtml = await consent.text();
  const login = /name="login" value="([^"]+)"/.exec(consentHtml)?.[1] ?? '';
  const csrf = /name="csrf" value="([^"]+)"/.exec(consentHtml)?.[1] ?? '';
  const answer = await browser.post(new URL('/oauth/consent', next), { login, csrf, decision: 'allow' });
  if (answer.status !== 303) throw new Error(`consent answered ${answer.status}: ${await answer.text()}`);
  return {
    back: new URL(answer.headers.get('location') ?? ''),
    consentHtml,
    consentPolicy: consent.headers.get('content-security-policy') ?? '',
  };
}

function form(fields: Record<string, string>): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  };
}
const loginForm = (user: string) => form({ prompt: 'login', login: user, password: 'any' });

export interface DpopKey {
  privateKey: CryptoKey;
  publicJwk: JWK;
}

export async function dpopKey(): Promise<DpopKey> {
  const { privateKey, publicKey } = await generateKeyPair('ES256');
  return { privateKey, publicJwk: await exportJWK(publicKey) };
}

/** A DPoP proof (RFC 9449 §4.2). */
export async function dpopProof(
  key: DpopKey,
  method: string,
  url: string,
  options: { accessToken?: string; iat?: number; jti?: string } = {},
): Promise<string> {
  const ath =
    options.accessToken === undefined
      ? {}
      : { ath: createHash('sha256').update(options.accessToken).digest('base64url') };
  return new SignJWT({
    htm: method,
    htu: url,
    iat: options.iat ?? Math.floor(Date.now() / 1000),
    jti: options.jti ?? randomBytes(12).toString('base64url'),
    ...ath,
  })
    .setProtectedHeader({ alg: 'ES256', typ: 'dpop+jwt', jwk: key.publicJwk })
    .sign(key.privateKey);
}

/** Registers an approved app whose security plan requires DPoP-bound tokens, straight in the catalog. */
export async function insertDpopApp(db: Db, redirectUris: readonly string[] = []): Promise<void> {
  const at = new Date().toISOString();
  await db
    .insertInto('apps')
    .values({
      id: 'dpop-notes',
      client_id: 'dpop-notes',
      name: 'DPoP notes',
      owner: 'alice@example.com',
      status: 'approved',
      scopes: JSON.stringify(['read:account.basic']),
      manifest: JSON.stringify({ name: 'dpop-notes', redirect_uris: redirectUris, require_dpop: true }),
      created_at: at,
      updated_at: at,
    })
    .execute();
}

/** Registers an approved confidential app (its plan's `client_jwks` holds `publicJwk`), straight in the catalog. */
export async function insertConfidentialApp(db: Db, publicJwk: JWK): Promise<void> {
  const at = new Date().toISOString();
  await db
    .insertInto('apps')
    .values({
      id: 'vault-notes',
      client_id: 'vault-notes',
      name: 'Vault notes',
      owner: 'alice@example.com',
      status: 'approved',
      scopes: JSON.stringify(['read:account.basic']),
      manifest: JSON.stringify({ name: 'vault-notes', client_jwks: { keys: [publicJwk] } }),
      created_at: at,
      updated_at: at,
    })
    .execute();
}

/** An RFC 7523 client assertion for `clientId` at `tokenEndpoint`, signed with `key`. */
export function clientAssertion(
  key: DpopKey,
  clientId: string,
  tokenEndpoint: string,
  options: { jti?: string; lifetimeSeconds?: number } = {},
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ jti: options.jti ?? randomBytes(12).toString('base64url') })
    .setProtectedHeader({ alg: 'ES256' })
    .setIssuer(clientId)
    .setSubject(clientId)
    .setAudience(tokenEndpoint)
    .setIssuedAt(now)
    .setExpirationTime(now + (options.lifetimeSeconds ?? 60))
    .sign(key.privateKey);
}

/** The console client's registered redirect URI (the code is read from the redirect, never followed). */
export const consoleRedirectUri = 'http://127.0.0.1:8080/console/callback';

/**
 * Signs `user` in through the code flow (PKCE, dev IdP, consent) and redeems the code at /oauth/token,
 * with a DPoP proof of `dpop` when given.
 */
export async function redeemCodeFlow(options: {
  base: string;
  redirectUri: string;
  scope: string;
  user?: string;
  clientId?: string;
  dpop?: DpopKey;
  authorizationDetails?: string;
}): Promise<Response> {
  const clientId = options.clientId ?? 'call-notes';
  const { verifier, challenge } = pkce();
  const { back } = await signIn(new Browser(), {
    base: options.base,
    clientId,
    redirectUri: options.redirectUri,
    scope: options.scope,
    user: options.user ?? 'alice',
    challenge,
    ...(options.authorizationDetails === undefined
      ? {}
      : { authorizationDetails: options.authorizationDetails }),
  });
  const tokenUrl = `${options.base}/oauth/token`;
  const proof: Record<string, string> = options.dpop
    ? { dpop: await dpopProof(options.dpop, 'POST', tokenUrl) }
    : {};
  return fetch(tokenUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', ...proof },
    body: new URLSearchParams({
      grant_type: 'authorization_code',
      client_id: clientId,
      code: back.searchParams.get('code') ?? '',
      redirect_uri: options.redirectUri,
      code_verifier: verifier,
    }),
  });
}
