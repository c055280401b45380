import { createHash, randomBytes } from 'node:crypto';
import { GatehouseError, OAuthError } from '../errors/index.js';

export interface DevSignInOptions {
  /** The Gatehouse server, e.g. `http://127.0.0.1:8080`. */
  base: string;
  clientId: string;
  /** One of the client's registered redirect URIs; the code is read from the redirect, never followed. */
  redirectUri: string;
  scope: string;
  /** The demo user who signs in at the development IdP. */
  user: string;
}

/**
 * A demo user's sign-in through the authorization code flow with PKCE, as a browser would go through
 * it: the broker's /oauth/authorize, the development IdP's login (any password) and consent pages, the
 * broker's consent screen, then the code redeemed at /oauth/token. Answers the token response. It
 * works only against the development IdP's login pages, so only in demo mode.
 */
export async function signInAtDevIdp(options: DevSignInOptions): Promise<Record<string, unknown>> {
  const jar = new Map<string, string>();
  const go = async (target: URL, init: RequestInit = {}): Promise<Response> => {
    const cookie = [...jar].map(([name, value]) => `${name}=${value}`).join('; ');
    const response = await fetch(target, {
      ...init,
      redirect: 'manual',
      headers: { ...init.headers, cookie },
    });
    for (const set of response.headers.getSetCookie()) {
      const [pair = ''] = set.split(';');
      const at = pair.indexOf('=');
      if (pair.slice(at + 1) === '' || /max-age=0/i.test(set)) jar.delete(pair.slice(0, at));
      else jar.set(pair.slice(0, at), pair.slice(at + 1));
    }
    return response;
  };
  const step = async (target: URL, form?: Record<string, string>): Promise<URL> => {
    const response = await go(target, form === undefined ? {} : formRequest(form));
    if (![302, 303].includes(response.status)) {
      throw signInFailed(
        `${target.pathname} answered ${response.status}: ${(await response.text()).slice(0, 200)}`,
      );
    }
    return new URL(response.headers.get('location') ?? '', target);
  };

  const verifier = randomBytes(32).toString('base64url');
  const authorize = new URL('/oauth/authorize', options.base);
  authorize.search = new URLSearchParams({
    response_type: 'code',
    client_id: options.clientId,
    redirect_uri: options.redirectUri,
    scope: options.scope,
    state: randomBytes(8).toString('base64url'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'),
    code_challenge_method: 'S256',
  }).toString();
  let next = await step(authorize);
  if (!next.pathname.startsWith('/idp/'))
    throw signInFailed(`expected the development IdP, got ${next.pathname}`);
  next = await step(next);
  next = await step(await step(next, { prompt: 'login', login: options.user, password: 'demo' }));
  for (let hops = 0; !next.pathname.endsWith('/oauth/callback'); hops++) {
    if (hops > 10) throw signInFailed('the IdP did not send the browser back to Gatehouse');
    next = next.pathname.includes('/interaction/')
      ? await step(await step(next, { prompt: 'consent' }))
      : await step(next);
  }
  const consent = await go(next);
  const html = await consent.text();
  if (consent.status !== 200) {
    // The broker sends the browser back to the app with the reason when it grants nothing.
    const back = new URL(consent.headers.get('location') ?? '/', next);
    throw signInFailed(
      back.searchParams.get('error_description') ?? `the consent screen answered ${consent.status}`,
    );
  }
  const login = /name="login" value="([^"]+)"/.exec(html)?.[1] ?? '';
  const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? '';
  const back = await step(new URL('/oauth/consent', options.base), { login, csrf, decision: 'allow' });
  const code = back.searchParams.get('code');
  if (code === null) {
    throw signInFailed(
      back.searchParams.get('error_description') ?? back.searchParams.get('error') ?? 'no code',
    );
  }
  const token = await fetch(new URL('/oauth/token', options.base), {
    ...formRequest({
      grant_type: 'authorization_code',
      client_id: options.clientId,
      code,
      redirect_uri: options.redirectUri,
      code_verifier: verifier,
    }),
  });
  const body = (await token.json()) as Record<string, unknown>;
  if (!token.ok) throw signInFailed(String(body.error_description ?? body.error ?? token.status));
  return body;
}

function formRequest(fields: Record<string, string>): RequestInit {
  return {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams(fields).toString(),
  };
}

function signInFailed(why: string): GatehouseError {
  return new OAuthError('OAUTH_ACCESS_DENIED', `the sign-in did not complete: ${why}`);
}
